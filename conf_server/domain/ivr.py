"""The dial-in IVR: greeting, access code, optional PIN, then ``Join(room, role)``.

Theory of operation (DESIGN.md §3): a pure state machine, ``step(session, input, now) ->
(session, actions)``. Sessions, inputs and actions are frozen dataclasses; the runtime feeds it
what happened (a call started, a key was pressed, a timer fired, a prompt ended, the store
answered) and performs what it asks (play, stop, arm or cancel a timer, look a code up, join,
hang up). States are an Enum and transitions one table: an input absent from the table for the
current state raises ``IllegalInputError``, never passes silently.

Keys and the caller's hang-up are accepted in every state, so the runtime hands them over without
asking where the dialogue is: a key before the greeting (``IDLE``) is dropped with ``EarlyKey``
(the runtime logs it), a key while nothing is collected (a check, a lookup, the farewell) or
after ``Join`` (the meeting's keypad owns the keys once the meeting has the call) or after the end
is dropped; a hang-up ends the dialogue wherever it is, and after the end changes nothing.

The dialogue, after the guessing-protection check (``conf_server.domain.lockout``; a locked
caller hears "access refused", "goodbye" and is hung up):

1. Greeting (``dnis_welcomeprompt`` or ``welcome``) then "enter your access code, then pound".
   Keys barge in: the first key stops the prompt. Keys are DTMF from RFC 4733 §3.2 (events 0–15),
   SIP INFO or in-band detection — the runtime turns all of them into ``DigitPressed``.
2. ``#`` ends the code; so does reaching ``max_code_length`` digits or the inter-digit timeout
   with digits entered. ``*`` clears what was entered so far. A–D are not part of any code and do
   nothing. The first-digit timer starts when the prompt ends; no input (timeout, or ``#`` alone)
   replays the prompt, and after ``max_no_input`` of them the call says goodbye.
3. The runtime looks the code up. Wrong: "invalid code", ``RecordFailure`` (counted across calls
   by the lockout) and ask again; after ``max_failures`` (``call_operator_after``, default 3,
   ``None`` = unlimited) "too many attempts", "goodbye", a security event and hang-up.
4. When the room has PINs (Horn-style second gate) the same rules collect a PIN, which the runtime
   checks with ``conf_server.domain.pins.match_pin``; an organizer PIN joins as host whatever the
   code's role.
5. ``Join(room, role)``. Start/stop rules, full and locked rooms belong to the meeting service.

Secrets: the code and PIN leave the machine only in ``LookupCode``/``LookupPin``; they are
excluded from every ``repr`` (sessions and actions get logged) and the session forgets them as
soon as they are submitted. Only the count of keys pressed is kept, for the call summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Final

from conf_server.domain.attributes import Role
from conf_server.domain.errors import IllegalInputError, IvrConfigError, IvrError
from conf_server.domain.lockout import Locked, Scope, SecurityEvent, SecurityKind

FIRST_DIGIT_TIMER: Final = "ivr.first_digit"
INTER_DIGIT_TIMER: Final = "ivr.inter_digit"
KEYS: Final = "0123456789*#ABCD"


class State(Enum):
    IDLE = "idle"
    CHECKING_LOCKOUT = "checking_lockout"
    COLLECTING_CODE = "collecting_code"
    LOOKING_UP_CODE = "looking_up_code"
    COLLECTING_PIN = "collecting_pin"
    CHECKING_PIN = "checking_pin"
    FAREWELL = "farewell"
    JOINED = "joined"
    ENDED = "ended"


class Stage(Enum):
    """What is being collected; names the failure for the lockout and the logs."""

    CODE = "code"
    PIN = "pin"


class HangupReason(Enum):
    LOCKED_OUT = "locked_out"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    NO_INPUT = "no_input"


def _int_attribute(attrs: Mapping[str, object], name: str, default: int, low: int) -> int:
    raw = attrs.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise IvrConfigError(f"{name}: expected an integer, got {raw!r}")
    try:
        value = int(raw)
    except ValueError as exc:
        raise IvrConfigError(f"{name}: expected an integer, got {raw!r}") from exc
    if value < low:
        raise IvrConfigError(f"{name}: must be at least {low}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class IvrSettings:
    """Per-call settings, resolved from the call's attributes by ``from_attributes``."""

    welcome_prompt: str = "welcome"
    first_digit_timeout: float = 10.0
    inter_digit_timeout: float = 5.0
    max_failures: int | None = 3
    max_no_input: int = 3
    max_code_length: int = 20

    def __post_init__(self) -> None:
        if not self.welcome_prompt:
            raise IvrConfigError("welcome_prompt: must name a prompt")
        if not (self.first_digit_timeout > 0 and self.inter_digit_timeout > 0):
            raise IvrConfigError("digit timeouts must be positive")
        if self.max_failures is not None and self.max_failures < 1:
            raise IvrConfigError(f"max_failures: must be at least 1, got {self.max_failures}")
        if self.max_no_input < 1 or self.max_code_length < 1:
            raise IvrConfigError("max_no_input and max_code_length must be at least 1")

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, object]) -> IvrSettings:
        """From resolved attributes: ``dnis_welcomeprompt``, ``call_operator_after`` (-1 =
        unlimited), ``ivr_first_digit_timeout``, ``ivr_inter_digit_timeout``,
        ``ivr_max_code_length`` (the last three are conf-server's own)."""
        welcome = attrs.get("dnis_welcomeprompt") or "welcome"
        if not isinstance(welcome, str):
            raise IvrConfigError(f"dnis_welcomeprompt: expected a string, got {welcome!r}")
        # -1 is unlimited; 0 (which the attribute allows) leaves no attempt to spare, like 1.
        failures = _int_attribute(attrs, "call_operator_after", 3, -1)
        return cls(
            welcome_prompt=welcome,
            first_digit_timeout=_int_attribute(attrs, "ivr_first_digit_timeout", 10, 1),
            inter_digit_timeout=_int_attribute(attrs, "ivr_inter_digit_timeout", 5, 1),
            max_failures=None if failures == -1 else max(failures, 1),
            max_code_length=_int_attribute(attrs, "ivr_max_code_length", 20, 1),
        )


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    did: str
    caller: str
    source_ip: str
    settings: IvrSettings = field(default_factory=IvrSettings)


