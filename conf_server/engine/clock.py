"""Tick accounting of the media engine: absolute 20 ms deadlines, lateness, overruns, skips.

References: RFC 3550 §5.1 (one 20 ms packet per leg per tick: a tick that never runs is a packet
never sent); DESIGN.md §4.7 (the tick runs on absolute monotonic deadlines and counts its
overruns).

Theory of operation. :class:`TickClock` has no clock of its own: the driver
(``conf_server/runtime/engine.py``) reads the real monotonic clock and reports when each tick
started and ended. Deadline ``k`` is ``start + k × 20 ms``. Lateness (start − deadline) goes
into the :class:`~conf_server.engine.legs.EngineStats` histogram; a tick that ends after the
next deadline is an **overrun**, counted, and the verdict tells the driver so it can log it.
The next tick still aims at its own absolute deadline, so short hiccups are caught up; if the
engine is more than ``MAX_BEHIND`` ticks behind, the missed ticks are skipped (and counted)
rather than run back to back. ``STATS_EVERY_TICKS`` is how often the driver logs an
``engine.stats`` line.
"""

from __future__ import annotations

from dataclasses import dataclass

from conf_server.engine.core import TICK
from conf_server.engine.legs import EngineStats

MAX_BEHIND = 5
STATS_EVERY_TICKS = 500  # an engine.stats line every 10 s


@dataclass(slots=True)
class TickVerdict:
    """What ``TickClock.finished`` concluded about one tick."""

    overrun: bool
    skipped: int
    next_deadline: float


class TickClock:
    """Absolute 20 ms deadlines, lateness and overrun accounting (no clock of its own)."""

    def __init__(self, start: float, stats: EngineStats, period: float = TICK) -> None:
        self.period = period
        self.deadline = start
        self.stats = stats
        self.skipped = 0

    def started(self, now: float) -> float:
        """The tick due at ``self.deadline`` starts at ``now``; returns its lateness (s)."""
        lateness = now - self.deadline
        self.stats.ticks += 1
        self.stats.record_lateness(lateness)
        return lateness

    def finished(self, now: float) -> TickVerdict:
        """The tick ended at ``now``: advance to the next deadline, count overruns/skips."""
        self.deadline += self.period
        overrun = now > self.deadline
        skipped = 0
        if overrun:
            self.stats.overruns += 1
            behind = int((now - self.deadline) / self.period)
            if behind > MAX_BEHIND:
                skipped = behind
                self.skipped += behind
                self.deadline += behind * self.period
        return TickVerdict(overrun, skipped, self.deadline)
