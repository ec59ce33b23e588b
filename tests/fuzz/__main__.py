"""``python -m tests.fuzz TARGET [--seconds N] [--corpus DIR]``: see ``tests/fuzz/__init__.py``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fuzz.common import CRASHES, TARGETS
from tests.fuzz.runner import RunnerError, fuzz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description="Coverage-guided fuzzing of one conf-server parser (atheris/libFuzzer).",
    )
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument(
        "--corpus", type=Path, help="folder that keeps the inputs found (default: a temporary one)"
    )
    parser.add_argument(
        "--crashes", type=Path, default=CRASHES, help=f"where crashes go (default {CRASHES})"
    )
    parser.add_argument(
        "--first", action="store_true", help="stop at the first crash instead of looking on"
    )
    parser.add_argument("--verbose", action="store_true", help="show libFuzzer's output")
    args = parser.parse_args(argv)
    try:
        report = fuzz(
            args.target,
            args.seconds,
            corpus=args.corpus,
            crash_dir=args.crashes,
            keep_going=not args.first,
            verbose=args.verbose,
        )
    except RunnerError as err:
        sys.stderr.write(f"fuzz: {err}\n")
        return 2
    sys.stdout.write(report.summary() + "\n")
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
