"""Per-tick cost of in-band DTMF detection: the old per-leg loop against ``InbandBank``.

Every leg without telephone-event is detected on every tick for the whole call. Before the bank,
the engine core ran one ``InbandDetector.process`` per such leg (a Python loop of ~20 numpy calls
each); now one ``InbandBank.process`` takes the tick's frames of all of them. Both run here over
the same audio in one process, so compare the ratios: N legs of random speech-level noise,
silence and DTMF key presses (each leg its own), fed tick by tick from a different starting
phase (legs join at different times, so their 102-sample blocks are not aligned). The script also
checks that both give the same presses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from media.inband import COLS, KEYPAD, ROWS, InbandBank
from tests.media.inband_reference import ReferenceDetector

RATE = 8000
FRAME = 160


def _scene(rng: np.random.Generator, samples: int) -> NDArray[np.int16]:
    """One leg's audio: noise at speech levels, pauses, and keys (60-150 ms) now and then."""
    out = np.zeros(samples)
    pos = 0
    while pos < samples:
        n = int(rng.integers(80, 2400))
        kind = rng.random()
        if kind < 0.2:  # a key press
            key = int(rng.integers(0, 16))
            t = np.arange(min(n, 1200)) / RATE
            amp = 32767.0 * 10 ** ((rng.uniform(-25.0, -5.0) - 3.17) / 20)
            tone = amp * (
                np.sin(2 * np.pi * ROWS[key // 4] * t) + np.sin(2 * np.pi * COLS[key % 4] * t)
            )
            seg = tone[: samples - pos]
        elif kind < 0.6:  # talk
            seg = rng.normal(0.0, rng.uniform(300.0, 5000.0), min(n, samples - pos))
        else:  # pause: line noise
            seg = rng.normal(0.0, 20.0, min(n, samples - pos))
        out[pos : pos + seg.size] = seg
        pos += n
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def run(legs: int, ticks: int, seed: int) -> tuple[float, float, int]:
    """Median µs per tick (old loop, bank) over ``ticks`` ticks of ``legs`` legs, and presses."""
    rng = np.random.default_rng(seed)
    lead = rng.integers(0, 102, legs)  # a different block phase per leg
    audio = np.stack([_scene(rng, ticks * FRAME + 102)[s : s + ticks * FRAME] for s in lead])
    capacity = legs + legs // 3  # the engine's slots: some legs use RFC 4733 instead
    slots = np.sort(rng.choice(capacity, legs, replace=False))
    frames_of = np.zeros((capacity, ticks * FRAME), np.int16)
    frames_of[slots] = audio
    old = {int(s): ReferenceDetector() for s in slots}
    bank = InbandBank(capacity)
    for s in slots.tolist():
        bank.add(s)
    keys_old: list[tuple[int, str]] = []
    keys_new: list[tuple[int, str]] = []

    def old_tick(frames: NDArray[np.int16]) -> None:  # what core._detect_inband did
        for slot, detector in old.items():
            keys_old.extend((slot, k) for k in detector.process(frames[slot]))

    def new_tick(frames: NDArray[np.int16]) -> None:  # what core._detect_inband does
        active = bank.slots
        keys_new.extend(bank.process(frames[active], active))

    times: dict[str, list[float]] = {"old": [], "bank": []}
    steps: list[tuple[str, Callable[[NDArray[np.int16]], None]]] = [
        ("old", old_tick),
        ("bank", new_tick),
    ]
    for tick in range(ticks):
        frames = np.ascontiguousarray(frames_of[:, tick * FRAME : (tick + 1) * FRAME])
        for name, step in steps if tick % 2 else steps[::-1]:  # alternate who goes first
            t0 = time.perf_counter()
            step(frames)
            times[name].append(time.perf_counter() - t0)
    if sorted(keys_old) != sorted(keys_new):
        raise SystemExit(f"{legs} legs: the bank and the old loop disagree")
    return (
        statistics.median(times["old"]) * 1e6,
        statistics.median(times["bank"]) * 1e6,
        len(keys_new),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--legs", default="300,1000", help="comma-separated leg counts")
    ap.add_argument("--ticks", type=int, default=500, help="20 ms ticks per leg count")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"in-band DTMF per 20 ms tick, median of {args.ticks} ticks (keys: {''.join(KEYPAD)})")
    for legs in (int(x) for x in args.legs.split(",")):
        old, new, presses = run(legs, args.ticks, args.seed)
        print(
            f"{legs:5d} legs: per-leg loop {old:9.1f} µs/tick ({old / legs:5.2f} µs/leg, "
            f"{old / 200:5.1f} % of a tick)  bank {new:8.1f} µs/tick ({new / legs:5.3f} µs/leg, "
            f"{new / 200:5.2f} % of a tick)  ratio {old / new:5.1f}x  presses {presses} (same)"
        )


if __name__ == "__main__":
    main()
