"""Benchmark: N-1 mix + gain + G.711 encode per 20 ms tick (issue 3 targets).

Targets: one meeting of 1,000 legs ≤ 1 ms per tick; 1,000 meetings of 3 ≤ 2.5 ms per tick.

Each scenario builds a ``MixPlan`` once (topology changes happen between ticks), then runs many
ticks of: ``mix`` with a reused workspace, µ-law encode of the shared rows that someone hears
(once per meeting) and of every private frame (talkers' N-1 and gain legs). Inputs are random
speech-level frames; gains are set on a tenth of the legs so the gain paths are exercised.
Run: ``.venv/bin/python benchmarks/bench_mixer.py [--ticks N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from media.g711 import ulaw_encode
from media.mixer import FRAME, MixPlan, MixWorkspace, mix


@dataclass(frozen=True)
class Scenario:
    name: str
    meetings: int
    legs_per_meeting: int
    talker_share: float


SCENARIOS = [
    *(Scenario(f"1 meeting x {n} legs, 10% talking", 1, n, 0.1) for n in (10, 100, 1000, 5000)),
    *(Scenario(f"1 meeting x {n} legs, all talking", 1, n, 1.0) for n in (10, 100, 1000, 5000)),
    Scenario("1000 meetings x 3 legs, 1 talking each", 1000, 3, 1 / 3),
    Scenario("1000 meetings x 3 legs, all talking", 1000, 3, 1.0),
]


def _tick(
    plan: MixPlan,
    frames: NDArray[np.int16],
    talking: NDArray[np.bool_],
    work: MixWorkspace,
) -> tuple[int, int]:
    """One tick; returns (ns spent mixing, ns spent mixing and encoding)."""
    start = time.perf_counter_ns()
    result = mix(plan, frames, talking, work=work)
    mixed = time.perf_counter_ns()
    ulaw_encode(result.shared[result.shared_used])
    ulaw_encode(result.private)
    return mixed - start, time.perf_counter_ns() - start


def run(
    scenario: Scenario, ticks: int, rng: np.random.Generator
) -> tuple[list[float], list[float]]:
    """Microseconds per tick (mix only, mix + encode) for ``ticks`` ticks of ``scenario``."""
    n = scenario.meetings * scenario.legs_per_meeting
    meeting = np.repeat(np.arange(scenario.meetings), scenario.legs_per_meeting)
    gains = np.where(rng.random(n) < 0.1, rng.uniform(-20, 20, n), 0.0)
    plan = MixPlan.build(meeting, input_gain_db=gains, output_gain_db=gains[::-1].copy())
    frames = (rng.standard_normal((n, FRAME)) * 3000).astype(np.int16)
    position = np.tile(np.arange(scenario.legs_per_meeting), scenario.meetings)
    talking = position < max(1, round(scenario.talker_share * scenario.legs_per_meeting))
    work = MixWorkspace()
    for _ in range(20):  # warm caches and the workspace
        _tick(plan, frames, talking, work)
    mixing, total = [], []
    for _ in range(ticks):
        mix_ns, total_ns = _tick(plan, frames, talking, work)
        mixing.append(mix_ns / 1000.0)
        total.append(total_ns / 1000.0)
    return mixing, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    for scenario in SCENARIOS:
        mixing, total = run(scenario, args.ticks, rng)
        print(
            f"mixer: {scenario.name}: {statistics.median(total) / 1000:.3f} ms/tick (median), "
            f"min {min(total) / 1000:.3f} ms; mix alone {statistics.median(mixing) / 1000:.3f} ms "
            f"(median), min {min(mixing) / 1000:.3f} ms; {args.ticks} ticks"
        )


if __name__ == "__main__":
    main()
