"""Tick accounting: absolute deadlines, lateness, overruns and skipped ticks, on given times."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf_server.engine.clock import TickClock
from conf_server.engine.legs import EngineStats


def test_tick_clock_counts_overruns_and_skips() -> None:
    stats = EngineStats()
    clock = TickClock(1.0, stats)
    clock.started(1.001)
    assert not clock.finished(1.005).overrun  # next deadline 1.02
    clock.started(1.02)
    slow = clock.finished(1.045)  # a slow tick: ended after the 1.04 deadline
    assert slow.overrun and slow.skipped == 0 and slow.next_deadline == pytest.approx(1.04)
    clock.started(1.045)
    stuck = clock.finished(1.5)
    assert stuck.overrun and stuck.skipped > 5 and abs(stuck.next_deadline - 1.5) <= 0.02 + 1e-9
    assert stats.overruns == 2 and stats.ticks == 3
    assert stats.max_lateness_ms == pytest.approx(5.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 0.05), min_size=1, max_size=200))
def test_lateness_percentiles_bound_the_samples(lateness: list[float]) -> None:
    stats = EngineStats()
    for x in lateness:
        stats.record_lateness(x)
    ms = np.array(lateness) * 1000
    assert stats.max_lateness_ms == pytest.approx(ms.max())
    assert stats.p50_ms >= np.percentile(ms, 50, method="inverted_cdf") - 1e-9
    assert stats.p99_ms <= ms.max() + 1e-9
