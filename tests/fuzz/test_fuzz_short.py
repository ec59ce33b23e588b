"""The fuzz targets in the test run: every saved regression replayed, every target fuzzed briefly.

``test_regression`` replays each file of ``tests/data/fuzz/regressions/`` through its target
(named by the file's prefix) with the crash rule of ``tests/fuzz/common.py``, in this process
and uninstrumented: a few milliseconds each.  A file fails until the parser it crashed is fixed.

``test_fuzz_briefly`` runs each target for ``SECONDS`` under atheris, in a child process
(``python -m tests.fuzz``) so that atheris's process-wide state (instrumented modules, signal
handlers, libFuzzer's exit) never touches pytest; about 11–12 s per target with start-up, under a
minute for the five.  It fails on any new crash and names the saved file; a regression file that
still fails is ``test_regression``'s to report, so the runner lets that crash through
(``tests/fuzz/runner.py``).  Deselect it with ``-m "not fuzz"``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.common import REGRESSIONS, ROOT, TARGETS, target_of
from tests.fuzz.replay import check

SECONDS = 10
REGRESSION_FILES = sorted(p for p in REGRESSIONS.glob("*.bin") if p.is_file())


def test_every_target_has_a_module_with_seeds() -> None:
    for target in TARGETS:
        assert (ROOT / "tests" / "fuzz" / f"{target}.py").is_file(), target


def test_regression_files_name_their_target() -> None:
    for path in REGRESSIONS.iterdir():
        if path.name != ".gitkeep":
            assert path.suffix == ".bin", path.name
            target_of(path)  # raises ValueError naming the file


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.name for p in REGRESSION_FILES])
def test_regression(path: Path) -> None:
    finding = check(target_of(path), path.read_bytes())
    assert finding is None, f"{path.name}: {finding.summary()}\n{finding.detail}"


@pytest.mark.fuzz
@pytest.mark.timeout(SECONDS + 90)
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_briefly(target: str, tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.importorskip("atheris", reason="atheris ships wheels for Linux only")
    command = [sys.executable, "-m", "tests.fuzz", target, "--seconds", str(SECONDS)]
    command += ["--corpus", str(tmp_path / "corpus")]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 80, check=False
    )
    assert done.returncode == 0, f"{target}:\n{done.stdout}{done.stderr}"
