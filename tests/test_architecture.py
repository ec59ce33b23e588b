"""The layout table of docs/ARCHITECTURE.md §2, enforced: what each package may import.

Every module of a package in ``LAYERS`` is parsed, and each import it makes (stdlib, third
party, or first party, including imports inside functions and under ``TYPE_CHECKING``) must be
allowed for that package:

* stdlib: any, except that the cores (``CORES``) never import I/O, clocks or randomness
  (the sans-IO rule: time comes in as ``now``, randomness from an injected factory);
* everything else: only the roots listed for the package. First-party imports are named by
  package (``conf_server.domain``, ``sip``); the top-level modules of ``conf_server`` that any
  layer may use are listed one by one (``conf_server.logs``).

``conf_server/runtime`` and the commands beside the packages (``conf_server/cli.py`` …) wire
everything together and are not restricted.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = frozenset({"asyncio", "socket", "selectors", "threading", "time", "random"})
LAYERS: dict[str, frozenset[str]] = {
    "sip": frozenset({"sip"}),
    "media": frozenset({"media", "numpy"}),
    "conf_server/engine": frozenset({"conf_server.engine", "media", "sip", "numpy"}),
    "conf_server/domain": frozenset({"conf_server.domain", "sip", "media", "phonenumbers"}),
    "conf_server/store": frozenset(
        {"conf_server.store", "conf_server.domain", "sqlalchemy", "alembic"}
    ),
    "conf_server/api": frozenset(
        {
            "conf_server.api",
            "conf_server.domain",
            "conf_server.store",
            "conf_server.logs",
            "fastapi",
            "starlette",
            "pydantic",
            "uvicorn",
            "httpx",
        }
    ),
}  # fmt: skip
CORES = ("sip", "media", "conf_server/engine", "conf_server/domain")


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _root(module: str) -> str:
    """The layer an imported module belongs to: ``conf_server.x`` or its top-level name."""
    parts = module.split(".")
    if parts[0] == "conf_server" and len(parts) > 1:
        return f"conf_server.{parts[1]}"
    return parts[0]


def imports(tree: ast.AST) -> set[str]:
    """Every absolute module an AST imports (relative imports stay inside their package)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "conf_server":  # "from conf_server import logs"
                found.update(f"conf_server.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def violations(package: str, tree: ast.AST) -> list[str]:
    """What ``tree`` (a module of ``package``) imports that the layout does not allow it."""
    allowed = LAYERS[package]
    bad = []
    for module in sorted(imports(tree)):
        root = _root(module)
        if root in sys.stdlib_module_names:
            if package in CORES and root in FORBIDDEN:  # I/O, a clock or randomness in a core
                bad.append(module)
        elif root not in allowed:
            bad.append(module)
    return bad


CASES = [(package, path) for package in LAYERS for path in _modules(package)]


def test_every_layer_exists_and_has_modules() -> None:
    for package in LAYERS:
        assert len(_modules(package)) >= 2, package


@pytest.mark.parametrize(
    ("package", "path"), CASES, ids=[str(p.relative_to(ROOT)) for _, p in CASES]
)
def test_module_imports_only_what_its_layer_may(package: str, path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = violations(package, tree)
    assert not bad, f"{path.relative_to(ROOT)} may not import {bad} ({package}: {LAYERS[package]})"


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("sip", "import time\nfrom asyncio import sleep\n", ["asyncio", "time"]),
        ("media", "import numpy\nfrom sip.message import Request\n", ["sip.message"]),
        (
            "conf_server/domain",
            "def f():\n    from conf_server.store import S\n",
            ["conf_server.store"],
        ),
        ("conf_server/engine", "from conf_server.runtime import engine\n", ["conf_server.runtime"]),
        (
            "conf_server/api",
            "from conf_server import config\nimport socket\n",
            ["conf_server.config"],
        ),
        ("conf_server/store", "from conf_server.domain import attributes\nimport time\n", []),
    ],
    ids=["core-io", "media-sip", "domain-store", "engine-runtime", "api-config", "store-ok"],
)
def test_the_checker_catches_what_the_table_forbids(
    package: str, source: str, expected: list[str]
) -> None:
    assert violations(package, ast.parse(source)) == expected
