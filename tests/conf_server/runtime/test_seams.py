"""The runtime's seams: an inbound call is a Party, the engine sets talker callbacks between
ticks, and the call layer alone decides when a flush inside its pump is deferred."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any

import pytest
import structlog

from conf_server.engine.legs import Leg, TalkCallback
from conf_server.runtime.calls import Call, CallManager, CallSettings
from conf_server.runtime.engine import MediaEngine
from conf_server.runtime.ports import PortAllocator
from conf_server.runtime.seams import Direction, EngineControl, Party
from sip.events import InviteId, RequestDropped
from sip.offer_answer import MediaParams
from sip.sdp import PCMU
from sip.sdp import Direction as SdpDirection


def _params() -> MediaParams:
    return MediaParams("127.0.0.1", 41998, PCMU, None, 20, SdpDirection.SENDRECV, False)


def _talker(leg: Leg) -> TalkCallback | None:
    return leg.on_talking  # read afresh: the engine thread writes it


class _Control:
    def __init__(self) -> None:
        self.spawned: list[str] = []
        self.ended: list[str] = []
        self.tasks: list[asyncio.Future[None]] = []

    def spawn(self, call: Call, coro: Awaitable[None]) -> None:
        self.spawned.append(call.id)
        self.tasks.append(asyncio.ensure_future(coro))

    def end_call(self, call: Call) -> None:
        self.ended.append(call.id)


def _call(control: _Control | None) -> Call:
    return Call(
        id="c1",
        did="+12125550100",
        caller="+15550001",
        peer="192.0.2.9:5060",
        source_ip="192.0.2.9",
        invite_id=InviteId("i1"),
        started=0.0,
        log=structlog.get_logger(),
        control=control,
    )


async def test_an_inbound_call_is_a_party_that_ends_itself() -> None:
    control = _Control()
    party: Party = _call(control)  # mypy checks the protocol; this checks the behaviour
    assert party.direction is Direction.INBOUND
    done = asyncio.Event()

    async def task() -> None:
        done.set()

    party.spawn(task())
    await asyncio.wait_for(done.wait(), 1.0)
    party.hang_up()
    assert (control.spawned, control.ended) == (["c1"], ["c1"])


def test_a_call_without_an_owner_says_so() -> None:
    with pytest.raises(RuntimeError, match="no owner"):
        _call(None).hang_up()


async def test_the_engine_sets_a_talker_callback_between_ticks_not_from_the_loop() -> None:
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:  # the tick thread waits here, after this tick's commands
        if not release.is_set():
            inside.set()
            release.wait(2.0)

    ports = PortAllocator("127.0.0.1", 41000, 41099)
    real = MediaEngine(ports=ports, capacity=4, tick_hook=hold)
    engine: EngineControl = real
    leg = real.add_leg(_params(), on_digit=lambda digit: None)
    await real.start()
    try:
        assert await asyncio.to_thread(inside.wait, 2.0)
        heard: list[bool] = []
        engine.watch_talking(leg, heard.append)
        assert _talker(leg) is None  # queued for the tick thread, not written from the loop
        release.set()
        for _ in range(50):
            if _talker(leg) is not None:
                break
            await asyncio.sleep(0.01)
        talker = _talker(leg)
        assert talker is not None
        talker(True)
        assert heard == [True]
    finally:
        release.set()
        await real.stop()


def test_watch_on_a_removed_leg_keeps_no_callback() -> None:
    ports = PortAllocator("127.0.0.1", 41100, 41199)
    engine = MediaEngine(ports=ports, capacity=4)  # not started: commands apply at once
    leg: Leg = engine.add_leg(_params(), on_digit=lambda digit: None)
    engine.remove_leg(leg)
    engine.watch_talking(leg, lambda talking: None)
    assert leg.on_talking is None


class _Endpoint:
    """Events for the pump; a handler's flush must wait until the pump returns."""

    def __init__(self) -> None:
        self.events: list[Any] = [RequestDropped(("192.0.2.1", 5060), "banned")] * 3

    def next_event(self) -> Any:
        return self.events.pop(0) if self.events else None


def test_a_flush_asked_inside_the_pump_waits_for_it() -> None:
    sent: list[str] = []
    endpoint = _Endpoint()
    manager = CallManager(
        endpoint,  # type: ignore[arg-type]
        media=None,  # type: ignore[arg-type]
        directory=None,  # type: ignore[arg-type]
        settings=CallSettings(),
        flush=lambda: sent.append("flush"),
        clock=lambda: 0.0,
    )

    def dropped(event: RequestDropped) -> None:
        manager.flush()  # as a hang-up inside a handler does
        sent.append("handled")

    manager._handlers[RequestDropped] = dropped
    manager.pump()
    assert sent == ["handled"] * 3  # no flush re-entered the transport from inside the pump
    manager.flush()
    assert sent[-1] == "flush"