@dataclass(frozen=True, slots=True)
class LockoutStatus:
    """The runtime's answer to ``CheckLockout``: the lock refusing the call, or None."""

    locked: Locked | None


@dataclass(frozen=True, slots=True)
class DigitPressed:
    key: str = field(repr=False)  # may be part of a code

    def __post_init__(self) -> None:
        if len(self.key) != 1 or self.key not in KEYS:
            raise IvrError(f"DigitPressed: key must be one of {KEYS}")


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str


@dataclass(frozen=True, slots=True)
class PromptFinished:
    """The last prompt of a ``PlayPrompt`` ended by itself (never sent after ``StopPrompt``)."""


@dataclass(frozen=True, slots=True)
class CodeLookedUp:
    room_id: str | None
    role: Role | None = None
    has_pins: bool = False

    def __post_init__(self) -> None:
        if (self.room_id is None) != (self.role is None):
            raise IvrError("CodeLookedUp: a room needs a role and no room has none")


@dataclass(frozen=True, slots=True)
class PinChecked:
    ok: bool
    organizer: bool = False


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller left during the IVR."""


Input = (
    CallStarted
    | LockoutStatus
    | DigitPressed
    | TimerFired
    | PromptFinished
    | CodeLookedUp
    | PinChecked
    | CallerHungUp
)

# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Play the named prompts in order; send ``PromptFinished`` when the last one ends."""

    names: tuple[str, ...]
    barge_in: bool


