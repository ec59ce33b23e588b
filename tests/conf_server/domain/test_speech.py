"""The prompt catalogue and numbers spoken by concatenation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.domain import speech
from conf_server.domain.speech import (
    CATALOGUE,
    HELP_FEATURES,
    MAX_SPOKEN_NUMBER,
    help_menu,
    participant_count,
    say_keys,
    say_number,
    tone_state,
)

# Written out by hand so that the test does not share the implementation's tables.
_SMALL = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALE = {"thousand": 1_000, "million": 1_000_000}


def _parse_words(words: tuple[str, ...]) -> int:
    """An independent reader of spoken English numbers, used to check say_number."""
    total = group = 0
    for word in words:
        if word in _SMALL:
            group += _SMALL[word]
        elif word == "hundred":
            group *= 100
        else:
            total += group * _SCALE[word]
            group = 0
    return total + group


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, ("zero",)),
        (7, ("seven",)),
        (12, ("twelve",)),
        (19, ("nineteen",)),
        (20, ("twenty",)),
        (45, ("forty", "five")),
        (100, ("one", "hundred")),
        (101, ("one", "hundred", "one")),
        (345, ("three", "hundred", "forty", "five")),
        (1_000, ("one", "thousand")),
        (2_005, ("two", "thousand", "five")),
        (10_010, ("ten", "thousand", "ten")),
        (999_999, ("nine", "hundred", "ninety", "nine", "thousand",
                   "nine", "hundred", "ninety", "nine")),
        (1_000_000, ("one", "million")),
        (3_000_042, ("three", "million", "forty", "two")),
    ],
)  # fmt: skip
def test_say_number_golden(n: int, words: tuple[str, ...]) -> None:
    assert say_number(n) == words


@given(st.integers(min_value=0, max_value=MAX_SPOKEN_NUMBER))
def test_say_number_round_trips_and_uses_only_catalogue_words(n: int) -> None:
    words = say_number(n)
    assert set(words) <= CATALOGUE.keys()
    assert _parse_words(words) == n
    assert "zero" not in words or words == ("zero",)


@pytest.mark.parametrize("bad", [-1, MAX_SPOKEN_NUMBER + 1])
def test_say_number_range_error_names_the_value(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"say_number: {bad} is outside 0\.\.999999999"):
        say_number(bad)


@pytest.mark.parametrize("bad", [True, 1.5, "3"])
def test_say_number_rejects_non_integers(bad: object) -> None:
    with pytest.raises(TypeError, match="say_number needs an int"):
        say_number(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, ("you_are_the_only_participant",)),
        (2, ("there_are", "two", "participants")),
        (12, ("there_are", "twelve", "participants")),
        (121, ("there_are", "one", "hundred", "twenty", "one", "participants")),
    ],
)
def test_participant_count(n: int, words: tuple[str, ...]) -> None:
    assert participant_count(n) == words


def test_participant_count_rejects_an_empty_meeting() -> None:
    with pytest.raises(ValueError, match=r"n ≥ 1 \(got 0\)"):
        participant_count(0)


def test_say_keys() -> None:
    assert say_keys("*6") == ("star", "six")
    assert say_keys("#0") == ("pound", "zero")
    with pytest.raises(ValueError, match=r"'\*A' is not a sequence"):
        say_keys("*A")
    with pytest.raises(ValueError, match="not a sequence"):
        say_keys("")


def test_help_menu_speaks_each_binding() -> None:
    assert help_menu([("self_mute", "*6"), ("exit", "*9")]) == (
        "help_intro",
        "help_self_mute",
        "star",
        "six",
        "help_exit",
        "star",
        "nine",
    )
    with pytest.raises(ValueError, match="unknown feature 'record'"):
        help_menu([("record", "*5")])


def test_every_help_feature_has_a_prompt() -> None:
    for feature in HELP_FEATURES:
        assert set(help_menu([(feature, "*1")])) <= CATALOGUE.keys()


@pytest.mark.parametrize(
    ("entry", "exit_", "words"),
    [
        (True, True, ("entry_tones", "on", "exit_tones", "on")),
        (True, False, ("entry_tones", "on", "exit_tones", "off")),
        (False, True, ("entry_tones", "off", "exit_tones", "on")),
        (False, False, ("entry_tones", "off", "exit_tones", "off")),
    ],
)
def test_tone_state(entry: bool, exit_: bool, words: tuple[str, ...]) -> None:
    assert tone_state(entry, exit_) == words


def test_catalogue_names_are_file_safe_and_texts_non_empty() -> None:
    for name, text in CATALOGUE.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert text.strip(), name


def test_catalogue_has_the_prompts_other_parts_rely_on() -> None:
    needed = {
        "welcome", "enter_access_code", "enter_pin", "invalid_code", "invalid_pin", "goodbye",
        "too_many_attempts", "access_refused", "waiting_for_host", "conference_locked",
        "conference_full", "first_participant", "you_are_muted", "you_are_unmuted",
        "conference_muted", "conference_unmuted", "conference_now_locked",
        "conference_now_unlocked", "there_are", "participants", "participant",
        "you_are_the_only_participant", "host_left_ending", "ending_in_one_minute",
        "not_allowed", "help_intro", "recorded_name_prompt", "has_joined", "has_left",
        "hundred", "thousand", "star", "pound",
    }  # fmt: skip
    assert needed <= CATALOGUE.keys()


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        speech.CATALOGUE["welcome"] = "hello"  # type: ignore[index]
