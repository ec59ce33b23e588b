"""Meeting attributes: the catalogue, value validation and inheritance (CarrierX Conference API v1).

Source: the "Meeting Attributes" list and the "Attribute Object" of the CarrierX Conference API
(``seeds/004_…``). Every attribute has a type (``TYPE_STRING`` 0, ``TYPE_INT`` 2,
``TYPE_DTMF`` 3, ``TYPE_ROLE`` 4, ``TYPE_CHOICE`` 5, ``TYPE_UPLOAD`` 7), a default (the value of
the ``CONF`` call flow's attribute template) and a ``group`` bitmask saying at which levels the
call-flow value may be overridden:

====  ==========================  ====================================================
bit   value                       level that may override
====  ==========================  ====================================================
0     1                           DID Group (the spec writes "Call Flow and DID Group")
1     2                           DID
2     4                           Meeting Room
====  ==========================  ====================================================

The spec's "Where to Set" column maps onto the bitmask: "Meeting Room, DID Group" → 5,
"DID Group" → 1, "DID Group, DID" → 3. The spec gives no defaults except ``conference_language``
(EN) and the template sample (``call_announceparticipantcount`` = ``hpl``, group 5); the other
defaults are chosen in the spirit of common bridges and listed in ``CATALOGUE`` below.

Theory of operation
-------------------
Values are stored as canonical strings, as the spec's ``value`` field is a string. ``validate``
turns a user value (str or int) into that canonical string or raises ``AttributeValueError``
naming the attribute; ``resolve`` layers Call Flow → DID Group → DID → Meeting Room, refusing an
override at a level the attribute's group does not allow, and returns typed values (``int`` for
``TYPE_INT``, ``str`` otherwise). Role strings are subsets of ``hpl`` (host, participant,
listener); ``roles`` turns one into a set of ``Role``. Keypad bindings (``*_dtmf_binding``) must
not collide: no enabled sequence may equal or be a prefix of another, otherwise a keypad could
never tell them apart; ``resolve`` checks that on the effective values.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

# The store imports it from here.
from conf_server.domain.errors import AttributeValueError as AttributeValueError  # noqa: PLC0414


class Role(IntEnum):
    """The access level a keychain code grants (Meeting Key object, ``role``)."""

    HOST = 1
    PARTICIPANT = 2
    LISTENER = 3

    @property
    def letter(self) -> str:
        """The letter that stands for this role in ``TYPE_ROLE`` strings (``h``, ``p``, ``l``)."""
        return _ROLE_LETTERS[self]

    @classmethod
    def parse(cls, value: object) -> Role:
        """``1``/``2``/``3`` or ``host``/``participant``/``listener`` (any case) → ``Role``."""
        if isinstance(value, bool):
            raise ValueError(f"role must be 1, 2, 3 or a role name, not {value!r}")
        if isinstance(value, int) and value in cls._value2member_map_:
            return cls(value)
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValueError(f"role must be 1, 2, 3, host, participant or listener, not {value!r}")


_ROLE_LETTERS = {Role.HOST: "h", Role.PARTICIPANT: "p", Role.LISTENER: "l"}


class AttrType(IntEnum):
    """Attribute ``type`` codes of the spec."""

    STRING = 0
    INT = 2
    DTMF = 3
    ROLE = 4
    CHOICE = 5
    DB_REFERENCE = 6
    UPLOAD = 7


class Group(IntFlag):
    """The ``group`` bitmask: the levels below the call flow that may override a value."""

    DID_GROUP = 1
    DID = 2
    ROOM = 4


class Level(Enum):
    """Where a value is set, from the least to the most specific."""

    CALL_FLOW = "call flow"
    DID_GROUP = "DID group"
    DID = "DID"
    ROOM = "meeting room"


# The call flow holds the templates themselves, so it may set every attribute.
_LEVEL_BIT: Mapping[Level, Group] = {
    Level.CALL_FLOW: Group.DID_GROUP | Group.DID | Group.ROOM,
    Level.DID_GROUP: Group.DID_GROUP,
    Level.DID: Group.DID,
    Level.ROOM: Group.ROOM,
}


@dataclass(frozen=True)
class AttributeDef:
    """One catalogue entry: the spec's Attribute Object plus our validation rules."""

    name: str
    type: AttrType
    default: str
    group: Group
    description: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    pattern: str | None = None

    def may_set(self, level: Level) -> bool:
        """Whether a value may be set at ``level``."""
        return bool(self.group & _LEVEL_BIT[level])


