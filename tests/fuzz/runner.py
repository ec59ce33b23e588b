"""Run one target for a while, confirm what crashes, save it: ``python -m tests.fuzz``.

Theory of operation: libFuzzer stops at the first crash and atheris changes the process
(instrumented modules, signal handlers), so the fuzzing happens in a child process
(``tests.fuzz.engine``) and this one only orchestrates:

1. the seeds (the target's ``seeds()``, ``tests/data/fuzz/seeds/TARGET/`` and the regressions of
   the target) are written to a temporary folder that libFuzzer reads; new inputs go to the
   corpus folder (``--corpus``, or a temporary one);
2. the child runs with ``-max_total_time`` set to the time left, ``-max_len=65536``, and
   libFuzzer's own ``-timeout`` as a last resort against a hang;
3. when it stops early, each artifact it left (``crash-*``, ``timeout-*``, ``oom-*``) is replayed
   uninstrumented in a fresh process (``tests.fuzz.replay``, under a time limit); a confirmed
   crash is copied to ``tests/data/fuzz/crashes/TARGET-<sha1>.bin`` with a ``.txt`` beside it
   (signature, traceback or timing), its signature is added to the list the child lets through,
   and the child starts again on the grown corpus until the time is used up.

Regression files of the target that still crash (``tests/data/fuzz/regressions/``, replayed
before the first run) are reported by ``test_fuzz_short.py::test_regression`` already: their
signatures start on the let-through list and the summary names them, so this run reports only
crashes that are new.  (A new crash with the same signature — same exception, same innermost
function — is hidden until the old one is fixed.)

The exit status is 1 when anything was saved, 0 otherwise, 2 when the child could not run.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.common import CRASHES, MAX_LEN, REGRESSIONS, ROOT, own_seeds
from tests.fuzz.replay import Finding, check

HANG_SECONDS = 20  # libFuzzer -timeout: an input that long is a hang, replayed to be sure
REPLAY_SECONDS = 120
MAX_RESTARTS = 50
_ARTIFACT = re.compile(r"(crash|timeout|oom|slow-unit|leak)-[0-9a-f]+")
_STAT = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_COVERAGE = re.compile(rb"cov: (\d+) ft: (\d+)")


class RunnerError(RuntimeError):
    """The fuzzing process failed without leaving a crash behind (bad flags, no atheris …)."""


@dataclass
class Report:
    """What one ``fuzz`` call did."""

    target: str
    seconds: float = 0.0
    executions: int = 0
    coverage: str = ""
    runs: int = 0
    saved: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)  # regression files, by signature

    def summary(self) -> str:
        rate = self.executions / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.target}: {self.executions} inputs in {self.seconds:.0f} s ({rate:.0f}/s), "
            f"{self.coverage or 'no coverage figure'}, {self.runs} fuzzing run(s), "
            f"{len(self.findings)} crash(es)"
        ]
        lines += [
            f"  CRASH {f.summary()} -> {p}" for f, p in zip(self.findings, self.saved, strict=True)
        ]
        lines += [f"  not reproduced without instrumentation: {n}" for n in self.unconfirmed]
        lines += [f"  known, regression file still fails: {s}" for s in self.still_failing]
        return "\n".join(lines)


def write_seeds(target: str, folder: Path) -> int:
    """Write every seed of ``target`` into ``folder``; the number written."""
    module = importlib.import_module(f"tests.fuzz.{target}")
    count = 0
    for data in (*module.seeds(), *own_seeds(target), *regressions(target)):
        name = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        (folder / name).write_bytes(data[:MAX_LEN])
        count += 1
    return count


def regressions(target: str) -> Iterable[bytes]:
    for path in sorted(REGRESSIONS.glob(f"{target}-*")):
        if path.is_file():
            yield path.read_bytes()


def failing_regressions(target: str) -> list[str]:
    """Signatures of the target's regression files that still crash (uninstrumented)."""
    found = (check(target, data) for data in regressions(target))
    return sorted({finding.signature for finding in found if finding is not None})