@dataclass(frozen=True, slots=True)
class StopPrompt:
    """Stop the prompt now; no ``PromptFinished`` follows."""


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Arm ``name`` for the monotonic ``deadline`` (re-arming a name replaces it)."""

    name: str
    deadline: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class CheckLockout:
    """Ask ``Lockout.check`` about this call; answer with ``LockoutStatus``."""

    source_ip: str
    caller: str
    did: str


@dataclass(frozen=True, slots=True)
class LookupCode:
    """Find the room and role of an access code among the DID's rooms; answer ``CodeLookedUp``."""

    code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class LookupPin:
    """Check a PIN of the room; answer ``PinChecked``."""

    room_id: str
    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A wrong code or PIN: count it with ``Lockout.record_failure`` and log its events."""

    stage: Stage


@dataclass(frozen=True, slots=True)
class EarlyKey:
    """A key pressed before the dialogue started, dropped; the runtime logs ``ivr.early_digit``.

    The key itself is not kept: it may be the start of a code."""


@dataclass(frozen=True, slots=True)
class Join:
    room_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: HangupReason


Action = (
    PlayPrompt
    | StopPrompt
    | StartTimer
    | CancelTimer
    | CheckLockout
    | LookupCode
    | LookupPin
    | RecordFailure
    | EarlyKey
    | Join
    | Hangup
    | SecurityEvent
)

# --- session ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """Where one call is in the dialogue. ``digits`` (a partial secret) is never in the repr."""

    state: State = State.IDLE
    settings: IvrSettings = field(default_factory=IvrSettings)
    did: str = ""
    caller: str = ""
    source_ip: str = ""
    digits: str = field(default="", repr=False)
    timer: str | None = None
    prompt_playing: bool = False
    failures: int = 0
    no_inputs: int = 0
    keys_pressed: int = 0
    room_id: str | None = None
    role: Role | None = None
    hangup_reason: HangupReason | None = None


Step = tuple[Session, list[Action]]
# Handlers take the input type their table row names; Any keeps one table for all of them.
Handler = Callable[[Session, Any, float], Step]

_STAGE: Final = {
    State.COLLECTING_CODE: Stage.CODE,
    State.LOOKING_UP_CODE: Stage.CODE,
    State.COLLECTING_PIN: Stage.PIN,
    State.CHECKING_PIN: Stage.PIN,
}
_ENTER: Final = {Stage.CODE: "enter_access_code", Stage.PIN: "enter_pin"}
_INVALID: Final = {Stage.CODE: "invalid_code", Stage.PIN: "invalid_pin"}
_COLLECTING: Final = {Stage.CODE: State.COLLECTING_CODE, Stage.PIN: State.COLLECTING_PIN}


def _barge_in(s: Session) -> Step:
    if not s.prompt_playing:
        return s, []
    return replace(s, prompt_playing=False), [StopPrompt()]


def _arm(s: Session, name: str, timeout: float, now: float) -> Step:
    actions: list[Action] = []
    if s.timer is not None and s.timer != name:
        actions.append(CancelTimer(s.timer))
    actions.append(StartTimer(name, now + timeout))
    return replace(s, timer=name), actions


def _disarm(s: Session) -> Step:
    if s.timer is None:
        return s, []
    return replace(s, timer=None), [CancelTimer(s.timer)]


def _play(s: Session, names: tuple[str, ...], state: State, barge_in: bool) -> Step:
    return replace(s, state=state, prompt_playing=True), [PlayPrompt(names, barge_in)]


def _farewell(s: Session, names: tuple[str, ...], reason: HangupReason) -> Step:
    s, actions = _disarm(s)
    s, play = _play(s, (*names, "goodbye"), State.FAREWELL, barge_in=False)
    return replace(s, hangup_reason=reason), actions + play


# --- handlers -----------------------------------------------------------------------------------


def _handle_call_started(s: Session, event: CallStarted, now: float) -> Step:
    s = replace(
        s,
        state=State.CHECKING_LOCKOUT,
        settings=event.settings,
        did=event.did,
        caller=event.caller,
        source_ip=event.source_ip,
    )
    return s, [CheckLockout(event.source_ip, event.caller, event.did)]


def _handle_lockout_status(s: Session, event: LockoutStatus, now: float) -> Step:
    if event.locked is not None:
        return _farewell(s, ("access_refused",), HangupReason.LOCKED_OUT)
    names = (s.settings.welcome_prompt, _ENTER[Stage.CODE])
    return _play(s, names, State.COLLECTING_CODE, barge_in=True)


def _handle_discard(s: Session, event: Input, now: float) -> Step:
    """Keys pressed while nothing is being collected (a lookup, a farewell, after the IVR) are
    dropped; so is the caller's hang-up after the end."""
    return s, []


