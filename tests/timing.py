"""Timing helpers for the tests that bound what hostile input may cost (issue 19).

Time is measured, never slept: each figure is the best of interleaved samples with the cycle
collector off, and a linear-growth check compares two sizes measured in the same run, so a
loaded machine slows both sides alike instead of failing the test.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest


def costs(*calls: Callable[[], object]) -> list[float]:
    """Seconds per call of each: best of 7 interleaved samples.

    Every sample lasts about as long (3 ms, or one call of the slowest), so each is as likely
    to be cut by other work on a shared machine. The cycle collector is off while timing: its
    passes cost in proportion to everything the test process holds, not to the input (the
    server schedules them itself, runtime/heap.py).
    """
    gc.collect()
    gc.disable()
    try:
        once = []
        for call in calls:
            start = time.perf_counter()
            call()
            once.append(max(time.perf_counter() - start, 1e-7))
        span = max(0.003, *once)
        loops = [max(1, round(span / seconds)) for seconds in once]
        best = [float("inf")] * len(calls)
        for _ in range(7):
            for i, call in enumerate(calls):
                start = time.perf_counter()
                for _ in range(loops[i]):
                    call()
                best[i] = min(best[i], (time.perf_counter() - start) / loops[i])
    finally:
        gc.enable()
    return best


def assert_linear(quarter: Callable[[], object], full: Callable[[], object]) -> None:
    """``full`` (4x the input of ``quarter``) takes < 50 ms and < 8x the time of ``quarter``.

    Measured up to 3 times: other work on a shared machine can slow one measurement down, but
    not turn a quadratic cost into a linear one.
    """
    for _ in range(3):
        small, large = costs(quarter, full)
        if large < 0.050 and large < 8 * small:
            return
    pytest.fail(f"{small * 1e6:.0f} us for 1/4 of the input, {large * 1e6:.0f} us for all of it")
