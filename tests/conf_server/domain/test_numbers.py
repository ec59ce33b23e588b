"""E.164 normalisation of DIDs and caller numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.domain.numbers import country_of, normalize

TABLE = [
    # US: every way a trunk or an operator writes the demo DID
    ("+12125550100", "US", "+12125550100"),
    ("12125550100", "US", "+12125550100"),
    ("2125550100", "US", "+12125550100"),
    ("(212) 555-0100", "US", "+12125550100"),
    ("+1 212.555.0100", "US", "+12125550100"),
    ("  +1-212-555-0100  ", "US", "+12125550100"),
    ("+12125550100", "GB", "+12125550100"),  # international form ignores the region
    # UK
    ("020 7183 8750", "GB", "+442071838750"),
    ("+44 20 7183 8750", "US", "+442071838750"),
    ("442071838750", "US", "+442071838750"),  # international without "+": second try
    ("020 7183 8750", "gb", "+442071838750"),  # region in any case
    # vanity letters (ITU E.161 keypad)
    ("1-800-FLOWERS", "US", "+18003569377"),
    ("+1-800-FLOWERS", "GB", "+18003569377"),
    # invalid
    ("", "US", None),
    ("   ", "US", None),
    ("abc", "US", None),
    ("12345", "US", None),
    ("+1 212 555 01000", "US", None),  # one digit too many
    ("020 7183 8750", "US", None),  # a UK national number is not a US one
    ("2125550100", "GB", None),
    ("+99912345678", "US", None),  # unassigned country code
    ("1" * 65, "US", None),
]


@pytest.mark.parametrize(("number", "region", "expected"), TABLE)
def test_normalize(number: str, region: str, expected: str | None) -> None:
    assert normalize(number, region) == expected


def test_region_defaults_to_us() -> None:
    assert normalize("2125550100") == "+12125550100"


@pytest.mark.parametrize(
    ("e164", "country"), [("+12125550100", "US"), ("+442071838750", "GB"), ("+1", None)]
)
def test_country_of(e164: str, country: str | None) -> None:
    assert country_of(e164) == country


@given(st.text(max_size=40))
def test_normalize_never_raises_and_returns_e164_or_none(text: str) -> None:
    result = normalize(text)
    if result is not None:
        assert result.startswith("+")
        assert result[1:].isdigit()
        assert normalize(result) == result  # idempotent
