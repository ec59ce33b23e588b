"""Meeting rules as a state machine: ``step(meeting, command, now) -> Step``.

Source: the CarrierX Conference API v1 meeting attributes (``seeds/004_…``):
``conference_start_how``/``_start_wait``, ``conference_stop_how``/``_stop_wait``,
``conference_maxcalls``/``_maxcallsperrole``, ``conference_mute_policy``/``_hold_policy``,
``call_announceparticipantcount``, ``conference_entrytones``/``_exittones``,
``conference_rollcall``/``_onenter``/``_onexit``, ``call_maxduration``,
``conference_maxduration``, ``conference_language``; the Meeting object's ``holdMode`` (40:
participants and listeners on hold while hosts talk) and ``muteMode`` (40: both muted).

Theory of operation
-------------------
Commands are frozen dataclasses (``meeting_commands``). ``classify`` reads one against the
meeting's data (never its state) and names the ``MeetingInput`` it is: a ``Join`` is refused,
asked for a name, or admitted as one of four kinds of caller; a ``Leave`` (or a call's end timer)
is the last call out, the last host out under ``stop_how=moderator``, or any other; a fired timer
is what it was armed for. ``TRANSITIONS`` maps (state × input) to the next state and the actions,
run in order on a private ``Tx`` (``meeting_tx``); the state changes there and nowhere else.
An input absent for the state raises ``IllegalInputError``; so do a ``Join`` of a call already
present, a ``Leave`` with a reason only the meeting decides, and a timer that is not armed. The
caller's ``Meeting`` is never changed. What happens to each call goes through the participant's
own machine (``participant_flow``).

States: ``WAITING`` (callers present, the start rule not met yet), ``ACTIVE``, ``ENDING`` (the
last host left under ``stop_how=moderator``; the stop wait runs), ``ENDED`` (accepts nothing).

=====================  ===================  ===================  ==========================
input                  WAITING              ACTIVE               ENDING
=====================  ===================  ===================  ==========================
REFUSE                 refuse               refuse               refuse
ASK_NAME               ask name             ask name             ask name
ADMIT                  wait                 enter                enter
ADMIT_STARTER          → ACTIVE: start      enter                enter
ADMIT_HOST             wait                 enter                → ACTIVE: cancel stop
                                                                 wait, enter
ADMIT_HOST_STARTER     → ACTIVE: start      enter                → ACTIVE: cancel stop
                                                                 wait, enter
START                  → ACTIVE: start      ✗                    ✗
LEAVE                  leave                leave                leave
LEAVE_LAST             → ENDED: leave, end  → ENDED: leave, end  → ENDED: leave, end
LEAVE_LAST_HOST        leave                → ENDING: leave,     leave
                                            "host_left_ending",
                                            arm the stop wait
END                    → ENDED: end         → ENDED: end         → ENDED: end
START_TIMEOUT          → ENDED: end, all    ✗                    ✗
                       told goodbye
STOP_TIMEOUT           ✗                    ✗                    → ENDED: end
MAX_DURATION           ✗                    → ENDED: end         → ENDED: end
MEETING_WARNING        ✗                    "ending in one       "ending in one minute"
                                            minute"
CALL_WARNING           warn the call        warn the call        warn the call
controls (11)          apply                apply                apply
=====================  ===================  ===================  ==========================

The controls are ``SET_MUTE``, ``MUTE_ALL``, ``SET_LOCK``, ``SET_HOLD``, ``HOLD_ALL``,
``SET_GAIN``, ``SET_ATTRIBUTE``, ``CYCLE_TONES``, ``ANNOUNCE_COUNT``, ``TALKING`` and
``KEYPAD_WEBHOOK``: the same in every live state. ``ENDED`` accepts nothing.

The rules behind the inputs and cells:

* Joining: a locked meeting refuses all but hosts ("conference_locked"); a full one (all calls
  or per role) refuses with "conference_full" (``REFUSE``). With roll call the caller first
  records a name (``ASK_NAME``: ``RecordName``; ``NameRecorded`` admits it). An admitted caller
  is a *starter* when the start rule starts the meeting with it (``first``: anyone;
  ``moderator``: a host; ``explicit``: nobody — only ``Start`` does). A caller who waits hears
  "waiting_for_host" and music; ``conference_start_wait`` after the meeting was created
  (``START_TIMEOUT``) everyone is told goodbye and hung up. Starting moves every waiting caller
  into the mix, music stopped, with the join policies applied (``mute_policy`` per join,
  ``hold_policy`` as the hold state the meeting begins with).
* Leaving: exit tone and roll-call name to the others; with nobody left the meeting ends; under
  ``stop_how=moderator`` the last host leaving an active meeting announces "host_left_ending" and
  arms the stop wait, after which everyone is told and hung up (``STOP_TIMEOUT``); a host
  admitted in time makes the meeting active again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final

from conf_server.domain import meeting_controls as controls
from conf_server.domain.attributes import Role
from conf_server.domain.errors import IllegalInputError
from conf_server.domain.ivr import CancelTimer
from conf_server.domain.meeting import (
    CallJoined,
    CallRefused,
    EndReason,
    Hangup,
    LeaveReason,
    Meeting,
    MeetingEnded,
    MeetingRules,
    MeetingStarted,
    MeetingState,
    Participant,
    Phase,
    RecordName,
    StartHow,
    Step,
    StopHow,
    TimerKind,
    TimerRef,
    rollcall_prompt,
)
from conf_server.domain.meeting_commands import (
    AnnounceCount,
    Command,
    CycleTones,
    End,
    HoldAll,
    Join,
    KeypadWebhook,
    Leave,
    MuteAll,
    NameRecorded,
    SetAttribute,
    SetGain,
    SetHold,
    SetLock,
    SetMute,
    Start,
    Talking,
    TimerFired,
)
from conf_server.domain.meeting_tx import (
    CALL_LIMIT_TIMERS,
    MEETING_LIMIT_TIMERS,
    Tx,
    arm_limit,
    participant,
)
from conf_server.domain.participant_flow import FAREWELL, CallInput, call_step


class MeetingInput(Enum):
    """A command as the meeting's state machine sees it (``classify``)."""

    REFUSE = "refuse"  # a Join the lock or the limits keep out
    ASK_NAME = "ask_name"  # a Join under roll call: the name first
    ADMIT = "admit"  # a caller in: neither a host nor a starter
    ADMIT_STARTER = "admit_starter"  # a caller in who starts the meeting (start_how=first)
    ADMIT_HOST = "admit_host"  # a host in who does not start it (start_how=explicit)
    ADMIT_HOST_STARTER = "admit_host_starter"  # a host in who starts it (first, moderator)
    START = "start"
    LEAVE = "leave"  # a call goes (hang-up, exit key, kick, its own time limit)
    LEAVE_LAST = "leave_last"  # ... and nobody is left
    LEAVE_LAST_HOST = "leave_last_host"  # ... the last host, others stay, stop_how=moderator
    END = "end"
    START_TIMEOUT = "start_timeout"
    STOP_TIMEOUT = "stop_timeout"
    MAX_DURATION = "max_duration"
    MEETING_WARNING = "meeting_warning"
    CALL_WARNING = "call_warning"
    SET_MUTE = "set_mute"
    MUTE_ALL = "mute_all"
    SET_LOCK = "set_lock"
    SET_HOLD = "set_hold"
    HOLD_ALL = "hold_all"
    SET_GAIN = "set_gain"
    SET_ATTRIBUTE = "set_attribute"
    CYCLE_TONES = "cycle_tones"
    ANNOUNCE_COUNT = "announce_count"
    TALKING = "talking"
    KEYPAD_WEBHOOK = "keypad_webhook"


