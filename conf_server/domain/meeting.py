"""The live meeting: rules from attributes, participants, and the actions and events it emits.

Source: the CarrierX Conference API v1 (``seeds/004_…``): the Meeting and Call objects
(``holdMode``, ``muteMode``, ``participantCount``) and the ``conference_*`` / ``call_*`` meeting
attributes catalogued in ``conf_server.domain.attributes``.

Theory of operation
-------------------
A ``Meeting`` is a frozen value: one live instance of a meeting room, from the first caller until
it ends. ``conf_server.domain.meeting_flow.step`` applies one command to it at monotonic time
``now`` and returns the new meeting, the *actions* the runtime performs on the media engine and
SIP (frozen dataclasses below: ``SetFlags``, ``JoinMix``, ``PlayToCall`` …) and the *events* the
REST layer posts to callbacks (``CallJoined``, ``CallMuted`` …). Every event carries the room, the
meeting instance and a sequence number that strictly increases within that instance, so a
callback receiver can order and de-duplicate them.

``MeetingRules`` is the typed view of the resolved attributes the rules need; a meeting keeps the
raw values too, so an operator can change one attribute live and the rules are rebuilt (exit
tones turned off take effect at the next leave, because every leave reads the current rules).

A participant is in one of three phases: ``NAMING`` (roll call: recording their name before
entering), ``WAITING`` (the meeting has not started: music on hold) and ``IN`` (joined to the
mix); ``participant_flow`` is the table that moves a call between them, as ``meeting_flow`` is
the one for the meeting's ``MeetingState``. ``SetFlags`` always carries the full flag set of a
call, so the runtime never merges partial updates; listeners always have ``listener=True`` and
are never heard, whatever ``muted`` says.

Actions for one call are executed in order; ``Hangup`` waits for the call's queued prompts, so
"conference_full" is heard before the line drops. The call is gone from the meeting when the
``Hangup`` action is emitted: the runtime must not report its leave again.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeVar

from conf_server.domain.attributes import Role, roles
from conf_server.domain.errors import MeetingConfigError

# The REST API and the runtime import these from here.
from conf_server.domain.errors import MeetingError as MeetingError  # noqa: PLC0414
from conf_server.domain.errors import NotAllowedError as NotAllowedError  # noqa: PLC0414
from conf_server.domain.errors import UnknownCallError as UnknownCallError  # noqa: PLC0414
from conf_server.domain.errors import UnknownMeetingError as UnknownMeetingError  # noqa: PLC0414
from conf_server.domain.ivr import CancelTimer, StartTimer

DEFAULT_LANGUAGE: Final = "EN"
SUPPORTED_LANGUAGES: Final = frozenset({DEFAULT_LANGUAGE})
WARNING_LEAD: Final = 60.0
"""Seconds before a maximum duration ends a call or meeting at which it is announced."""

OPERATOR: Final = "api"
"""The ``by`` of events caused through the REST API rather than by a caller's keypad."""


class MeetingState(Enum):
    WAITING = "waiting"  # callers present, the start rule not yet met
    ACTIVE = "active"
    ENDING = "ending"  # the host left under stop-how moderator; the stop wait is running
    ENDED = "ended"


class Phase(Enum):
    NAMING = "naming"
    WAITING = "waiting"
    IN = "in"


class StartHow(Enum):
    FIRST = "first"
    MODERATOR = "moderator"
    EXPLICIT = "explicit"


class StopHow(Enum):
    LAST = "last"
    MODERATOR = "moderator"


class LeaveReason(Enum):
    HANGUP = "hangup"  # the caller hung up
    EXIT_KEY = "exit_key"
    KICKED = "kicked"
    MEETING_ENDED = "meeting_ended"
    CALL_MAX_DURATION = "call_max_duration"
    LOCKED = "locked"
    FULL = "full"
    START_TIMEOUT = "start_timeout"


class EndReason(Enum):
    LAST_LEFT = "last_left"
    HOST_LEFT = "host_left"
    ENDED_BY_OPERATOR = "ended_by_operator"
    MAX_DURATION = "max_duration"
    START_TIMEOUT = "start_timeout"


class Tone(Enum):
    ENTRY = "entry"
    EXIT = "exit"


_E = TypeVar("_E", bound=Enum)


def _int(values: Mapping[str, object], name: str) -> int:
    raw = values.get(name)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise MeetingConfigError(f"{name}: expected a resolved integer, got {raw!r}")
    return raw


