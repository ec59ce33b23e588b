"""Replay inputs through a target without instrumentation: the judge of the crash rule.

::

    python -m tests.fuzz.replay FILE...                  # target from the name: TARGET-….bin
    python -m tests.fuzz.replay --target sdp FILE...
    python -m tests.fuzz.replay --minimize FILE --out tests/data/fuzz/regressions/sdp-what.bin

Each file is run through its target's ``one_input`` in this (uninstrumented) process.  An
exception is a crash at once.  Each run is timed twice over: wall-clock time
(``time.perf_counter``) and the CPU time of this thread (``time.thread_time``).  A run over
``BUDGET`` by both is timed again, up to ``REPEATS`` runs in all, and is a crash only if the
fastest of them is still over by both measures: on a shared two-core machine a busy neighbour
stretches wall-clock time (not CPU time) and a stall can hit one run, while a slow parser is slow
every time, on both clocks.  A slow input is named after
the project function that spent the most time (``cProfile``; time in builtins such as a regex
engine is charged to the project function that called them), so two different slow paths are
two distinct crashes.  Exit status 1 when any file crashes.

``--minimize`` shrinks a crashing input (delta debugging over octets) while it keeps crashing
with the same signature — for a slow input, while it stays at least ``--slow-factor`` times over
the budget, so that the saved regression fails clearly and not by a few microseconds.

``--worker TARGET`` is the fuzzing process's helper: it reads length-prefixed inputs on stdin
and answers one JSON line per input (``tests.fuzz.engine`` asks it whether an input that was
slow under instrumentation is slow without it).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import pstats
import struct
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.fuzz.common import BUDGET, TARGETS, signature, target_of

REPEATS = 5
FRAME = struct.Struct("!I")
OneInput = Callable[[bytes], None]
_PROJECT = ("sip/", "media/")


@dataclass(frozen=True)
class Finding:
    """One crash: ``kind`` is ``exception``, ``slow`` or ``hang`` (killed by a timeout)."""

    target: str
    kind: str
    signature: str
    detail: str
    seconds: float

    def summary(self) -> str:
        return f"{self.target}: {self.signature} ({self.seconds * 1000:.1f} ms)"


_LOADED: dict[str, OneInput] = {}


def load(target: str) -> OneInput:
    """The ``one_input`` of a target (imported on first use, so instrumentation can come first)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    if target not in _LOADED:
        module = importlib.import_module(f"tests.fuzz.{target}")
        _LOADED[target] = module.one_input
    return _LOADED[target]


def _timed(one_input: OneInput, data: bytes) -> tuple[float, float, Exception | None]:
    """(wall-clock seconds, CPU seconds of this thread, the exception raised or None)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        one_input(data)
    except Exception as exc:  # noqa: BLE001 — any exception at all is what the rule looks for
        return time.perf_counter() - wall, time.thread_time() - cpu, exc
    return time.perf_counter() - wall, time.thread_time() - cpu, None


def check(target: str, data: bytes, *, repeats: int = REPEATS) -> Finding | None:
    """Apply the crash rule to one input; None when it passes."""
    one_input = load(target)
    wall, cpu, exc = _timed(one_input, data)
    if exc is not None:
        detail = "".join(traceback.format_exception(exc))
        return Finding(target, "exception", signature(exc), detail, wall)
    for _ in range(repeats - 1):
        if min(wall, cpu) <= BUDGET:
            return None
        again, again_cpu, _ = _timed(one_input, data)
        wall, cpu = min(wall, again), min(cpu, again_cpu)
    if min(wall, cpu) <= BUDGET:
        return None
    where = hotspot(one_input, data)
    detail = (
        f"{wall * 1000:.1f} ms wall-clock, {cpu * 1000:.1f} ms CPU at best of {repeats} runs "
        f"(budget {BUDGET * 1000:.0f} ms)"
    )
    return Finding(target, "slow", f"slow in {where}", detail, wall)


def hotspot(one_input: OneInput, data: bytes) -> str:
    """The project function where a slow input spends its time (see the module docstring)."""
    profile = cProfile.Profile()
    profile.runcall(one_input, data)
    own: defaultdict[str, float] = defaultdict(float)
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, dict[object, object]]]
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]  # undocumented table
    for (filename, _, name), (_, _, own_time, _, callers) in stats.items():
        if _project(filename):
            own[f"{_relative(filename)}:{name}"] += own_time
            continue
        for caller, timing in callers.items():
            assert isinstance(caller, tuple) and isinstance(timing, tuple)
            if _project(caller[0]):
                own[f"{_relative(caller[0])}:{caller[2]}"] += timing[2]
    return max(own, key=own.__getitem__) if own else "?"


def _relative(filename: str) -> str:
    for prefix in _PROJECT:
        at = filename.replace("\\", "/").rfind("/" + prefix)
        if at >= 0:
            return filename[at + 1 :]
    return filename


def _project(filename: str) -> bool:
    return _relative(filename).startswith(_PROJECT)


# --------------------------------------------------------------------------- minimising


def minimize(
    target: str, data: bytes, finding: Finding, *, slow_factor: float = 5.0, seconds: float = 300
) -> bytes:
    """The smallest input found that still crashes the same way (octet-level delta debugging)."""
    deadline = time.monotonic() + seconds

    def same(candidate: bytes) -> bool:
        found = check(target, candidate, repeats=3)
        if found is None or found.signature != finding.signature:
            return False
        return found.kind != "slow" or found.seconds >= slow_factor * BUDGET

    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        changed = False
        pos = 0
        while pos < len(data) and time.monotonic() < deadline:
            candidate = data[:pos] + data[pos + chunk :]
            if candidate and same(candidate):
                data, changed = candidate, True
            else:
                pos += chunk
        if not changed:
            chunk //= 2
    return data


# --------------------------------------------------------------------------- worker


def worker(target: str) -> None:
    """Answer ``check`` for each length-prefixed input on stdin, one JSON line each."""
    load(target)
    source, sink = sys.stdin.buffer, sys.stdout
    while header := source.read(FRAME.size):
        (size,) = FRAME.unpack(header)
        finding = check(target, source.read(size))
        sink.write(json.dumps(None if finding is None else asdict(finding)) + "\n")
        sink.flush()


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.replay", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--target", choices=TARGETS)
    parser.add_argument("--json", action="store_true", help="one JSON line per file")
    parser.add_argument("--minimize", action="store_true")
    parser.add_argument("--out", type=Path, help="where --minimize writes (default FILE.min)")
    parser.add_argument("--slow-factor", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=300.0, help="--minimize time limit")
    parser.add_argument("--worker", choices=TARGETS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    crashed = False
    for path in args.files:
        target = args.target or target_of(path)
        data = path.read_bytes()
        finding = check(target, data)
        crashed |= finding is not None
        if args.json:
            sys.stdout.write(json.dumps(None if finding is None else asdict(finding)) + "\n")
            continue
        if finding is None:
            sys.stdout.write(f"{path}: ok ({len(data)} bytes)\n")
            continue
        sys.stdout.write(f"{path}: CRASH {finding.summary()}\n{finding.detail}\n")
        if args.minimize:
            small = minimize(
                target, data, finding, slow_factor=args.slow_factor, seconds=args.seconds
            )
            out = args.out or path.with_name(path.name + ".min")
            out.write_bytes(small)
            sys.stdout.write(f"  minimized {len(data)} -> {len(small)} bytes: {out}\n")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