# An action takes the command its input was classified from; Any keeps one table for all.
MeetingAction = Callable[[Tx, Any], None]


@dataclass(frozen=True, slots=True)
class Transition:
    next: MeetingState
    actions: tuple[MeetingAction, ...]


# --- joining ------------------------------------------------------------------------------------


def _refusal(m: Meeting, role: Role) -> LeaveReason | None:
    if m.locked and role is not Role.HOST:
        return LeaveReason.LOCKED
    limit = m.rules.max_calls
    role_limit = m.rules.max_calls_per_role.get(role)
    if (limit is not None and m.count() >= limit) or (
        role_limit is not None and m.count(role) >= role_limit
    ):
        return LeaveReason.FULL
    return None


def _refuse(tx: Tx, cmd: Join) -> None:
    refusal = _refusal(tx.m, cmd.role)
    if refusal is None:
        raise IllegalInputError(f"call {cmd.call!r} is not refused by meeting {tx.m.room}")
    tx.play(cmd.call, FAREWELL[refusal] or (), exclusive=True)
    tx.act(Hangup(cmd.call, refusal))
    tx.emit(CallRefused, call=cmd.call, role=cmd.role, caller=cmd.caller, reason=refusal)


def _arrive(tx: Tx, cmd: Join, phase: Phase) -> None:
    """The caller is in the meeting (not yet in the mix): ``CallJoined``, its time limit."""
    tx.put(Participant(cmd.call, cmd.role, cmd.caller, tx.now, phase))
    tx.emit(CallJoined, call=cmd.call, role=cmd.role, caller=cmd.caller)
    arm_limit(tx, CALL_LIMIT_TIMERS, tx.m.rules.call_max_duration, tx.now, cmd.call)