def _text(values: Mapping[str, object], name: str) -> str:
    raw = values.get(name)
    if not isinstance(raw, str):
        raise MeetingConfigError(f"{name}: expected a resolved string, got {raw!r}")
    return raw


def _on(values: Mapping[str, object], name: str) -> bool:
    return _text(values, name) == "on"


def _per_role(values: Mapping[str, object], name: str) -> Mapping[Role, int]:
    parts = _text(values, name).split(":")
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
        raise MeetingConfigError(f"{name}: expected h:p:l limits such as -1:-1:-1")
    return dict(zip((Role.HOST, Role.PARTICIPANT, Role.LISTENER), map(int, parts), strict=True))


def _enum(kind: type[_E], values: Mapping[str, object], name: str) -> _E:
    text = _text(values, name)
    try:
        return kind(text)
    except ValueError as exc:
        raise MeetingConfigError(f"{name}: {text!r} is not a known value") from exc


@dataclass(frozen=True, slots=True)
class MeetingRules:
    """The rules of one meeting, read from resolved attributes (``attributes.resolve``).

    Limits of -1 mean unlimited; ``None`` here.
    """

    start_how: StartHow = StartHow.FIRST
    start_wait: float = 600.0
    stop_how: StopHow = StopHow.LAST
    stop_wait: float = 30.0
    max_calls: int | None = 1000
    max_calls_per_role: Mapping[Role, int] = field(default_factory=dict)
    mute_policy: frozenset[Role] = frozenset({Role.LISTENER})
    hold_policy: frozenset[Role] = frozenset()
    announce_count: frozenset[Role] = frozenset(Role)
    entry_tones: bool = True
    exit_tones: bool = True
    rollcall: bool = False
    rollcall_on_enter: bool = True
    rollcall_on_exit: bool = True
    call_max_duration: float | None = None
    meeting_max_duration: float | None = None
    language: str = DEFAULT_LANGUAGE

    @classmethod
    def from_attributes(cls, values: Mapping[str, object]) -> MeetingRules:
        """The rules of resolved attribute ``values`` (every catalogue name present)."""
        per_role = _per_role(values, "conference_maxcallsperrole")
        return cls(
            start_how=_enum(StartHow, values, "conference_start_how"),
            start_wait=float(_int(values, "conference_start_wait")),
            stop_how=_enum(StopHow, values, "conference_stop_how"),
            stop_wait=float(_int(values, "conference_stop_wait")),
            max_calls=_limit(_int(values, "conference_maxcalls")),
            max_calls_per_role={r: n for r, n in per_role.items() if n != -1},
            mute_policy=roles(_text(values, "conference_mute_policy")),
            hold_policy=roles(_text(values, "conference_hold_policy")),
            announce_count=roles(_text(values, "call_announceparticipantcount")),
            entry_tones=_on(values, "conference_entrytones"),
            exit_tones=_on(values, "conference_exittones"),
            rollcall=_on(values, "conference_rollcall"),
            rollcall_on_enter=_on(values, "conference_rollcall_onenter"),
            rollcall_on_exit=_on(values, "conference_rollcall_onexit"),
            call_max_duration=_duration(_int(values, "call_maxduration")),
            meeting_max_duration=_duration(_int(values, "conference_maxduration")),
            language=_text(values, "conference_language").upper(),
        )


def _limit(n: int) -> int | None:
    return None if n == -1 else n


def _duration(n: int) -> float | None:
    # -1 is unlimited; 0 would end every call at once, which no bridge means by it.
    return None if n <= 0 else float(n)


@dataclass(frozen=True, slots=True)
class Participant:
    """One call in a meeting. ``muted`` is its own or a host's mute; listeners are never heard."""

    call: str
    role: Role
    caller: str
    joined_at: float
    phase: Phase
    muted: bool = False
    held: bool = False
    deaf: bool = False
    gain_in_db: float = 0.0
    gain_out_db: float = 0.0
    music: bool = False  # music on hold is playing to this call
    named: bool = False  # a roll-call name was recorded

    @property
    def listener(self) -> bool:
        return self.role is Role.LISTENER


class TimerKind(Enum):
    START_WAIT = "start_wait"
    STOP_WAIT = "stop_wait"
    MEETING_WARN = "meeting_warn"
    MEETING_END = "meeting_end"
    CALL_WARN = "call_warn"
    CALL_END = "call_end"


@dataclass(frozen=True, slots=True)
class TimerRef:
    """What an armed timer is for; ``call`` for the per-call ones."""

    kind: TimerKind
    call: str | None = None


