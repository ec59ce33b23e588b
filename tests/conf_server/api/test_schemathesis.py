"""schemathesis over the OpenAPI document: generated requests never get a 500.

The API runs on a real socket (uvicorn in a thread with its own loop, store and bridge) and
schemathesis sends requests generated from ``/conference/v1/openapi.json`` with administrator
credentials. ``/events`` is left out: it is an endless stream, tested in ``test_events``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from conf_server.api import start_api
from conf_server.domain.attributes import Role
from conf_server.store import Store
from tests.conf_server.api.conftest import ADMIN, BASE, Bridge, basic, make_app, seed


class Server:
    """The API with a live meeting, served from a thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ready = threading.Event()
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        store = await Store.open(f"sqlite:///{self.folder}/api.db")
        _, _, _, room, _ = await seed(store)
        bridge = Bridge()
        bridge.join("h", room, Role.HOST)
        bridge.join("p", room, Role.PARTICIPANT)
        handle = await start_api(make_app(store, bridge, self.folder), "127.0.0.1", 0)
        self.port = handle.port
        self.stop_event = asyncio.Event()
        self.ready.set()
        await self.stop_event.wait()
        await handle.stop()
        await store.close()

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("schemathesis"))
    running.thread.start()
    assert running.ready.wait(30)
    yield running
    running.stop()


def test_no_generated_request_gets_a_500(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{server.port}{BASE}/openapi.json")
    failures: list[str] = []

    def check(case: Any) -> None:  # schemathesis.Case is generic over internals
        response = case.call(base_url=f"http://127.0.0.1:{server.port}", headers=basic(ADMIN))
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

    limits = settings(
        max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid operation (Err) fails the test
        if operation.path.endswith("/events"):
            continue
        operations += 1
        limits(given(operation.as_strategy())(check))()
    assert operations > 40
    assert failures == []