def _ask_name(tx: Tx, cmd: Join) -> None:
    _arrive(tx, cmd, Phase.NAMING)
    tx.play(cmd.call, ("recorded_name_prompt",), exclusive=True)
    tx.act(RecordName(cmd.call, rollcall_prompt(cmd.call)))


def _ready_joined(tx: Tx, cmd: Join) -> None:
    _arrive(tx, cmd, Phase.WAITING)


def _ready_named(tx: Tx, cmd: NameRecorded) -> None:
    call_step(tx, cmd.call, CallInput.NAME_RECORDED)


_READY: Final[Mapping[type, MeetingAction]] = {Join: _ready_joined, NameRecorded: _ready_named}


def _ready(tx: Tx, cmd: Join | NameRecorded) -> None:
    """The admitted caller, waiting to enter: just joined, or just named."""
    _READY[type(cmd)](tx, cmd)


def _wait(tx: Tx, cmd: Join | NameRecorded) -> None:
    call_step(tx, cmd.call, CallInput.WAIT)
    if not any(ref.kind is TimerKind.START_WAIT for ref in tx.m.timers.values()):
        tx.arm(TimerRef(TimerKind.START_WAIT), tx.m.created_at + tx.m.rules.start_wait)


def _enter(tx: Tx, cmd: Join | NameRecorded) -> None:
    call_step(tx, cmd.call, CallInput.ENTER)


def _start(tx: Tx, cmd: Command) -> None:
    tx.disarm(TimerRef(TimerKind.START_WAIT))
    tx.m = replace(tx.m, started_at=tx.now, held_roles=tx.m.rules.hold_policy)
    tx.emit(MeetingStarted)
    arm_limit(tx, MEETING_LIMIT_TIMERS, tx.m.rules.meeting_max_duration, tx.now)
    for call in list(tx.m.participants):
        call_step(tx, call, CallInput.MEETING_STARTED)


def _host_back(tx: Tx, cmd: Command) -> None:
    tx.disarm(TimerRef(TimerKind.STOP_WAIT))


# --- leaving and ending -------------------------------------------------------------------------


def _departure_of_leave(tx: Tx, cmd: Leave) -> tuple[str, LeaveReason]:
    return cmd.call, cmd.reason


def _departure_of_timer(tx: Tx, cmd: TimerFired) -> tuple[str, LeaveReason]:
    return _call_of(tx.take_timer(cmd.name)), LeaveReason.CALL_MAX_DURATION


_DEPARTURES: Final[Mapping[type, Callable[[Tx, Any], tuple[str, LeaveReason]]]] = {
    Leave: _departure_of_leave,
    TimerFired: _departure_of_timer,
}


def _leave(tx: Tx, cmd: Leave | TimerFired) -> None:
    """The call leaves: it asked (``Leave``) or its time is up (``call_maxduration``)."""
    call, reason = _DEPARTURES[type(cmd)](tx, cmd)
    call_step(tx, call, CallInput.LEAVE, reason)


