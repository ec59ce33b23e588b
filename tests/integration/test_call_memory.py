"""A finished call is freed by reference counting: no cycle is left for the full collector.

The server runs CPython's full collection on its own schedule (``conf_server/runtime/heap.py``):
a call object graph that only a full pass could free would pile up between passes. With the
collector off for the test, any ``Call``, ``IvrCall``, ``Leg`` or ``Speaker`` still in the heap
after the calls ended is either a leak or a reference cycle.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from conf_server.engine.legs import Leg
from conf_server.runtime.calls import Call
from conf_server.runtime.conference_ivr import IvrCall
from conf_server.runtime.conference_media import Speaker
from tests.integration.conftest import DEMO_DID, MakeServer, events, run_phone, sip_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
TRACKED = (Call, IvrCall, Leg, Speaker)


def _alive() -> list[str]:
    return [type(o).__name__ for o in gc.get_objects() if isinstance(o, TRACKED)]


async def test_ended_calls_leave_no_objects_behind(make_server: MakeServer, logs: Any) -> None:
    server = await make_server()
    target = f"sip:{DEMO_DID}@127.0.0.1:{sip_port(server)}"
    gc.collect()
    gc.disable()
    try:
        assert _alive() == []
        await asyncio.gather(
            # joins room 100001 as a participant, talks, hangs up
            run_phone("--target", target, "--keys", "0.8=2222#", "--talk", "4"),
            # hangs up in the IVR, in the middle of the greeting
            run_phone("--target", target, "--talk", "1.5"),
        )
        for _ in range(50):  # the engine removes a leg at its next tick
            if len(events(logs, "call.ended")) == 2 and not _alive():
                break
            await asyncio.sleep(0.05)
        assert len(events(logs, "call.joined")) == 1
        assert _alive() == []
    finally:
        gc.enable()
