"""REST API under load: 500 requests/s (list meetings, get a call, mute/unmute) for 60 s.

The API serves a real store and a real MeetingService with 300 live legs in 10 meetings
(behind a minimal LiveControl: no media, so this measures the API alone). A load thread with
its own event loop paces requests on absolute deadlines over real HTTP and prints the
achieved rate and p50/p99 latency per operation. Tick lateness under API load needs the
running server (engine + API in one loop): run ``bench_engine.py`` beside this against it.

    .venv/bin/python benchmarks/bench_api.py [--rate 500] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from conf_server.api import ApiSettings, create_app, start_api
from conf_server.domain.attributes import Role, resolve
from conf_server.domain.live import LiveCallInfo
from conf_server.domain.meeting import Event
from conf_server.domain.service import MeetingService, Outcome
from conf_server.store import DidGroupSpec, RoomSpec, Store

LEGS, ROOMS = 300, 10


class Live:
    """LiveControl over a MeetingService; actions are dropped (no media in this benchmark)."""

    def __init__(self) -> None:
        self.service = MeetingService()
        self.listeners: list[Callable[[Event], None]] = []
        self.rooms: dict[str, str] = {}

    def now(self) -> float:
        return time.monotonic()

    def apply(self, outcome: Outcome) -> None:
        for event in outcome.events:
            for listener in self.listeners:
                listener(event)

    def calls(self) -> list[LiveCallInfo]:
        return [i for c in self.rooms if (i := self.call_info(c)) is not None]

    def call_info(self, call_id: str) -> LiveCallInfo | None:
        if not self.service.has_call(call_id):
            return None
        p = self.service.participant(call_id)
        return LiveCallInfo(
            call_id, self.rooms[call_id], p.role, p.caller, "+15162065319", time.time(),
            p.muted, p.held, p.deaf, p.gain_in_db, p.gain_out_db,
        )  # fmt: skip

    def set_custom_name(self, call_id: str, name: str | None) -> bool:
        return call_id in self.rooms

    def hangup(self, call_id: str) -> bool:
        return False

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)


async def setup(folder: Path) -> tuple[Store, Live]:
    store = await Store.open(f"sqlite:///{folder}/bench.db")
    group = await store.create_did_group(DidGroupSpec("bench"))
    live = Live()
    attributes = resolve(None, None, None, None)
    for r in range(ROOMS):
        room = await store.create_room(RoomSpec(group.id, 100000 + r))
        for leg in range(LEGS // ROOMS):
            call = f"call-{r}-{leg}"
            live.rooms[call] = str(room.meeting_number)
            role = Role.HOST if leg == 0 else Role.PARTICIPANT
            live.apply(live.service.join(call, str(room.meeting_number), role, call,
                                         attributes=attributes, now=live.now()))  # fmt: skip
    return store, live


def load(
    port: int, rate: float, seconds: float, out: dict[str, list[float]], errors: list[str]
) -> None:
    async def run() -> None:
        auth = ("admin", "bench-password")
        base = f"http://127.0.0.1:{port}/conference/v1"
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(auth=auth, limits=limits, timeout=10) as client:
            await client.get(f"{base}/meetings")  # warm the password cache
            ops = [
                ("list meetings", "GET", "/meetings", None),
                ("get call", "GET", "/calls/call-1-3", None),
                ("mute", "PUT", "/calls/call-2-4", {"muteMode": 40}),
                ("unmute", "PUT", "/calls/call-2-4", {"muteMode": 0}),
            ]
            start, tasks = time.perf_counter(), []
            for i in range(int(rate * seconds)):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                name, method, path, body = ops[i % len(ops)]
                tasks.append(asyncio.create_task(one(client, name, method, base + path, body)))
            await asyncio.gather(*tasks)
            out["_elapsed"] = [time.perf_counter() - start]

    async def one(
        client: httpx.AsyncClient, name: str, method: str, url: str, body: object
    ) -> None:
        t0 = time.perf_counter()
        try:
            response = await client.request(method, url, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:  # counted and reported, the run goes on
            errors.append(f"{name}: {type(exc).__name__} {exc}")
            return
        out.setdefault(name, []).append(time.perf_counter() - t0)

    asyncio.run(run())


async def main(rate: float, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store, live = await setup(Path(folder))
        settings = ApiSettings("admin", "bench-password", data_dir=Path(folder))
        handle = await start_api(create_app(store, live, settings), "127.0.0.1", 0)
        results: dict[str, list[float]] = {}
        errors: list[str] = []
        thread = threading.Thread(target=load, args=(handle.port, rate, seconds, results, errors))
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.1)
        await handle.stop()
        await store.close()
    elapsed = results.pop("_elapsed")[0]
    total = sum(len(v) for v in results.values())
    print(f"{total} requests in {elapsed:.1f} s = {total / elapsed:.0f}/s (target {rate:.0f}/s), "
          f"{LEGS} live legs in {ROOMS} meetings")  # fmt: skip
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    for name, samples in sorted(results.items()):
        ms = sorted(s * 1000 for s in samples)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(
            f"  {name:14s} n={len(ms):6d}  p50={statistics.median(ms):6.2f} ms  p99={p99:6.2f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