def _host_left(tx: Tx, cmd: Command) -> None:
    tx.announce(("host_left_ending",))
    tx.arm(TimerRef(TimerKind.STOP_WAIT), tx.now + tx.m.rules.stop_wait)


def _end(tx: Tx, reason: EndReason, why: LeaveReason = LeaveReason.MEETING_ENDED) -> None:
    for call in list(tx.m.participants):
        call_step(tx, call, CallInput.DISMISS, why)
    for name in list(tx.m.timers):
        tx.act(CancelTimer(name))
    began = tx.m.started_at if tx.m.started_at is not None else tx.m.created_at
    tx.m = replace(tx.m, timers={})
    tx.emit(MeetingEnded, reason=reason, duration=tx.now - began)


def _end_last_left(tx: Tx, cmd: Command) -> None:
    _end(tx, EndReason.LAST_LEFT)


def _end_by_command(tx: Tx, cmd: End) -> None:
    _end(tx, cmd.reason)


# An action run for a fired timer first takes it off the armed ones (it needs no cancelling).


def _end_start_timeout(tx: Tx, cmd: TimerFired) -> None:
    tx.take_timer(cmd.name)
    _end(tx, EndReason.START_TIMEOUT, LeaveReason.START_TIMEOUT)


def _end_host_left(tx: Tx, cmd: TimerFired) -> None:
    tx.take_timer(cmd.name)
    _end(tx, EndReason.HOST_LEFT)


def _end_max_duration(tx: Tx, cmd: TimerFired) -> None:
    tx.take_timer(cmd.name)
    _end(tx, EndReason.MAX_DURATION)


def _warn_meeting(tx: Tx, cmd: TimerFired) -> None:
    tx.take_timer(cmd.name)
    tx.announce(("ending_in_one_minute",))


def _warn_call(tx: Tx, cmd: TimerFired) -> None:
    ref = tx.take_timer(cmd.name)
    tx.play(_call_of(ref), ("call_ending_in_one_minute",))


def _call_of(ref: TimerRef) -> str:
    if ref.call is None:
        raise IllegalInputError(f"a {ref.kind.name} timer without a call")
    return ref.call


# --- the tables ---------------------------------------------------------------------------------

_I = MeetingInput
_WAITING, _ACTIVE, _ENDING = MeetingState.WAITING, MeetingState.ACTIVE, MeetingState.ENDING
_ENDED = MeetingState.ENDED

_CONTROLS: Final[Mapping[MeetingInput, MeetingAction]] = {
    _I.SET_MUTE: controls.set_mute,
    _I.MUTE_ALL: controls.mute_all,
    _I.SET_LOCK: controls.set_lock,
    _I.SET_HOLD: controls.set_hold,
    _I.HOLD_ALL: controls.hold_all,
    _I.SET_GAIN: controls.set_gain,
    _I.SET_ATTRIBUTE: controls.set_attribute,
    _I.CYCLE_TONES: controls.cycle_tones,
    _I.ANNOUNCE_COUNT: controls.announce_count,
    _I.TALKING: controls.talking,
    _I.KEYPAD_WEBHOOK: controls.keypad_webhook,
}
"""Inputs that leave the state as it is, in every live state."""


def _to(state: MeetingState, *actions: MeetingAction) -> Transition:
    return Transition(state, actions)


def _row(
    state: MeetingState, cells: Mapping[MeetingInput, Transition]
) -> dict[MeetingInput, Transition]:
    """The cells of a live ``state``: its own, and the controls."""
    return {**{i: _to(state, action) for i, action in _CONTROLS.items()}, **cells}


