"""The PIN check: every record compared, in constant time, the organizer flag of the match."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.domain.pins import PinRecord, match_pin

ROOM: list[PinRecord] = [("1357", False), ("2468", True), ("0000", False)]


@pytest.mark.parametrize(
    ("entered", "expected"),
    [
        ("1357", (True, False)),
        ("2468", (True, True)),
        ("0000", (True, False)),
        ("2469", (False, False)),
        ("246", (False, False)),  # a prefix is no match
        ("24680", (False, False)),
        ("", (False, False)),
    ],
)
def test_match_and_organizer(entered: str, expected: tuple[bool, bool]) -> None:
    assert match_pin(ROOM, entered) == expected


def test_a_room_without_pins_matches_nothing() -> None:
    assert match_pin([], "1234") == (False, False)


def test_every_record_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append(a)
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # pins looks it up at each call
    assert match_pin(ROOM, "1357") == (True, False)  # the first record matches …
    assert seen == [b"1357", b"2468", b"0000"]  # … and every other one is compared all the same


def test_records_are_read_once_from_any_iterable() -> None:
    def records() -> Iterator[PinRecord]:
        yield from ROOM

    assert match_pin(records(), "2468") == (True, True)


@given(
    st.lists(st.tuples(st.text("0123456789", max_size=8), st.booleans()), max_size=6),
    st.text("0123456789", max_size=8),
)
def test_same_answer_as_a_plain_search(records: list[PinRecord], entered: str) -> None:
    matches = [organizer for pin, organizer in records if pin == entered]
    assert match_pin(records, entered) == (bool(matches), any(matches))
