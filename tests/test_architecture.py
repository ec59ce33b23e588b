"""The sans-IO rule (DESIGN.md §2): the cores never import I/O, clocks or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORES = ("sip", "media", "conf_server/domain")
FORBIDDEN = {"asyncio", "socket", "selectors", "threading", "time", "random"}


def _core_modules() -> list[Path]:
    return sorted(p for core in CORES for p in (ROOT / core).rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_cores_exist() -> None:
    assert len(_core_modules()) >= 3


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_is_sans_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = _imported_roots(tree) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_detector_catches_a_violation() -> None:
    tree = ast.parse("import time\nfrom asyncio import sleep\n")
    assert _imported_roots(tree) & FORBIDDEN == {"time", "asyncio"}