_RG = Group.ROOM | Group.DID_GROUP  # "Meeting Room object, DID Group object" → 5
_G = Group.DID_GROUP  # "DID Group object" → 1
_GD = Group.DID_GROUP | Group.DID  # "DID Group object, DID object" → 3
_ON_OFF = ("on", "off")
_LANGUAGES = (
    "EN", "AR", "DE", "EL", "ES", "ES-LATAM", "FR", "GB", "HE", "IT", "JA", "KO", "NL", "PT",
    "PT-BR", "RU", "TR", "UA", "UK", "ZH",
)  # fmt: skip
_S, _I, _D = AttrType.STRING, AttrType.INT, AttrType.DTMF
_R, _C, _U = AttrType.ROLE, AttrType.CHOICE, AttrType.UPLOAD

# name, type, default, group, description, choices. Keypad defaults are two keys, "*" then a
# distinct second key, so none is a prefix of another (*6 self-mute as on most bridges).
_TABLE: tuple[tuple[str, AttrType, str, Group, str, tuple[str, ...]], ...] = (
    ("call_announceparticipantcount", _R, "hpl", _RG, "Announce participant count on enter", ()),
    ("call_associate_dtmf", _R, "", _RG, "Roles that may associate calls", ()),
    ("call_associate_dtmf_binding", _D, "", _G, "Keys to associate audio", ()),
    ("call_delay", _I, "0", _GD, "Seconds to delay before answering", ()),
    ("call_exit_dtmf", _R, "hpl", _RG, "Roles that may leave by keypad", ()),
    ("call_exit_dtmf_binding", _D, "*9", _G, "Keys to leave the call", ()),
    ("call_instructions_dtmf", _R, "hpl", _RG, "Roles that may hear the help", ()),
    ("call_instructions_dtmf_binding", _D, "**", _G, "Keys to play the help", ()),
    ("call_jobcodeonenter", _C, "off", _RG, "Ask for a job code before entering", _ON_OFF),
    ("call_maxduration", _I, "-1", _RG, "Maximal call duration (s), -1 unlimited", ()),
    ("call_mute_dtmf", _R, "hp", _RG, "Roles that may mute themselves", ()),
    ("call_mute_dtmf_binding", _D, "*6", _G, "Keys to toggle self mute", ()),
    ("call_operator_after", _I, "3", _G, "Failed access code attempts allowed, -1 unlimited", ()),
    ("call_operator_dtmf", _R, "", _RG, "Roles that may call the operator", ()),
    ("call_operator_dtmf_binding", _D, "*0", _G, "Keys to call the operator", ()),
    ("call_participantsnumber_dtmf", _R, "hpl", _RG, "Roles that may hear the count", ()),
    ("call_participantsnumber_dtmf_binding", _D, "*#", _G, "Keys to hear the count", ()),
    ("conference_appspecific", _S, "", _RG, "Application-specific data", ()),
    ("conference_callerdb", _C, "off", _RG, "Callers database", _ON_OFF),
    ("conference_country", _S, "", _RG, "Conference country", ()),
    ("conference_distributed", _C, "off", _RG, "Distributed conferencing", _ON_OFF),
    ("conference_entryexittones_dtmf", _R, "h", _RG, "Roles that may cycle entry/exit tones", ()),
    ("conference_entryexittones_dtmf_binding", _D, "*4", _G, "Keys to cycle entry/exit tones", ()),
    ("conference_entrytones", _C, "on", _RG, "Tone when a party joins", _ON_OFF),
    ("conference_exittones", _C, "on", _RG, "Tone when a party leaves", _ON_OFF),
    ("conference_hold_dtmf", _R, "h", _RG, "Roles that may put the conference on hold", ()),
    ("conference_hold_dtmf_binding", _D, "*8", _G, "Keys to toggle hold", ()),
    ("conference_hold_policy", _R, "", _RG, "Roles on hold when the conference begins", ()),
    ("conference_jobcode_dtmf", _R, "", _RG, "Roles that may enter a job code", ()),
    ("conference_jobcode_dtmf_binding", _D, "", _G, "Keys to enter a job code", ()),
    ("conference_language", _C, "EN", _RG, "Meeting language", _LANGUAGES),
    ("conference_lock_dtmf", _R, "h", _RG, "Roles that may lock the conference", ()),
    ("conference_lock_dtmf_binding", _D, "*7", _G, "Keys to toggle the lock", ()),
    ("conference_maxcalls", _I, "1000", _RG, "Maximal calls per conference, -1 unlimited", ()),
    ("conference_maxcallsperrole", _S, "-1:-1:-1", _RG, "Maximal calls per role h:p:l", ()),
    ("conference_maxduration", _I, "-1", _RG, "Maximal conference duration (s), -1 unlimited", ()),
    ("conference_mute_dtmf", _R, "h", _RG, "Roles that may mute the others", ()),
    ("conference_mute_dtmf_binding", _D, "*5", _G, "Keys to toggle mute of the others", ()),
    ("conference_mute_policy", _R, "l", _RG, "Roles muted when they join", ()),
    ("conference_qa_dtmf", _R, "", _RG, "Roles that may start Q&A", ()),
    ("conference_qa_dtmf_binding", _D, "*3", _G, "Keys to start Q&A", ()),
    ("conference_qa_policy", _R, "pl", _RG, "Roles muted during Q&A", ()),
    ("conference_realtime", _C, "on", _RG, "Real-time notifications", _ON_OFF),
    ("conference_recording", _C, "off", _RG, "Recording", ("on", "off", "auto")),
    ("conference_rollcall", _C, "off", _RG, "Record names at entry", _ON_OFF),
    ("conference_rollcall_onenter", _C, "on", _RG, "Play the name on entry", _ON_OFF),
    ("conference_rollcall_onexit", _C, "on", _RG, "Play the name on exit", _ON_OFF),
    ("conference_schedule", _S, "", _RG, "Conference schedule", ()),
    ("conference_schedule_extend", _S, "", _G, "Extended schedule maximum (s)", ()),
    ("conference_schedule_extend_dtmf", _R, "", _RG, "Roles that may extend the schedule", ()),
    ("conference_schedule_extend_dtmf_binding", _D, "", _G, "Keys to extend the schedule", ()),
    ("conference_schedule_hold", _I, "0", _RG, "Seconds before the scheduled start", ()),
    ("conference_schedule_remind", _I, "0", _RG, "Seconds before the schedule reminder", ()),
    ("conference_scheduled", _C, "off", _RG, "Scheduled conference", _ON_OFF),
    ("conference_start_how", _C, "first", _RG, "When the conference begins",
     ("first", "moderator", "explicit")),
    ("conference_start_wait", _I, "600", _RG, "Seconds to wait for a moderator", ()),
    ("conference_stop_how", _C, "last", _RG, "When the conference ends", ("last", "moderator")),
    ("conference_stop_wait", _I, "30", _RG, "Seconds before ending after the host left", ()),
    ("conference_video_policy", _R, "", _RG, "Roles with video at the beginning", ()),
    ("conference_whitelist", _C, "off", _RG, "Conference white list", _ON_OFF),
    ("dnis_welcomeprompt", _U, "", _GD, "Recorded greeting (URL or prompt name)", ()),
    ("polling_dtmf", _R, "", _RG, "Roles that may start a poll", ()),
    ("polling_dtmf_binding", _D, "*1", _G, "Keys to start a poll", ()),
    ("recording_addr", _S, "", _G, "Recording server address", ()),
    ("recording_dtmf", _R, "h", _RG, "Roles that may start a recording", ()),
    ("recording_dtmf_binding", _D, "*2", _G, "Keys to toggle recording", ()),
    ("recording_metadata", _C, "contact", _G, "Recording metadata method", ("contact", "custom")),
    ("recording_method", _C, "local", _G, "Recording method",
     ("remote", "remote+pin", "local", "local+pin")),
    ("recording_stop_how", _C, "last", _RG, "When recording stops", ("last", "moderator")),
    ("recording_stop_wait", _I, "30", _RG, "Seconds before stopping the recording", ()),
)  # fmt: skip

