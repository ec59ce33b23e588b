"""A bare clone is enough: nothing in the project reads outside the repository.

The suite, the server and the docs must work from ``git clone`` alone (``.ci/run`` runs the suite
from a fresh clone in an empty folder). These tests catch the usual ways a checkout grows a
dependency on its surroundings: a path that climbs out of the repository to a sibling folder, and
test data that git altered on the way in (line endings in the byte-exact SIP torture corpus,
which its own .gitattributes keeps as they are).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TORTURE = ROOT / "tests" / "data" / "sip-torture"
SKIP_DIRS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
TEXT_SUFFIXES = {
    ".py",
    ".pyi",
    ".c",
    ".md",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".json",
    ".yaml",
    ".yml",
    ".xml",
    ".sh",
    "",
}
# A path that leaves the repository for a sibling folder: "../<name>/…" written out, or built
# with pathlib as "parent / '<name>'" / "parents[N] / '<name>'" where N reaches past the root.
SIBLING = re.compile(
    r"\.\./(?:shared|seeds)\b"
    r"|\bparent\s*/\s*[\"'](?:shared|seeds)[\"']"
    r"|[\"']\.\.[\"']\s*,\s*[\"'](?:shared|seeds)[\"']"
)


def _project_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        names = [n for n in listed.stdout.decode().split("\0") if n]
        return sorted(ROOT / n for n in names if (ROOT / n).is_file())
    return sorted(  # not a git checkout (an unpacked archive): walk the tree
        p for p in ROOT.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.parts)
    )


def _text_files() -> list[Path]:
    return [
        p
        for p in _project_files()
        if p.suffix in TEXT_SUFFIXES and TORTURE not in p.parents and p != Path(__file__)
    ]


def test_the_scan_sees_the_project() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _text_files()}
    assert {"Makefile", "README.md", "docs/ARCHITECTURE.md", "tests/conftest.py"} <= names


@pytest.mark.parametrize(
    "line",
    [
        'TORTURE = ROOT.parent / "shared" / "x"',
        "see ../shared/DESIGN.md",
        "Path('..', 'seeds', 'a')",
    ],
)
def test_the_pattern_catches_a_sibling_path(line: str) -> None:
    assert SIBLING.search(line)


def test_no_file_reaches_outside_the_repository() -> None:
    found = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if SIBLING.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def _sums() -> dict[str, str]:
    pairs = (line.split(maxsplit=1) for line in (TORTURE / "SHA256SUMS").read_text().splitlines())
    return {name.strip(): digest for digest, name in pairs}


def test_torture_corpus_is_byte_exact() -> None:
    sums = _sums()
    assert len(sums) == 75  # 50 RFC 4475 + 12 RFC 5118 + 12 wire forms + 1 variant
    wrong = [
        name
        for name, digest in sums.items()
        if hashlib.sha256((TORTURE / name).read_bytes()).hexdigest() != digest
    ]
    assert not wrong, f"altered since the RFC archives (line endings?): {wrong}"


def test_every_corpus_file_is_listed() -> None:
    on_disk = {
        p.relative_to(TORTURE).as_posix()
        for p in TORTURE.rglob("*")
        if p.is_file() and p.name not in {"README.md", "SHA256SUMS", ".gitattributes"}
    }
    assert on_disk == set(_sums())