def _handle_early_key(s: Session, event: DigitPressed, now: float) -> Step:
    """A key before ``CallStarted``: the greeting has not begun, nothing collects yet."""
    return s, [EarlyKey()]


def _handle_key(s: Session, event: DigitPressed, now: float) -> Step:
    return _KEY_HANDLERS.get(event.key, _enter_digit)(s, event.key, now)


def _enter_digit(s: Session, key: str, now: float) -> Step:
    s, actions = _barge_in(s)
    s = replace(s, digits=s.digits + key, keys_pressed=s.keys_pressed + 1)
    if len(s.digits) >= s.settings.max_code_length:
        s, more = _submit(s)
    else:
        s, more = _arm(s, INTER_DIGIT_TIMER, s.settings.inter_digit_timeout, now)
    return s, actions + more


def _clear_entry(s: Session, key: str, now: float) -> Step:
    """``*``: start the entry over, as common bridges do."""
    s, actions = _barge_in(s)
    s, more = _arm(replace(s, digits=""), FIRST_DIGIT_TIMER, s.settings.first_digit_timeout, now)
    return s, actions + more


def _end_entry(s: Session, key: str, now: float) -> Step:
    """``#``: submit what was entered; ``#`` alone counts as no input."""
    s, actions = _barge_in(s)
    s, more = _submit(s) if s.digits else _no_input(s)
    return s, actions + more


def _ignore_key(s: Session, key: str, now: float) -> Step:
    """A–D (RFC 4733 events 12–15) exist on some keypads but are in no code."""
    return s, []


_KEY_HANDLERS: Final[Mapping[str, Callable[[Session, str, float], Step]]] = {
    "#": _end_entry,
    "*": _clear_entry,
    **dict.fromkeys("ABCD", _ignore_key),
}


def _submit(s: Session) -> Step:
    s, actions = _disarm(s)
    secret, s = s.digits, replace(s, digits="")
    if _STAGE[s.state] is Stage.CODE:
        return replace(s, state=State.LOOKING_UP_CODE), [*actions, LookupCode(secret)]
    if s.room_id is None:
        raise IllegalInputError("collecting a PIN without a room")
    return replace(s, state=State.CHECKING_PIN), [*actions, LookupPin(s.room_id, secret)]


def _no_input(s: Session) -> Step:
    s, actions = _disarm(replace(s, no_inputs=s.no_inputs + 1))
    if s.no_inputs >= s.settings.max_no_input:
        s, more = _farewell(s, (), HangupReason.NO_INPUT)
    else:
        s, more = _play(s, (_ENTER[_STAGE[s.state]],), s.state, barge_in=True)
    return s, actions + more


def _handle_timer(s: Session, event: TimerFired, now: float) -> Step:
    if event.name != s.timer:
        raise IllegalInputError(f"TimerFired({event.name!r}) but the armed timer is {s.timer!r}")
    s = replace(s, timer=None)  # a fired timer needs no cancelling
    if event.name == INTER_DIGIT_TIMER:
        return _submit(s)  # a pause after some digits ends the entry, like '#'
    return _no_input(s)


def _handle_prompt_finished(s: Session, event: PromptFinished, now: float) -> Step:
    if not s.prompt_playing:
        raise IllegalInputError(f"PromptFinished in {s.state.name} with no prompt playing")
    s = replace(s, prompt_playing=False)
    return _arm(s, FIRST_DIGIT_TIMER, s.settings.first_digit_timeout, now)