# Durations, counts and limits accept -1 ("unlimited") and up; the rest must not be negative.
_MINIMUM_MINUS_ONE = frozenset(
    {"call_maxduration", "call_operator_after", "conference_maxcalls", "conference_maxduration"}
)
_PATTERNS = {"conference_maxcallsperrole": r"-?\d+:-?\d+:-?\d+"}


def _build(row: tuple[str, AttrType, str, Group, str, tuple[str, ...]]) -> AttributeDef:
    name, kind, default, group, description, choices = row
    minimum = (-1 if name in _MINIMUM_MINUS_ONE else 0) if kind is AttrType.INT else None
    return AttributeDef(
        name, kind, default, group, description, choices, minimum, _PATTERNS.get(name)
    )


CATALOGUE: Mapping[str, AttributeDef] = {row[0]: _build(row) for row in _TABLE}

_DTMF = re.compile(r"[0-9*#A-D]{0,16}")
_BINDING_SUFFIX = "_dtmf_binding"


def _as_text(definition: AttributeDef, value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise AttributeValueError(definition.name, f"expected a string, got {type(value).__name__}")


def _check_string(definition: AttributeDef, value: object) -> str:
    text = _as_text(definition, value)
    if definition.pattern and not re.fullmatch(definition.pattern, text):
        raise AttributeValueError(definition.name, f"{text!r} does not match {definition.pattern}")
    if definition.name == "conference_maxcallsperrole" and any(
        int(part) < -1 for part in text.split(":")
    ):
        raise AttributeValueError(definition.name, f"{text!r}: each limit must be -1 or more")
    return text


def _check_int(definition: AttributeDef, value: object) -> str:
    text = _as_text(definition, value)
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise AttributeValueError(definition.name, f"{text!r} is not an integer")
    number = int(text)
    if definition.minimum is not None and number < definition.minimum:
        raise AttributeValueError(definition.name, f"{number} is below {definition.minimum}")
    return str(number)


def _check_dtmf(definition: AttributeDef, value: object) -> str:
    text = _as_text(definition, value).upper()
    if not _DTMF.fullmatch(text):
        raise AttributeValueError(
            definition.name, f"{text!r} is not a DTMF sequence (0-9 * # A-D, at most 16)"
        )
    return text


def _check_role(definition: AttributeDef, value: object) -> str:
    text = _as_text(definition, value).lower()
    if set(text) - set("hpl") or len(set(text)) != len(text):
        raise AttributeValueError(
            definition.name, f"{text!r} is not a set of roles (letters h, p, l, each once)"
        )
    return "".join(letter for letter in "hpl" if letter in text)


def _check_choice(definition: AttributeDef, value: object) -> str:
    text = _as_text(definition, value)
    for choice in definition.choices:
        if text.casefold() == choice.casefold():
            return choice
    raise AttributeValueError(
        definition.name, f"{text!r} is not one of {', '.join(definition.choices)}"
    )


_CHECKS: Mapping[AttrType, Callable[[AttributeDef, object], str]] = {
    AttrType.STRING: _check_string,
    AttrType.INT: _check_int,
    AttrType.DTMF: _check_dtmf,
    AttrType.ROLE: _check_role,
    AttrType.CHOICE: _check_choice,
    AttrType.DB_REFERENCE: _check_string,
    AttrType.UPLOAD: _check_string,
}


def definition(name: str) -> AttributeDef:
    """The catalogue entry of ``name``; ``AttributeValueError`` when there is none."""
    found = CATALOGUE.get(name)
    if found is None:
        raise AttributeValueError(name, "unknown attribute")
    return found


def validate(name: str, value: object, level: Level) -> str:
    """Check one value set at ``level`` and return its canonical string."""
    entry = definition(name)
    if not entry.may_set(level):
        raise AttributeValueError(
            name, f"cannot be set on a {level.value} (group {int(entry.group)})"
        )
    return _CHECKS[entry.type](entry, value)


def validate_all(values: Mapping[str, object], level: Level) -> dict[str, str]:
    """Check every value of one level; the canonical strings, sorted by name."""
    return {name: validate(name, values[name], level) for name in sorted(values)}


def typed(name: str, canonical: str) -> object:
    """The Python value of a canonical string: ``int`` for ``TYPE_INT``, else the string."""
    return int(canonical) if definition(name).type is AttrType.INT else canonical


def roles(value: str) -> frozenset[Role]:
    """The roles named by a ``TYPE_ROLE`` string such as ``"hp"``."""
    return frozenset(role for role in Role if role.letter in value)


def keypad_bindings(values: Mapping[str, object]) -> dict[str, tuple[str, frozenset[Role]]]:
    """Enabled keypad features of resolved ``values``: feature → (key sequence, roles).

    The feature is the attribute name without ``_dtmf_binding`` (``call_mute``); a feature is
    enabled when its binding is not empty and at least one role may use it.
    """
    found: dict[str, tuple[str, frozenset[Role]]] = {}
    for name, value in values.items():
        if not name.endswith(_BINDING_SUFFIX) or not value:
            continue
        feature = name.removesuffix(_BINDING_SUFFIX)
        allowed = roles(str(values.get(f"{feature}_dtmf", "")))
        if allowed:
            found[feature] = (str(value), allowed)
    return found


def check_bindings(values: Mapping[str, object]) -> None:
    """Refuse keypad bindings of which one equals or is a prefix of another."""
    enabled = sorted((seq, feature) for feature, (seq, _) in keypad_bindings(values).items())
    for (first, first_feature), (second, second_feature) in itertools.pairwise(enabled):
        if second.startswith(first):
            raise AttributeValueError(
                f"{second_feature}{_BINDING_SUFFIX}",
                f"keys {second!r} collide with {first_feature}{_BINDING_SUFFIX} ({first!r})",
            )


def resolve(
    call_flow: Mapping[str, object] | None,
    did_group: Mapping[str, object] | None,
    did: Mapping[str, object] | None,
    room: Mapping[str, object] | None,
) -> dict[str, object]:
    """Effective values: catalogue defaults ← call flow ← DID group ← DID ← meeting room.

    Each argument holds the values set at that level (``None`` for none). A value set where its
    group forbids, an unknown name or a bad value raises ``AttributeValueError``; so do
    colliding keypad bindings.
    """
    merged = {name: entry.default for name, entry in CATALOGUE.items()}
    layers = (
        (Level.CALL_FLOW, call_flow),
        (Level.DID_GROUP, did_group),
        (Level.DID, did),
        (Level.ROOM, room),
    )
    for level, values in layers:
        merged.update(validate_all(values or {}, level))
    result = {name: typed(name, text) for name, text in merged.items()}
    check_bindings(result)
    return result