@dataclass(frozen=True, slots=True)
class Meeting:
    """One live meeting of ``room``; ``instance`` tells successive meetings of a room apart."""

    room: str
    instance: int
    attributes: Mapping[str, object]
    rules: MeetingRules
    created_at: float
    state: MeetingState = MeetingState.WAITING
    participants: Mapping[str, Participant] = field(default_factory=dict)
    locked: bool = False
    all_muted: bool = False
    held_roles: frozenset[Role] = frozenset()  # roles put on hold (policy at start, or *8)
    started_at: float | None = None
    seq: int = 0
    timers: Mapping[str, TimerRef] = field(default_factory=dict)

    @property
    def language(self) -> str:
        """The prompt set in use: the rules' language when we have it, else English."""
        lang = self.rules.language
        return lang if lang in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE

    def in_mix(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.phase is Phase.IN]

    def count(self, role: Role | None = None) -> int:
        """Calls present (every phase), of ``role`` or of any role."""
        return sum(1 for p in self.participants.values() if role is None or p.role is role)

    def hosts(self) -> int:
        return self.count(Role.HOST)

    def timer_name(self, ref: TimerRef) -> str:
        """A runtime-wide unique timer name (rooms and call ids are unique)."""
        owner = f"call:{ref.call}" if ref.call is not None else "meeting"
        return f"meeting:{self.room}:{self.instance}:{owner}:{ref.kind.value}"


# --- actions: what the runtime does -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetFlags:
    """The complete mixer flags of ``call`` (never a partial update)."""

    call: str
    muted: bool
    deaf: bool
    held: bool
    listener: bool
    gain_in_db: float
    gain_out_db: float


@dataclass(frozen=True, slots=True)
class JoinMix:
    call: str
    meeting: str


@dataclass(frozen=True, slots=True)
class LeaveMix:
    call: str


@dataclass(frozen=True, slots=True)
class PlayToCall:
    """Play prompts to one call; ``exclusive`` means the call hears only them meanwhile."""

    call: str
    prompts: tuple[str, ...]
    exclusive: bool = False
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class PlayToMeeting:
    """Play prompts or a tone to everyone in the mix of ``meeting`` except ``exclude``."""

    meeting: str
    prompts: tuple[str, ...] = ()
    tone: Tone | None = None
    exclude: str | None = None
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class StartMusicOnHold:
    call: str


@dataclass(frozen=True, slots=True)
class StopMusicOnHold:
    call: str


@dataclass(frozen=True, slots=True)
class RecordName:
    """Record the caller's name (after "recorded_name_prompt") as prompt ``prompt``; answer
    with the service's ``name_recorded``."""

    call: str
    prompt: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call once its queued prompts have played."""

    call: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class LanguageFallback:
    """Log ``meeting.language_fallback``: the room asked for a prompt set we do not have."""

    room: str
    requested: str
    used: str


Action = (
    SetFlags
    | JoinMix
    | LeaveMix
    | PlayToCall
    | PlayToMeeting
    | StartMusicOnHold
    | StopMusicOnHold
    | RecordName
    | Hangup
    | StartTimer
    | CancelTimer
    | LanguageFallback
)

# --- events: what the REST layer posts to callbacks -----------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Common fields; ``seq`` strictly increases within one meeting instance."""

    room: str
    instance: int
    seq: int
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MeetingStarted(Event):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class MeetingEnded(Event):
    reason: EndReason
    duration: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallJoined(Event):
    call: str
    role: Role
    caller: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRefused(Event):
    call: str
    role: Role
    caller: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLeft(Event):
    call: str
    role: Role
    duration: float
    reason: LeaveReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CallMuted(Event):
    call: str
    muted: bool
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHeld(Event):
    call: str
    held: bool
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LockChanged(Event):
    locked: bool
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkingChanged(Event):
    call: str
    talking: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class KeypadSequence(Event):
    """A key sequence bound to a feature the bridge leaves to the application (a webhook)."""

    call: str
    feature: str
    keys: str


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one command: the new meeting, the actions, the events."""

    meeting: Meeting
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()


def flags(p: Participant) -> SetFlags:
    """The complete mixer flags of ``p``."""
    return SetFlags(
        call=p.call,
        muted=p.muted or p.listener,
        deaf=p.deaf,
        held=p.held,
        listener=p.listener,
        gain_in_db=p.gain_in_db,
        gain_out_db=p.gain_out_db,
    )


def rollcall_prompt(call: str) -> str:
    """The prompt name a call's recorded name is stored under."""
    return f"rollcall/{call}"
