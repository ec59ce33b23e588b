"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TORTURE = REPO / "tests" / "data" / "sip-torture"


@pytest.fixture(scope="session")
def torture_dir() -> Path:
    """The RFC 4475 / RFC 5118 corpus, carried as test data (``tests/data/sip-torture``)."""
    if not TORTURE.is_dir():
        pytest.fail(f"SIP torture corpus missing at {TORTURE}")
    return TORTURE