TRANSITIONS: Final[Mapping[MeetingState, Mapping[MeetingInput, Transition]]] = {
    _WAITING: _row(_WAITING, {
        _I.REFUSE: _to(_WAITING, _refuse),
        _I.ASK_NAME: _to(_WAITING, _ask_name),
        _I.ADMIT: _to(_WAITING, _ready, _wait),
        _I.ADMIT_STARTER: _to(_ACTIVE, _ready, _start),
        _I.ADMIT_HOST: _to(_WAITING, _ready, _wait),
        _I.ADMIT_HOST_STARTER: _to(_ACTIVE, _ready, _start),
        _I.START: _to(_ACTIVE, _start),
        _I.LEAVE: _to(_WAITING, _leave),
        _I.LEAVE_LAST: _to(_ENDED, _leave, _end_last_left),
        _I.LEAVE_LAST_HOST: _to(_WAITING, _leave),
        _I.END: _to(_ENDED, _end_by_command),
        _I.START_TIMEOUT: _to(_ENDED, _end_start_timeout),
        _I.CALL_WARNING: _to(_WAITING, _warn_call),
    }),
    _ACTIVE: _row(_ACTIVE, {
        _I.REFUSE: _to(_ACTIVE, _refuse),
        _I.ASK_NAME: _to(_ACTIVE, _ask_name),
        _I.ADMIT: _to(_ACTIVE, _ready, _enter),
        _I.ADMIT_STARTER: _to(_ACTIVE, _ready, _enter),
        _I.ADMIT_HOST: _to(_ACTIVE, _ready, _enter),
        _I.ADMIT_HOST_STARTER: _to(_ACTIVE, _ready, _enter),
        _I.LEAVE: _to(_ACTIVE, _leave),
        _I.LEAVE_LAST: _to(_ENDED, _leave, _end_last_left),
        _I.LEAVE_LAST_HOST: _to(_ENDING, _leave, _host_left),
        _I.END: _to(_ENDED, _end_by_command),
        _I.MAX_DURATION: _to(_ENDED, _end_max_duration),
        _I.MEETING_WARNING: _to(_ACTIVE, _warn_meeting),
        _I.CALL_WARNING: _to(_ACTIVE, _warn_call),
    }),
    _ENDING: _row(_ENDING, {
        _I.REFUSE: _to(_ENDING, _refuse),
        _I.ASK_NAME: _to(_ENDING, _ask_name),
        _I.ADMIT: _to(_ENDING, _ready, _enter),
        _I.ADMIT_STARTER: _to(_ENDING, _ready, _enter),
        _I.ADMIT_HOST: _to(_ACTIVE, _ready, _host_back, _enter),
        _I.ADMIT_HOST_STARTER: _to(_ACTIVE, _ready, _host_back, _enter),
        _I.LEAVE: _to(_ENDING, _leave),
        _I.LEAVE_LAST: _to(_ENDED, _leave, _end_last_left),
        _I.LEAVE_LAST_HOST: _to(_ENDING, _leave),
        _I.END: _to(_ENDED, _end_by_command),
        _I.STOP_TIMEOUT: _to(_ENDED, _end_host_left),
        _I.MAX_DURATION: _to(_ENDED, _end_max_duration),
        _I.MEETING_WARNING: _to(_ENDING, _warn_meeting),
        _I.CALL_WARNING: _to(_ENDING, _warn_call),
    }),
    _ENDED: {},
}  # fmt: skip
"""state → input → (next state, actions); anything absent is an ``IllegalInputError``."""

# --- reading a command --------------------------------------------------------------------------


def _admission(m: Meeting, role: Role) -> MeetingInput:
    host = role is Role.HOST
    how = m.rules.start_how
    starter = how is StartHow.FIRST or (how is StartHow.MODERATOR and host)
    return _ADMISSIONS[(host, starter)]


_ADMISSIONS: Final = {
    (False, False): _I.ADMIT,
    (False, True): _I.ADMIT_STARTER,
    (True, False): _I.ADMIT_HOST,
    (True, True): _I.ADMIT_HOST_STARTER,
}


def _classify_join(m: Meeting, cmd: Join) -> MeetingInput:
    if cmd.call in m.participants:
        raise IllegalInputError(f"call {cmd.call!r} is already in meeting {m.room}")
    if _refusal(m, cmd.role) is not None:
        return _I.REFUSE
    if m.rules.rollcall:
        return _I.ASK_NAME
    return _admission(m, cmd.role)


