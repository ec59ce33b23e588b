"""The interpreter settings of ``conf_server.runtime.heap``: switch interval and collector."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator

import pytest
import structlog

from conf_server.runtime.heap import FullCollector, settle_heap, switch_interval


@pytest.fixture
def restore_interpreter() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_switch_interval_is_one_millisecond(restore_interpreter: None) -> None:
    switch_interval()
    assert sys.getswitchinterval() == pytest.approx(0.001)


def test_settle_heap_freezes_start_up_and_leaves_full_passes_to_the_collector(
    restore_interpreter: None,
) -> None:
    young, middle, _ = gc.get_threshold()
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[:2] == (young, middle)  # young passes stay automatic
    assert gc.get_threshold()[2] >= 2**30  # CPython never starts a full pass by itself
    for _ in range(3 * young):  # many young passes: a young cycle is still freed by them
        _Cycle()
    assert sum(isinstance(o, _Cycle) for o in gc.get_objects()) < young


async def test_the_full_collector_runs_on_schedule_and_logs_each_pass() -> None:
    with structlog.testing.capture_logs() as logs:
        collector = FullCollector(interval=0.05)
        collector.start()
        try:
            long_lived = _Cycle()
            gc.collect(1)  # promote it, as a call lives through young passes
            del long_lived
            for _ in range(100):
                if collector.passes >= 2:
                    break
                await asyncio.sleep(0.02)
        finally:
            await collector.stop()
    passes = [e for e in logs if e["event"] == "runtime.gc_full"]
    assert len(passes) >= 2
    assert sum(p["unreachable"] for p in passes) >= 1  # the promoted cycle
    assert all(p["ms"] >= 0 and p["tracked"] > 0 for p in passes)
    assert not any(isinstance(o, _Cycle) for o in gc.get_objects())


def test_a_collector_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        FullCollector(interval=0)
