"""The in-meeting keypad: collecting key sequences and naming the operation each one asks for.

Source: the CarrierX Conference API v1 ``*_dtmf`` (which roles may use a feature) and
``*_dtmf_binding`` (which keys) attributes (``seeds/004_…``), as gathered by
``attributes.keypad_bindings``; keys arrive as RFC 4733 §3.2 events, SIP INFO or in-band tones.

Theory of operation
-------------------
A ``Collector`` per call holds the keys of a sequence in progress. ``press`` appends a key: a
complete binding is ``Matched`` (then the collector is empty again), a prefix of one is
``Pending`` with a deadline, and anything else is ``Unmatched`` — except that a key which itself
begins a binding starts a new sequence, so "*" "*" "6" is "*6" when "**" is not bound. Bindings
are checked prefix-free by ``attributes.check_bindings``, so the first complete match is the only
one possible. A pending sequence that sees no key until its deadline is dropped by ``expire``:
the runtime arms the timer the service asks for, as with every other timer.

``OPERATIONS`` maps the catalogue's features to what the meeting service does. Features the
bridge has no behaviour for (polling, recording, Q&A, operator …) are ``WEBHOOK``: the service
raises a ``KeypadSequence`` event so the application behind the callback decides ("raise hand").
Who may use a feature is the ``*_dtmf`` role set; the service answers anyone else "not_allowed".

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from conf_server.domain.attributes import Role
from conf_server.domain.errors import KeypadError
from conf_server.domain.speech import HELP_FEATURES

KEYPAD_TIMEOUT: Final = 3.0
"""Seconds a partial sequence waits for its next key before it is dropped."""

KEYS: Final = "0123456789*#ABCD"
_SPEAKABLE: Final = frozenset("0123456789*#")


class Operation(Enum):
    SELF_MUTE = "self_mute"
    PARTICIPANT_COUNT = "participant_count"
    HELP = "help"
    EXIT = "exit"
    MUTE_ALL = "mute_all"
    LOCK = "lock"
    HOLD = "hold"
    TONES = "tones"
    WEBHOOK = "webhook"


OPERATIONS: Final[Mapping[str, Operation]] = {
    "call_mute": Operation.SELF_MUTE,
    "call_participantsnumber": Operation.PARTICIPANT_COUNT,
    "call_instructions": Operation.HELP,
    "call_exit": Operation.EXIT,
    "conference_mute": Operation.MUTE_ALL,
    "conference_lock": Operation.LOCK,
    "conference_hold": Operation.HOLD,
    "conference_entryexittones": Operation.TONES,
}
"""Feature (binding attribute without ``_dtmf_binding``) → operation; others are ``WEBHOOK``."""


def operation(feature: str) -> Operation:
    return OPERATIONS.get(feature, Operation.WEBHOOK)


Bindings = Mapping[str, tuple[str, frozenset[Role]]]
"""``attributes.keypad_bindings``: feature → (keys, roles allowed)."""


@dataclass(frozen=True, slots=True)
class Collector:
    """A sequence in progress; empty ``keys`` means none."""

    keys: str = ""
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class Matched:
    feature: str
    keys: str


@dataclass(frozen=True, slots=True)
class Pending:
    deadline: float


@dataclass(frozen=True, slots=True)
class Unmatched:
    """Keys that began no binding, or a sequence that went astray (dropped quietly)."""

    keys: str


Outcome = Matched | Pending | Unmatched


def _classify(keys: str, bindings: Bindings) -> Matched | bool:
    """A complete match, or whether ``keys`` is a proper prefix of some binding."""
    for feature, (sequence, _) in bindings.items():
        if sequence == keys:
            return Matched(feature, keys)
    return any(sequence.startswith(keys) for sequence, _ in bindings.values())


def press(
    collector: Collector, key: str, bindings: Bindings, now: float, timeout: float = KEYPAD_TIMEOUT
) -> tuple[Collector, Outcome]:
    """Add ``key`` at ``now``; the new collector and what the key completed."""
    if len(key) != 1 or key not in KEYS:
        raise KeypadError(f"keypad: {key!r} is not one of {KEYS}")
    candidates = (collector.keys + key, key) if collector.keys else (key,)
    for keys in candidates:
        found = _classify(keys, bindings)
        if isinstance(found, Matched):
            return Collector(), found
        if found:
            deadline = now + timeout
            return Collector(keys, deadline), Pending(deadline)
    return Collector(), Unmatched(collector.keys + key)


def expire(collector: Collector, now: float) -> Collector:
    """Drop a pending sequence whose deadline has passed; the runtime's timer says when."""
    if collector.deadline is None or now < collector.deadline:
        raise KeypadError(f"keypad: nothing expires at {now} (deadline {collector.deadline})")
    return Collector()


def allowed(bindings: Bindings, feature: str, role: Role) -> bool:
    return role in bindings[feature][1]


def help_items(bindings: Bindings, role: Role) -> list[tuple[str, str]]:
    """(help feature, keys) that ``role`` may use, in the order ``speech.help_menu`` says them."""
    usable = {
        operation(feature).value: keys
        for feature, (keys, roles) in bindings.items()
        if role in roles
        and operation(feature) is not Operation.WEBHOOK
        and set(keys) <= _SPEAKABLE  # A-D have no recorded word; such bindings go unsaid
    }
    return [(name, usable[name]) for name in HELP_FEATURES if name in usable]
