"""Signed webhooks to a real receiver on 127.0.0.1, and the resumable SSE stream over real HTTP."""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from hypothesis import given
from hypothesis import strategies as st

from conf_server.api import start_api
from conf_server.api.events import EVENT_TYPES
from conf_server.api.webhooks import SIGNATURE_HEADER, RetryPolicy, SignatureError, sign, verify
from conf_server.domain.attributes import Role
from conf_server.store import Store
from tests.conf_server.api.conftest import ALICE, BASE, OPERATOR, Bridge, basic, make_app, seed

SECRET = b"k"


def test_signature_golden_vector() -> None:
    assert sign(b"k", b'{"a":1}', 1700000000) == (
        "t=1700000000,v1=" + hmac.new(b"k", b'1700000000.{"a":1}', "sha256").hexdigest()
    )


@pytest.mark.parametrize(
    ("header", "now", "message"),
    [
        ("v1=abc", 0.0, "the signature needs exactly one numeric t="),
        ("t=100,v1", 100.0, "malformed signature element 'v1'"),
        ("t=100,v1=00", 500.0, "timestamp 100 is more than 300 s from now"),
        ("t=100,v1=00", 100.0, "no v1 signature matches"),
    ],
)
def test_bad_signatures_are_refused_with_a_reason(header: str, now: float, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(SECRET, header, b"{}", now)


@given(st.binary(max_size=200), st.integers(0, 2**40))
def test_signatures_verify_and_any_change_breaks_them(body: bytes, stamp: int) -> None:
    header = sign(SECRET, body, stamp)
    assert verify(SECRET, header, body, stamp) == stamp
    with pytest.raises(SignatureError):
        verify(SECRET, header, body + b"x", stamp)
    with pytest.raises(SignatureError):
        verify(b"other", header, body, stamp)


def test_retry_delays_double_up_to_the_cap() -> None:
    assert RetryPolicy(attempts=6, first_delay=0.5, max_delay=3.0).delays() == [
        0.5,
        1.0,
        2.0,
        3.0,
        3.0,
    ]


class Receiver:
    """A webhook receiver app: refuses the first ``fail`` posts with 500, records the rest."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.attempts = 0
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.app = FastAPI()
        self.app.add_api_route("/hook", self.hook, methods=["POST"])

    async def hook(self, request: Request) -> Response:
        self.attempts += 1
        body = await request.body()
        verify(SECRET, request.headers[SIGNATURE_HEADER], body, time.time())
        if self.attempts <= self.fail:
            return Response(status_code=500)
        self.events.append(json.loads(body))
        self.arrived.set()
        return Response(status_code=204)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def live_api(tmp_path: Path) -> AsyncIterator[tuple[Bridge, str, int, str]]:
    store = await Store.open(f"sqlite:///{tmp_path}/api.db")
    alice_sid, _, _, room_a, _ = await seed(store)
    bridge = Bridge()
    app = make_app(store, bridge, tmp_path, webhook_first_delay=0.05, webhook_max_delay=0.1)
    handle = await start_api(app, "127.0.0.1", 0)
    try:
        yield bridge, f"http://127.0.0.1:{handle.port}{BASE}", room_a, alice_sid
    finally:
        await handle.stop()
        await store.close()


async def test_webhooks_are_signed_retried_and_in_sequence(
    live_api: tuple[Bridge, str, int, str],
) -> None:
    bridge, url, room, alice_sid = live_api
    receiver = Receiver(fail=2)
    hook = await start_api(receiver.app, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.put(
                f"{url}/subscribers/{alice_sid}",
                headers=basic(ALICE),
                json={"eventCallbackUrl": f"http://127.0.0.1:{hook.port}/hook"},
            )
            assert r.json()["callback"]["url"].endswith("/hook")
            bridge.join("h", room, Role.HOST)
            bridge.join("p", room, Role.PARTICIPANT)
            await client.put(f"{url}/calls/p", headers=basic(ALICE), json={"muteMode": 40})
            await client.delete(f"{url}/meetings/{room}", headers=basic(ALICE))
        expected = [EVENT_TYPES[type(e)](e) for e in bridge.events]
        assert expected[:4] == ["call.joined", "meeting.started", "call.joined", "call.muted"]
        assert expected[-1] == "meeting.ended" and expected.count("call.left") == 2
        await receiver.wait_for(len(expected))
    finally:
        await hook.stop()
    assert receiver.attempts == len(expected) + 2  # the two refusals were retried
    assert [e["type"] for e in receiver.events] == expected
    sequences = [e["sequence"] for e in receiver.events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    muted = receiver.events[3]
    assert [e["sequence"] for e in receiver.events] == [e.seq for e in bridge.events]
    assert (muted["meetingNumber"], muted["data"]) == (
        room,
        {"call": "p", "muted": True, "by": "api"},
    )


async def _read_events(
    response: httpx.Response, count: int
) -> list[tuple[str, str, dict[str, Any]]]:
    got: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(10):
        async for line in response.aiter_lines():
            if line == "" and "data" in fields:
                got.append(
                    (fields.get("id", ""), fields.get("event", ""), json.loads(fields["data"]))
                )
                fields = {}
                if len(got) == count:
                    return got
            elif line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return got


async def test_sse_streams_filters_and_resumes(live_api: tuple[Bridge, str, int, str]) -> None:
    bridge, url, room, _ = live_api
    async with httpx.AsyncClient(timeout=10) as client:
        params = {"meetingNumber": str(room)}
        async with client.stream(
            "GET", f"{url}/events", headers=basic(OPERATOR), params=params
        ) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            bridge.join("x", 222222, Role.HOST)  # another room: filtered out
            bridge.join("h", room, Role.HOST)
            first = await _read_events(r, 2)
        assert [(e, d["meetingNumber"]) for _, e, d in first] == [
            ("call.joined", room),
            ("meeting.started", room),
        ]
        last_id = first[0][0]
        bridge.join("p", room, Role.PARTICIPANT)
        headers = {**basic(OPERATOR), "Last-Event-ID": last_id}
        async with client.stream("GET", f"{url}/events", headers=headers, params=params) as r:
            resumed = await _read_events(r, 2)
        assert [(e, d["data"].get("call")) for _, e, d in resumed] == [
            ("meeting.started", None),
            ("call.joined", "p"),
        ]
        assert int(resumed[0][0]) > int(last_id)
        old = {**basic(OPERATOR), "Last-Event-ID": "0"}
        async with client.stream("GET", f"{url}/events", headers=old) as r:
            everything = await _read_events(r, 5)
        assert [d["meetingNumber"] for _, _, d in everything[:2]] == [222222, 222222]


async def test_sse_refuses_a_bad_last_event_id(live_api: tuple[Bridge, str, int, str]) -> None:
    _, url, _, _ = live_api
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{url}/events", headers={**basic(OPERATOR), "Last-Event-ID": "x"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "Last-Event-ID"


async def test_api_connections_send_without_nagle_delay() -> None:
    """Every accepted API connection has TCP_NODELAY: a response leaves in head and body writes,
    and with Nagle on, the body waited for the client's delayed ACK (44 ms a request)."""
    app = FastAPI()
    handle = await start_api(app, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
        writer.write(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        (protocol,) = handle.server.server_state.connections
        server_side = protocol.transport.get_extra_info("socket")
        assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        writer.close()
    finally:
        await handle.stop()
