"""Engine set-up and schema upgrade for the store.

URLs: ``sqlite+aiosqlite:///var/conf-server.db`` by default (a relative path is relative to the
working directory; its folder is created), ``postgresql+asyncpg://user:pw@host/db`` for a server
database. The synchronous spellings ``sqlite:///…`` and ``postgresql://…`` are accepted and mapped
to their async drivers, so ``--db sqlite:///var/conf-server.db`` works as the issue writes it.

SQLite enforces foreign keys only when each connection asks (``PRAGMA foreign_keys=ON``); the
engine does so on connect, otherwise ``ON DELETE`` rules would silently not run.

``upgrade`` runs Alembic's ``upgrade head`` on a connection of the async engine (through
``run_sync``), using the migrations shipped inside this package; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conf_server.store.errors import InvalidDataError

DEFAULT_URL = "sqlite+aiosqlite:///var/conf-server.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """``url`` with its async driver (``sqlite://`` → ``sqlite+aiosqlite://``)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidDataError(f"database URL {url!r} is not valid: {exc}") from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; creates a SQLite file's folder and turns on its FKs."""
    full = async_url(url)
    path = _sqlite_file(full)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(full)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _enable_foreign_keys)
    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (and a live connection, if any)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade_sync(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; existing data is kept (that is what migrations do)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_sync, revision)
