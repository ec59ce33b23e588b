"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def torture_dir() -> Path:
    """The RFC 4475 / RFC 5118 corpus beside the checkout (``../shared/sip-torture``)."""
    path = SHARED / "sip-torture"
    if not path.is_dir():
        pytest.fail(f"SIP torture corpus missing at {path}: the checkout needs shared/ beside it")
    return path