def _classify_named(m: Meeting, cmd: NameRecorded) -> MeetingInput:
    return _admission(m, participant(m, cmd.call).role)


def _departure(m: Meeting, call: str) -> MeetingInput:
    p = participant(m, call)
    if m.count() == 1:
        return _I.LEAVE_LAST
    if m.rules.stop_how is StopHow.MODERATOR and p.role is Role.HOST and m.hosts() == 1:
        return _I.LEAVE_LAST_HOST
    return _I.LEAVE


def _classify_leave(m: Meeting, cmd: Leave) -> MeetingInput:
    if cmd.reason in (LeaveReason.LOCKED, LeaveReason.FULL, LeaveReason.MEETING_ENDED):
        raise IllegalInputError(f"Leave({cmd.reason.name}) is decided by the meeting itself")
    return _departure(m, cmd.call)


_TIMER_INPUTS: Final = {
    TimerKind.START_WAIT: _I.START_TIMEOUT,
    TimerKind.STOP_WAIT: _I.STOP_TIMEOUT,
    TimerKind.MEETING_WARN: _I.MEETING_WARNING,
    TimerKind.MEETING_END: _I.MAX_DURATION,
    TimerKind.CALL_WARN: _I.CALL_WARNING,
}


def _classify_timer(m: Meeting, cmd: TimerFired) -> MeetingInput:
    ref = m.timers.get(cmd.name)
    if ref is None:
        raise IllegalInputError(f"timer {cmd.name!r} is not armed in meeting {m.room}")
    if ref.kind is TimerKind.CALL_END:
        return _departure(m, _call_of(ref))
    return _TIMER_INPUTS[ref.kind]


def _always(event: MeetingInput) -> Callable[[Meeting, Any], MeetingInput]:
    return lambda m, cmd: event


_CLASSIFIERS: Final[Mapping[type, Callable[[Meeting, Any], MeetingInput]]] = {
    Join: _classify_join,
    NameRecorded: _classify_named,
    Leave: _classify_leave,
    Start: _always(_I.START),
    End: _always(_I.END),
    TimerFired: _classify_timer,
    SetMute: _always(_I.SET_MUTE),
    MuteAll: _always(_I.MUTE_ALL),
    SetLock: _always(_I.SET_LOCK),
    SetHold: _always(_I.SET_HOLD),
    HoldAll: _always(_I.HOLD_ALL),
    SetGain: _always(_I.SET_GAIN),
    SetAttribute: _always(_I.SET_ATTRIBUTE),
    CycleTones: _always(_I.CYCLE_TONES),
    AnnounceCount: _always(_I.ANNOUNCE_COUNT),
    Talking: _always(_I.TALKING),
    KeypadWebhook: _always(_I.KEYPAD_WEBHOOK),
}


def classify(meeting: Meeting, command: Command) -> MeetingInput:
    """The input ``command`` is to ``meeting``, read from its data (never from its state)."""
    return _CLASSIFIERS[type(command)](meeting, command)


# --- the machine --------------------------------------------------------------------------------


def transition(state: MeetingState, event: MeetingInput) -> Transition | None:
    """The cell of ``TRANSITIONS``; ``None`` where ``state`` does not accept ``event``."""
    return TRANSITIONS[state].get(event)


def open_meeting(room: str, instance: int, attributes: Mapping[str, object], now: float) -> Step:
    """A new, empty meeting of ``room`` (it starts by the rules once callers join)."""
    meeting = Meeting(
        room, instance, dict(attributes), MeetingRules.from_attributes(attributes), now
    )
    tx = Tx(meeting, now)
    controls.check_language(tx)
    return tx.done()


def step(meeting: Meeting, command: Command, now: float) -> Step:
    """Apply one command at monotonic time ``now``; the input meeting is left unchanged."""
    event = classify(meeting, command)
    cell = transition(meeting.state, event)
    if cell is None:
        raise IllegalInputError(
            f"{type(command).__name__} is not accepted by meeting {meeting.room} "
            f"in state {meeting.state.name} (input {event.name})"
        )
    tx = Tx(replace(meeting, state=cell.next), now)
    for action in cell.actions:
        action(tx, command)
    return tx.done()
