"""The store on a real PostgreSQL server (``postgresql+asyncpg://``), as on SQLite.

A throwaway cluster is created with ``initdb`` in a temporary folder and served on a free
loopback port (as the ``postgres`` user when the tests run as root: PostgreSQL refuses root).
The same migrations, provisioning and call-path lookups must work, and data must survive a
reopen.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf_server.domain.attributes import Role
from conf_server.store import Store
from conf_server.store.provision import provision_file

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        pytest.fail(f"{name} not found: install the Debian package postgresql (make system-deps)")
    return found


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    # Not under pytest's tmp tree: its folders are private to root, and the cluster runs as
    # the postgres user when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="conf-server-pg-"))
    os.chmod(base, 0o777)
    data, port = base / "data", _free_tcp_port()
    run = _as_postgres()
    subprocess.run(
        [*run, _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            *(*run, _pg_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(base)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("PostgreSQL did not start within 30 s")
        subprocess.run(
            [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "conf"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/conf"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


async def test_migrate_provision_and_route_on_postgresql(postgres_url: str) -> None:
    store = await Store.open(postgres_url)
    try:
        first = await provision_file(store, DEMO)
        again = await provision_file(store, DEMO)
        assert first.counts["rooms"].created == 2
        assert not again.changes  # idempotent on PostgreSQL too
        did = await store.find_did("+12125550100")
        assert did is not None
        found = await store.find_room_by_code(did.did_group.id, "1111")
        assert found is not None
        room, role = found
        assert (room.meeting_number, role) == (100001, Role.HOST)
        assert await store.find_room_by_code(did.did_group.id, "9999") is None
        pins = await store.room_pins((await store.get_room(100002)).id)
        assert sorted((p.pin, p.organizer) for p in pins) == [("1357", False), ("2468", True)]
        attrs = await store.effective_attributes(did, (await store.get_room(100002)))
        assert attrs["conference_start_how"] == "moderator"
    finally:
        await store.close()
    reopened = await Store.open(postgres_url)  # migrations at head: data kept
    try:
        assert await reopened.find_did("+12125550100") is not None
    finally:
        await reopened.close()