def _failure(s: Session) -> Step:
    stage = _STAGE[s.state]
    s = replace(s, failures=s.failures + 1)
    actions: list[Action] = [RecordFailure(stage)]
    limit = s.settings.max_failures
    if limit is not None and s.failures >= limit:
        keys = ((Scope.IP, s.source_ip), (Scope.CALLER, s.caller), (Scope.DID, s.did))
        actions.append(SecurityEvent(SecurityKind.ATTEMPTS_EXHAUSTED, keys))
        s, more = _farewell(
            s, (_INVALID[stage], "too_many_attempts"), HangupReason.TOO_MANY_ATTEMPTS
        )
    else:
        names = (_INVALID[stage], _ENTER[stage])
        s, more = _play(s, names, _COLLECTING[stage], barge_in=True)
    return s, actions + more


def _handle_code_looked_up(s: Session, event: CodeLookedUp, now: float) -> Step:
    if event.room_id is None or event.role is None:
        return _failure(s)
    s = replace(s, room_id=event.room_id, role=event.role)
    if not event.has_pins:
        return replace(s, state=State.JOINED), [Join(event.room_id, event.role)]
    # The PIN is a new gate with the same rules: its own attempt and no-input counts.
    s = replace(s, failures=0, no_inputs=0)
    return _play(s, (_ENTER[Stage.PIN],), State.COLLECTING_PIN, barge_in=True)


def _handle_pin_checked(s: Session, event: PinChecked, now: float) -> Step:
    if not event.ok:
        return _failure(s)
    if s.room_id is None or s.role is None:
        raise IllegalInputError("PIN checked without a room")
    role = Role.HOST if event.organizer else s.role
    return replace(s, state=State.JOINED, role=role), [Join(s.room_id, role)]


def _handle_hang_up_after_prompt(s: Session, event: PromptFinished, now: float) -> Step:
    if s.hangup_reason is None:
        raise IllegalInputError("farewell without a reason")
    return replace(s, state=State.ENDED, prompt_playing=False), [Hangup(s.hangup_reason)]


def _handle_caller_hung_up(s: Session, event: CallerHungUp, now: float) -> Step:
    s, actions = _disarm(s)
    s, more = _barge_in(s)
    return replace(s, state=State.ENDED, digits=""), actions + more


_COLLECTING_ROW: Final[dict[type, Handler]] = {
    DigitPressed: _handle_key,
    TimerFired: _handle_timer,
    PromptFinished: _handle_prompt_finished,
    CallerHungUp: _handle_caller_hung_up,
}
_WAITING_ROW: Final[dict[type, Handler]] = {
    DigitPressed: _handle_discard,
    CallerHungUp: _handle_caller_hung_up,
}

TRANSITIONS: Final[Mapping[State, Mapping[type, Handler]]] = {
    State.IDLE: {
        CallStarted: _handle_call_started,
        DigitPressed: _handle_early_key,
        CallerHungUp: _handle_caller_hung_up,
    },
    State.CHECKING_LOCKOUT: {LockoutStatus: _handle_lockout_status, **_WAITING_ROW},
    State.COLLECTING_CODE: _COLLECTING_ROW,
    State.LOOKING_UP_CODE: {CodeLookedUp: _handle_code_looked_up, **_WAITING_ROW},
    State.COLLECTING_PIN: _COLLECTING_ROW,
    State.CHECKING_PIN: {PinChecked: _handle_pin_checked, **_WAITING_ROW},
    State.FAREWELL: {PromptFinished: _handle_hang_up_after_prompt, **_WAITING_ROW},
    # After Join the meeting's keypad owns the keys: one that reaches the IVR raced the hand-over
    # (or came after the meeting hung the call up) and is dropped.
    State.JOINED: _WAITING_ROW,
    State.ENDED: {DigitPressed: _handle_discard, CallerHungUp: _handle_discard},
}
"""state → input type → handler; anything absent is an ``IllegalInputError``."""


def step(session: Session, event: Input, now: float) -> Step:
    """Apply one input at monotonic time ``now``; return the new session and the actions."""
    handler = TRANSITIONS[session.state].get(type(event))
    if handler is None:
        raise IllegalInputError(
            f"{type(event).__name__} is not accepted in state {session.state.name}"
        )
    return handler(session, event, now)
