"""The prompt catalogue and words spoken by concatenation.

Theory of operation: every sentence the server can say is one short recording named after what
it says (``enter_access_code``, ``conference_full``); anything that varies — a count, a key
sequence, the entry/exit tone state — is spoken by concatenating single-word recordings
("there_are" "twelve" "participants"), the way telephone bridges have done it since before
text-to-speech: the recordings stay few and small, a deployment can re-record any of them by name
(``conf_server.prompts``), and no recording ever contains a secret such as an access code.

This module only *names* audio: the functions return tuples of catalogue names, which the IVR and
the meeting service put into ``PlayPrompt`` actions. ``conf_server.prompts_build`` turns
``CATALOGUE`` into ``config/prompts/en/<name>.wav`` with espeak-ng.

Numbers are American English without "and" (345 → "three hundred forty five"), from zero up to
``MAX_SPOKEN_NUMBER``; keypad keys are the digit words plus "star" and "pound" (RFC 4733 §3.2
events 0–11).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Final

ONES: Final = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
TENS: Final = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

# Scale words, largest first; each group of three digits is spoken followed by its scale word.
_SCALES: Final = ((1_000_000, "million"), (1_000, "thousand"))
MAX_SPOKEN_NUMBER: Final = 999_999_999

_SENTENCES: Final = {
    # Entry and the access-code / PIN dialogue (IVR).
    "welcome": "Welcome to the conference service.",
    "enter_access_code": "Please enter your access code, followed by the pound key.",
    "enter_pin": "Please enter your PIN, followed by the pound key.",
    "invalid_code": "That access code is not valid.",
    "invalid_pin": "That PIN is not valid.",
    "too_many_attempts": "You have made too many unsuccessful attempts.",
    "access_refused": "Access from your line is temporarily refused. Please try again later.",
    "goodbye": "Goodbye.",
    # Joining.
    "waiting_for_host": "Please wait. The conference will begin when the host arrives.",
    "conference_locked": "This conference is locked.",
    "conference_full": "This conference is full.",
    "first_participant": "You are the first participant.",
    "recorded_name_prompt": "After the tone, please say your name, then press the pound key.",
    "has_joined": "has joined the conference.",
    "has_left": "has left the conference.",
    # In-meeting keypad feedback.
    "you_are_muted": "You are muted.",
    "you_are_unmuted": "You are unmuted.",
    "conference_muted": "All participants are muted.",
    "conference_unmuted": "All participants are unmuted.",
    "conference_now_locked": "The conference is now locked.",
    "conference_now_unlocked": "The conference is now unlocked.",
    "conference_on_hold": "The conference is on hold.",
    "conference_resumed": "The conference has resumed.",
    "not_allowed": "That option is not allowed.",
    "entry_tones": "Entry tones",
    "exit_tones": "exit tones",
    "on": "on",
    "off": "off",
    # Participant count.
    "there_is": "There is",
    "there_are": "There are",
    "participant": "participant",
    "participants": "participants",
    "you_are_the_only_participant": "You are the only participant.",
    # Ending.
    "host_left_ending": "The host has left. The conference will end shortly.",
    "ending_in_one_minute": "The conference will end in one minute.",
    "call_ending_in_one_minute": "Your call will end in one minute.",
    "conference_ended": "The conference has ended.",
    # Help menu: each line is followed by the keys that do it ("star" "six").
    "help_intro": "The following options are available.",
    "help_self_mute": "To mute or unmute yourself, press",
    "help_participant_count": "To hear the number of participants, press",
    "help_help": "To hear this menu again, press",
    "help_exit": "To leave the conference, press",
    "help_mute_all": "To mute or unmute all participants, press",
    "help_lock": "To lock or unlock the conference, press",
    "help_hold": "To put the conference on hold or resume it, press",
    "help_tones": "To change the entry and exit tones, press",
}

_WORDS: Final = {
    **{word: word for word in ONES},
    **{word: word for word in TENS},
    "hundred": "hundred",
    "thousand": "thousand",
    "million": "million",
    "star": "star",
    "pound": "pound",
}

CATALOGUE: Final = MappingProxyType({**_SENTENCES, **_WORDS})
"""Every prompt name → the English text it says (the generator's input)."""

_KEY_WORDS: Final = MappingProxyType(
    {**{str(d): ONES[d] for d in range(10)}, "*": "star", "#": "pound"}
)

HELP_FEATURES: Final = (
    "self_mute",
    "participant_count",
    "help",
    "exit",
    "mute_all",
    "lock",
    "hold",
    "tones",
)
"""Keypad features the help menu can describe, in the order it describes them."""


def _below_thousand(n: int) -> tuple[str, ...]:
    """Words of 1 ≤ n ≤ 999 (callers handle zero, which is silent inside larger numbers)."""
    hundreds, rest = divmod(n, 100)
    words: list[str] = []
    if hundreds:
        words += [ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(TENS[tens - 2])
        if ones:
            words.append(ONES[ones])
    elif rest:
        words.append(ONES[rest])
    return tuple(words)


def say_number(n: int) -> tuple[str, ...]:
    """The prompt names that speak ``n`` (0 ≤ n ≤ 999,999,999): 345 → three hundred forty five."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"say_number needs an int, got {type(n).__name__}")
    if not 0 <= n <= MAX_SPOKEN_NUMBER:
        raise ValueError(f"say_number: {n} is outside 0..{MAX_SPOKEN_NUMBER}")
    if n == 0:
        return ("zero",)
    words: list[str] = []
    rest = n
    for scale, word in _SCALES:
        group, rest = divmod(rest, scale)
        if group:
            words += [*_below_thousand(group), word]
    if rest:
        words += _below_thousand(rest)
    return tuple(words)


def participant_count(n: int) -> tuple[str, ...]:
    """How many people are in the meeting, counting the listener who asked (n ≥ 1)."""
    if n < 1:
        raise ValueError(f"participant_count: the asker is in the meeting, so n ≥ 1 (got {n})")
    if n == 1:
        return ("you_are_the_only_participant",)
    return ("there_are", *say_number(n), "participants")


def say_keys(keys: str) -> tuple[str, ...]:
    """Speak a keypad sequence, e.g. ``"*6"`` → ("star", "six"); for help, never for secrets."""
    unknown = sorted(set(keys) - _KEY_WORDS.keys())
    if not keys or unknown:
        raise ValueError(f"say_keys: {keys!r} is not a sequence of 0-9, * and #")
    return tuple(_KEY_WORDS[key] for key in keys)


def help_menu(bindings: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The help menu for the (feature, keys) pairs a caller may use, e.g. ("self_mute", "*6")."""
    words: list[str] = ["help_intro"]
    for feature, keys in bindings:
        if feature not in HELP_FEATURES:
            raise ValueError(f"help_menu: unknown feature {feature!r}; known: {HELP_FEATURES}")
        words += [f"help_{feature}", *say_keys(keys)]
    return tuple(words)


def tone_state(entry: bool, exit_: bool) -> tuple[str, ...]:
    """Announce the entry/exit tone setting: "Entry tones" "on" "exit tones" "off"."""
    return ("entry_tones", "on" if entry else "off", "exit_tones", "on" if exit_ else "off")
