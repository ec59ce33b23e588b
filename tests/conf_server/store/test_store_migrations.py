"""Schema migrations: an empty database reaches the models' schema, and upgrades keep data."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from conf_server.store import DidGroupSpec, InvalidDataError, Store
from conf_server.store.db import async_url, create_engine, upgrade
from conf_server.store.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_migrated_empty_database_equals_the_models(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/empty.db")
    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert await connection.run_sync(_revision) == "0001"
    await engine.dispose()
    assert set(Base.metadata.tables) <= tables


async def test_drift_detector_sees_a_missing_table(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/partial.db")
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("DROP TABLE pins")
        assert await connection.run_sync(_diff) != []
    await engine.dispose()


async def test_reopening_keeps_data_and_conf_call_flow(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/keep.db"
    store = await Store.open(url)
    group = await store.create_did_group(DidGroupSpec("kept"))
    await store.close()

    store = await Store.open(url)  # runs "upgrade head" again: a no-op that keeps the rows
    try:
        assert (await store.get_did_group(group.id)).name == "kept"
        flows = await store.list_call_flows()
        assert [(flow.id, flow.name) for flow in flows.items] == [(3, "CONF")]
    finally:
        await store.close()


async def test_default_style_relative_url_creates_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await Store.open("sqlite:///var/conf-server.db")
    await store.close()
    assert (tmp_path / "var" / "conf-server.db").is_file()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
        ("postgresql://u:p@127.0.0.1/conf", "postgresql+asyncpg://u:p@127.0.0.1/conf"),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected


def test_async_url_refuses_garbage() -> None:
    with pytest.raises(InvalidDataError, match="database URL 'not a url' is not valid"):
        async_url("not a url")
