"""The REST API against live calls: a real server, real pjsua2 phones, real HTTP.

Every test drives room 100001 of the demo through ``Server.api.port`` as the demo administrator
and checks the effect where it matters: in the audio a phone recorded (Hann-windowed FFT, the
helpers of ``test_dialin_audio``), in how a phone's call ended, or at a callback receiver.

Lining the API's moments up with a recording: a ``CallWatch`` polls ``GET /calls`` every
50 ms and notes when each caller was last listed. A phone that hangs up itself reports
``talked`` (answer to BYE), so its answer happened ``talked`` seconds before it was last seen;
a test moment ``t`` is then ``t - answer - record_offset`` seconds into its recording, within
about a poll interval. Windows keep half a second or more from every such moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from numpy.typing import NDArray

from conf_server.api.webhooks import SIGNATURE_HEADER, SignatureError, verify
from conf_server.runtime.server import Server
from tests.integration.conftest import MakeServer, events
from tests.integration.test_dialin import HEARD, SILENT, phone
from tests.integration.test_dialin_audio import (
    RATE,
    read_recording,
    tone_level,
    window,
    write_tone,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOM = 100001
ADMIN = ("admin", "conf-demo")
PARTICIPANT_TONE = 1650.0
EXIT_NOTE = 523.25  # the exit tone's last and longest note (media.tones.exit_tone)
SECRET = "live-test-webhook-secret"
POLL = 0.05


def api(server: Server) -> httpx.AsyncClient:
    assert server.api is not None
    base = f"http://127.0.0.1:{server.api.port}/conference/v1"
    return httpx.AsyncClient(base_url=base, auth=ADMIN, timeout=5.0)


@dataclass
class Seen:
    call_id: str
    first: float
    last: float
    muted: list[tuple[float, int]] = field(default_factory=list)


class CallWatch:
    """Polls ``GET /calls``; remembers per caller its call id and when it was listed."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.seen: dict[str, Seen] = {}
        self.listed: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            r = await self.client.get("/calls")
            assert r.status_code == 200, r.text
            now = time.monotonic()
            self.listed = set()
            for call in r.json()["calls"]:
                entry = self.seen.setdefault(call["caller"], Seen(call["id"], now, now))
                entry.last = now
                self.listed.add(call["caller"])
            await asyncio.sleep(POLL)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CallWatch]:
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def until(self, ready: Callable[[], bool], timeout: float = 20.0) -> float:
        """Wait until ``ready()``; returns the time it became true."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self._task is not None and self._task.done():
                self._task.result()  # the poller failed: show why
            assert time.monotonic() < deadline, f"timed out; listed {sorted(self.listed)}"
            await asyncio.sleep(POLL / 2)
        return time.monotonic()

    async def joined(self, *callers: str) -> float:
        return await self.until(lambda: all(c in self.listed for c in callers))

    async def gone(self, caller: str) -> float:
        """Wait until ``caller`` was listed and is no more; returns when it was last listed."""
        await self.until(lambda: caller in self.seen and caller not in self.listed)
        return self.seen[caller].last

    def answered(self, caller: str, result: dict[str, Any]) -> float:
        """When a phone that hung up itself was answered, on this test's clock."""
        assert result["hung_up_by"] == "phone", result
        return self.seen[caller].last - float(result["talked"])


class Recording:
    """A phone's recording addressed by this test's clock."""

    def __init__(self, path: Path, answered: float, result: dict[str, Any]) -> None:
        self.samples = read_recording(path)
        self.start = answered + float(result["record_offset"])

    def at(self, moment: float, start: float, end: float) -> NDArray[np.float64]:
        """The samples from ``start`` to ``end`` seconds after ``moment`` (test clock)."""
        return window(self.samples, moment - self.start + start, moment - self.start + end)


def peak_level(samples: NDArray[np.float64], freq: float, span: float = 0.3) -> float:
    """The strongest ``freq`` over ``span``-second windows stepped by 50 ms (a short tone)."""
    size, step = int(span * RATE), RATE // 20
    starts = range(0, max(1, len(samples) - size + 1), step)
    return max(tone_level(samples[i : i + size], freq) for i in starts)


