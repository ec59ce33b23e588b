"""The fuzzing process: one target under atheris (libFuzzer), with ``sip`` and ``media``
instrumented for coverage.

::

    python -m tests.fuzz.engine TARGET [--known FILE] -- [libFuzzer flags] CORPUS_DIR...

``tests.fuzz.runner`` starts this process and restarts it after each crash; run it by hand only
to pass libFuzzer flags the runner does not (``-help=1`` lists them).

Theory of operation: ``sip`` and ``media`` are imported inside ``atheris.instrument_imports``,
so nothing may import them earlier in this process (``tests.fuzz.common`` and
``tests.fuzz.replay`` do not).  ``str`` comparisons (``startswith``/``endswith``) are hooked
too, which lets the fuzzer find the tokens the grammars compare against.

Every input is timed with ``time.perf_counter`` (and ``time.thread_time``, which a busy
neighbour process does not stretch) around the target's ``one_input``, outside the instrumented
code.  Instrumented code runs several times slower, so an input over ``BUDGET`` on both clocks
here is only a suspect: it goes to a helper process that runs the same target uninstrumented
(``python -m tests.fuzz.replay --worker``), and only the helper's verdict — the fastest of
several runs still over budget — makes it a crash.  The runner passes the signatures of crashes
it already saved (``--known``): an input that crashes one of those ways is let through, so one
run can find several distinct crashes instead of the same one again and again.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from tests.fuzz.common import BUDGET, TARGETS, signature
from tests.fuzz.replay import FRAME


class SlowInputError(Exception):
    """An input over the time budget without instrumentation: a crash by the rule."""


class Retimer:
    """Client of the uninstrumented helper process (started on first use)."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._process: subprocess.Popen[bytes] | None = None

    def judge(self, data: bytes) -> dict[str, object] | None:
        """The helper's finding for ``data`` (as a dict), or None when it passes."""
        process = self._start()
        stdin, stdout = self._pipes(process)
        stdin.write(FRAME.pack(len(data)) + data)
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the replay helper exited with {process.wait()}")
        verdict = json.loads(line)
        assert verdict is None or isinstance(verdict, dict)
        return verdict

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            command = [sys.executable, "-m", "tests.fuzz.replay", "--worker", self._target]
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._process

    @staticmethod
    def _pipes(process: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
        assert process.stdin is not None and process.stdout is not None
        return process.stdin, process.stdout


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.engine")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--known", type=Path, help="JSON list of crash signatures to let through")
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    libfuzzer = argv[split + 1 :]
    known = set(json.loads(args.known.read_text())) if args.known else set()

    import atheris  # only the fuzzing process needs it, and only after the parsing above

    # Not "RegEx": its pattern proxy breaks ``pattern.match(text, pos)`` (atheris 3.0), which the
    # parsers use; the regex engine is C code that atheris cannot see into anyway.
    atheris.enabled_hooks.add("str")
    with atheris.instrument_imports(include=["sip", "media"]):
        one_input = importlib.import_module(f"tests.fuzz.{args.target}").one_input
    retimer = Retimer(args.target)

    def test_one_input(data: bytes) -> None:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            one_input(data)
        except Exception as exc:
            if signature(exc) in known:
                return  # saved already: keep looking for other crashes
            raise
        elapsed = time.perf_counter() - start
        if min(elapsed, time.thread_time() - cpu) <= BUDGET:
            return
        verdict = retimer.judge(data)
        if verdict is not None and verdict["signature"] not in known:
            raise SlowInputError(
                f"{verdict['signature']}: {verdict['detail']} "
                f"({elapsed * 1000:.1f} ms instrumented)"
            )

    atheris.Setup([sys.argv[0], *libfuzzer], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
