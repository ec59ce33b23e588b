"""Interpreter settings that keep the media tick and SIP answers on time: GIL and collector.

Theory of operation
-------------------
The media tick runs in its own thread and shares the interpreter lock with the event loop (SIP,
API). Two interpreter defaults hurt it:

* the 5 ms switch interval let one thread hold the lock for whole milliseconds
  (p99 INVITE->200 56 ms at 100 calls/s; 16 ms at 1 ms) — :func:`switch_interval`;
* the cycle collector's full (generation 2) pass walks every tracked object with the lock
  held. At 200 calls/s with 5 s calls the server holds ~1,000 calls and ~13,000 finished
  transactions (RFC 3261 §17.2: Timer J/H keep them 32 s to absorb retransmissions);
  measured with ``gc.callbacks``, CPython ran a full pass every ~3 s and each took 12→100 ms
  as the heap grew, which alone made p99 call set-up 48 ms (4 ms with the collector off).

:func:`settle_heap` freezes what start-up allocated (never scanned again) and leaves the
young generations (0 and 1, whose passes are short: they only see recent objects) automatic,
but takes the full pass off CPython's schedule. :class:`FullCollector` runs it at a fixed
interval instead (``FULL_COLLECTION_EVERY``, default 5 min) and logs its duration
(``runtime.gc_full``). Cycles that die young are still freed at once; only cycles that lived
through two young passes wait for the next full pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from typing import Final

from conf_server.logs import get_logger

log = get_logger("runtime")

SWITCH_INTERVAL: Final = 0.001  # seconds
FULL_COLLECTION_EVERY: Final = 300.0  # seconds
_NEVER: Final = 2**30  # a generation-2 threshold CPython never reaches


def switch_interval() -> None:
    """Let the tick thread take the GIL within 1 ms (CPython's default interval is 5 ms)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def settle_heap() -> None:
    """Freeze start-up objects and leave full collections to :class:`FullCollector`."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)


def full_collection() -> tuple[int, float]:
    """One full pass now; returns the unreachable objects found and the pass's seconds."""
    started = time.perf_counter()
    found = gc.collect()
    return found, time.perf_counter() - started


class FullCollector:
    """Run the full collection every ``interval`` seconds on the event loop."""

    def __init__(self, interval: float = FULL_COLLECTION_EVERY) -> None:
        if interval <= 0:
            raise ValueError(f"full collection interval {interval} must be positive")
        self.interval = interval
        self.passes = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            found, seconds = full_collection()
            self.passes += 1
            log.info(
                "runtime.gc_full",
                unreachable=found,
                ms=round(seconds * 1000.0, 1),
                tracked=len(gc.get_objects()),
            )