async def later(delay: float, job: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(delay)
    return await job


# --- PUT /calls/{id}: mute takes the phone out of the others' mix -------------------------------


async def test_put_mute_removes_the_call_from_the_others_mix(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    host, talker = "+15550101001", "+15550101002"
    record = tmp_path / "host-heard.wav"
    host_phone = phone(
        server,
        *("--caller", host, "--record", str(record)),
        *("--dtmf", "1111#", "--dtmf-at", "0.8", "--talk", "16"),
    )
    talker_phone = phone(
        server,
        *("--caller", talker, "--play", str(write_tone(tmp_path / "t.wav", PARTICIPANT_TONE))),
        *("--dtmf", "2222#", "--dtmf-at", "0.8", "--talk", "17"),
    )
    async with api(server) as client, CallWatch(client).running() as watch:
        runs = asyncio.gather(host_phone, talker_phone)
        await watch.joined(host, talker)
        await asyncio.sleep(4.0)  # past the join prompts and entry tones
        url = f"/calls/{watch.seen[talker].call_id}"
        muted = await client.put(url, json={"muteMode": 40})
        muted_at = time.monotonic()
        assert muted.status_code == 200, muted.text
        assert muted.json()["calls"][0]["muteMode"] == 40
        assert (await client.get(url)).json()["muteMode"] == 40
        await asyncio.sleep(4.0)
        unmuted = await client.put(url, json={"muteMode": 0})
        unmuted_at = time.monotonic()
        assert unmuted.json()["calls"][0]["muteMode"] == 0
        h_result, t_result = await runs
        await watch.gone(host)

    heard = Recording(record, watch.answered(host, h_result), h_result)
    assert tone_level(heard.at(muted_at, -2.5, -0.5), PARTICIPANT_TONE) > HEARD
    assert tone_level(heard.at(muted_at, 0.5, 3.0), PARTICIPANT_TONE) < SILENT
    assert tone_level(heard.at(unmuted_at, 0.5, 2.5), PARTICIPANT_TONE) > HEARD
    by_api = [(line["muted"], line["by"]) for line in events(logs, "call.muted")]
    assert by_api == [(True, "api"), (False, "api")]
    assert t_result["hung_up_by"] == "phone"


# --- DELETE /meetings/{n}: every phone gets a BYE -----------------------------------------------


async def test_delete_meeting_hangs_up_every_phone(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    callers = {"+15550102001": "1111#", "+15550102002": "2222#", "+15550102003": "3333#"}
    phones = [
        phone(server, "--caller", caller, "--dtmf", code, "--wait-bye", "40")
        for caller, code in callers.items()
    ]
    async with api(server) as client, CallWatch(client).running() as watch:
        runs = asyncio.gather(*phones)
        await watch.joined(*callers)
        listed = (await client.get(f"/meetings/{ROOM}")).json()
        assert listed["participantCount"] == 3
        ended = await client.delete(f"/meetings/{ROOM}")
        assert ended.status_code == 204, ended.text
        results = await runs
        assert (await client.get(f"/meetings/{ROOM}")).status_code == 404
        assert (await client.get("/calls")).json()["total"] == 0

    assert all(r["answered"] and r["hung_up_by"] == "server" for r in results), results
    # Each was hung up by the server well before its own 40 s wait ran out.
    assert all(r["talked"] < 30 for r in results), results
    reasons = sorted(line["reason"] for line in events(logs, "call.left"))
    assert reasons == ["meeting_ended"] * 3
    assert [line["reason"] for line in events(logs, "call.ended")] == ["local_bye"] * 3


# --- PUT /meetings/{n}/attributes/conference_exittones: the next leave is silent ------------------


async def test_exit_tones_off_silences_the_next_leave(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = await make_server()
    host, stays, first, second = (f"+1555010300{i}" for i in range(4))
    record = tmp_path / "host-heard.wav"
    runs = [
        phone(server, "--caller", host, "--dtmf", "1111#", "--record", str(record), "--talk", "20"),
        phone(server, "--caller", stays, "--dtmf", "2222#", "--talk", "21"),
        phone(server, "--caller", first, "--dtmf", "2222#", "--talk", "8"),
        phone(server, "--caller", second, "--dtmf", "2222#", "--talk", "14"),
    ]
    attribute = f"/meetings/{ROOM}/attributes/conference_exittones"
    async with api(server) as client, CallWatch(client).running() as watch:
        gathered = asyncio.gather(*runs)
        await watch.joined(host, stays, first, second)
        first_left = await watch.gone(first)
        put = await client.put(attribute, json={"value": "off"})
        assert put.status_code == 200, put.text
        assert put.json() == [{"name": "conference_exittones", "value": "off"}]
        assert second in watch.listed  # the switch lands between the two leaves
        second_left = await watch.gone(second)
        h_result = (await gathered)[0]
        await watch.gone(host)

    heard = Recording(record, watch.answered(host, h_result), h_result)
    with_tone = heard.at(first_left, -0.3, 1.5)
    without = heard.at(second_left, -0.3, 1.5)
    assert peak_level(with_tone, EXIT_NOTE) > HEARD
    assert peak_level(without, EXIT_NOTE) < SILENT
    # Nothing else changed: the stretch before each leave is equally quiet.
    assert peak_level(heard.at(first_left, -2.5, -0.7), EXIT_NOTE) < SILENT
    assert peak_level(heard.at(second_left, -2.5, -0.7), EXIT_NOTE) < SILENT


# --- signed callbacks of real calls --------------------------------------------------------------


@dataclass
class Receiver:
    """What a callback receiver got: (signature header, body) in arrival order."""

    got: list[tuple[str, bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """A bare ASGI app: keep each POST's signature and body, answer 204."""
        if scope["type"] != "http":
            return  # lifespan messages: nothing to set up
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.got.append((headers.get(SIGNATURE_HEADER.lower(), ""), body))
        self.arrived.set()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.got]

    async def until(self, kind: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while all(e["type"] != kind for e in self.events()):
            assert time.monotonic() < deadline, f"no {kind}: {[e['type'] for e in self.events()]}"
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.5)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    config = uvicorn.Config(receiver, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    http = uvicorn.Server(config)
    task = asyncio.create_task(http.serve())
    while not http.started:
        assert not task.done(), "the receiver did not start"
        await asyncio.sleep(0.01)
    port = http.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/events"
    finally:
        http.should_exit = True
        await task


async def test_room_owner_callback_gets_signed_ordered_events_of_real_calls(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = await make_server(**{"api.webhook_secret": SECRET})
    host, talker = "+15550104001", "+15550104002"
    receiver = Receiver()
    async with receiving(receiver) as url, api(server) as client:
        owner = await client.post(
            "/subscribers",
            json={"login": "owner", "password": "owner-pw", "callback": {"url": url}},
        )
        assert owner.status_code == 200, owner.text
        sid = owner.json()["sid"]
        room = await client.put(f"/meetingRooms/{ROOM}", json={"subscriberSid": sid})
        assert room.status_code == 200, room.text
        async with CallWatch(client).running() as watch:
            runs = asyncio.gather(
                phone(server, "--caller", host, "--dtmf", "1111#", "--talk", "10"),
                phone(
                    server,
                    *("--caller", talker, "--dtmf", "2222#", "--keys", "5=*6", "--talk", "9"),
                ),
            )
            await watch.joined(host, talker)
            await receiver.until("call.muted")  # the talker's own *6
            unmute = await client.put(f"/calls/{watch.seen[talker].call_id}", json={"muteMode": 0})
            assert unmute.status_code == 200, unmute.text
            await runs
        await receiver.until("meeting.ended")

    now = time.time()
    for header, body in receiver.got:
        verify(SECRET.encode(), header, body, now)
        with pytest.raises(SignatureError):
            verify(SECRET.encode(), header, body + b" ", now)
    got = receiver.events()
    assert {e["meetingNumber"] for e in got} == {ROOM}
    assert len({e["instance"] for e in got}) == 1
    sequences = [e["sequence"] for e in got]
    assert all(a < b for a, b in itertools.pairwise(sequences)), sequences
    ids = [int(e["id"]) for e in got]
    assert ids == sorted(set(ids))
    kinds = [e["type"] for e in got if not e["type"].startswith("call.talking")]
    # The host's join starts the meeting (the service raises the join first); the last leave
    # ends it.
    assert sorted(kinds[:2]) == ["call.joined", "meeting.started"], kinds
    assert kinds[-1] == "meeting.ended", kinds
    assert sorted(kinds[2:-1]) == ["call.joined", "call.left", "call.left", "call.muted",
                                   "call.unmuted"], kinds  # fmt: skip
    joined = {e["data"]["caller"]: e["data"] for e in got if e["type"] == "call.joined"}
    assert {c: d["role"] for c, d in joined.items()} == {host: 1, talker: 2}  # host, participant
    mutes = [(e["data"]["call"], e["data"]["by"]) for e in got if e["type"].endswith("muted")]
    talker_call = joined[talker]["call"]
    assert mutes[0][0] == mutes[1][0] == talker_call
    assert mutes[0][1] != "api" and mutes[1][1] == "api"
    left = [e["data"] for e in got if e["type"] == "call.left"]
    assert {d["call"] for d in left} == {d["call"] for d in joined.values()}
    assert all(d["reason"] == "hangup" and d["duration"] > 3 for d in left), left