def replay(target: str, path: Path) -> Finding | None:
    """The crash rule applied to ``path`` in a fresh uninstrumented process."""
    command = [sys.executable, "-m", "tests.fuzz.replay", "--json", "--target", target, str(path)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, timeout=REPLAY_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        detail = f"still running after {REPLAY_SECONDS} s"
        return Finding(target, "hang", "hang", detail, float(REPLAY_SECONDS))
    lines = done.stdout.decode(errors="replace").splitlines()
    if done.returncode not in (0, 1) or not lines:
        raise RunnerError(f"replay of {path} failed: {done.stderr.decode(errors='replace')}")
    verdict = json.loads(lines[-1])
    return None if verdict is None else Finding(**verdict)


def save(finding: Finding, data: bytes, crash_dir: Path) -> Path:
    crash_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    path = crash_dir / f"{finding.target}-{digest}.bin"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(
        f"{finding.signature}\nkind: {finding.kind}\n\n{finding.detail}\n"
    )
    return path


def fuzz(
    target: str,
    seconds: float,
    *,
    corpus: Path | None = None,
    crash_dir: Path = CRASHES,
    keep_going: bool = True,
    verbose: bool = False,
) -> Report:
    """Fuzz ``target`` for ``seconds`` (see the module docstring)."""
    report = Report(target)
    started = time.monotonic()
    deadline = started + seconds
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        work = Path(tmp)
        seeds, artifacts = work / "seeds", work / "artifacts"
        seeds.mkdir()
        artifacts.mkdir()
        corpus_dir = (corpus or work / "corpus").resolve()  # the child runs in ROOT
        corpus_dir.mkdir(parents=True, exist_ok=True)
        write_seeds(target, seeds)
        known_file = work / "known.json"
        report.still_failing = failing_regressions(target)
        known = list(report.still_failing)
        while (left := deadline - time.monotonic()) >= 1 and report.runs < MAX_RESTARTS:
            known_file.write_text(json.dumps(known))
            log = work / f"run-{report.runs}.log"
            folders = _Folders(corpus_dir, seeds, artifacts, known_file)
            code = _run_child(target, int(left), folders, log)
            report.runs += 1
            _read_stats(log.read_bytes(), report)
            if verbose:
                sys.stderr.write(log.read_text(errors="replace"))
            found = sorted(p for p in artifacts.iterdir() if _ARTIFACT.fullmatch(p.name))
            for path in found:
                _judge(target, path, report, known, crash_dir)
                path.unlink()
            if code == 0:
                break
            if not found:
                tail = log.read_text(errors="replace")[-3000:]
                raise RunnerError(f"{target}: the fuzzing process exited {code}:\n{tail}")
            if report.findings and not keep_going:
                break
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class _Folders:
    corpus: Path  # libFuzzer writes new inputs to the first folder it is given
    seeds: Path
    artifacts: Path
    known: Path  # JSON list of the signatures already saved


def _run_child(target: str, seconds: int, folders: _Folders, log: Path) -> int:
    command = [
        sys.executable, "-m", "tests.fuzz.engine", target, "--known", str(folders.known), "--",
        f"-max_total_time={seconds}", f"-max_len={MAX_LEN}", f"-timeout={HANG_SECONDS}",
        f"-artifact_prefix={folders.artifacts}/", "-print_final_stats=1", "-rss_limit_mb=4096",
        str(folders.corpus), str(folders.seeds),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with log.open("wb") as out:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            return child.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise RunnerError(f"{target}: the fuzzing process overran its time by 2 min") from None


def _read_stats(log: bytes, report: Report) -> None:
    report.executions += sum(int(n) for n in _STAT.findall(log))
    coverage = _COVERAGE.findall(log)
    if coverage:
        cov, features = coverage[-1]
        report.coverage = f"cov {cov.decode()} ft {features.decode()}"


def _judge(target: str, path: Path, report: Report, known: list[str], crash_dir: Path) -> None:
    finding = replay(target, path)
    if finding is None:
        if path.name in report.unconfirmed:  # the same input again: not noise, a broken harness
            raise RunnerError(
                f"{target}: {path.name} crashes the fuzzing process every time but passes "
                f"uninstrumented (an instrumentation problem, see python -m tests.fuzz.engine)"
            )
        report.unconfirmed.append(path.name)
        return
    report.findings.append(finding)
    report.saved.append(save(finding, path.read_bytes(), crash_dir))
    if finding.signature not in known:
        known.append(finding.signature)
