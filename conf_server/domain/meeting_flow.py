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
Commands are frozen dataclasses; ``TRANSITIONS`` maps each ``MeetingState`` to the commands it
accepts and their handler, and anything else raises ``IllegalInputError``. A handler works on a
private transaction (``_Tx``) that replaces the frozen meeting as it goes and collects actions and
events in order; the caller's ``Meeting`` is never changed.

Joining: a locked meeting refuses all but hosts ("conference_locked"); a full one (all calls or
per role) refuses with "conference_full". With roll call the caller first records a name
(``RecordName``; ``NameRecorded`` continues). Then, if the meeting has not started, the start
rule decides: ``first`` starts it, ``moderator`` starts it when a host arrives, ``explicit``
waits for ``Start``. Until then callers hear "waiting_for_host" and music; ``conference_start_wait``
after the meeting was created, they are told goodbye and hung up. Starting moves every waiting
caller into the mix, music stopped, with the join policies applied (``mute_policy`` per join,
``hold_policy`` as the hold state the meeting begins with).

Leaving: exit tone and roll-call name to the others; with nobody left the meeting ends; under
``stop_how=moderator`` the last host leaving announces "host_left_ending" and arms the stop wait,
after which everyone is told and hung up (a host coming back in time cancels it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from conf_server.domain.attributes import Role
from conf_server.domain.ivr import CancelTimer, StartTimer
from conf_server.domain.meeting import (
    SUPPORTED_LANGUAGES,
    WARNING_LEAD,
    Action,
    CallHeld,
    CallJoined,
    CallLeft,
    CallMuted,
    CallRefused,
    EndReason,
    Event,
    Hangup,
    IllegalInputError,
    JoinMix,
    KeypadSequence,
    LanguageFallback,
    LeaveMix,
    LeaveReason,
    LockChanged,
    Meeting,
    MeetingEnded,
    MeetingRules,
    MeetingStarted,
    MeetingState,
    NotAllowedError,
    Participant,
    Phase,
    PlayToCall,
    PlayToMeeting,
    RecordName,
    StartHow,
    StartMusicOnHold,
    Step,
    StopHow,
    StopMusicOnHold,
    TalkingChanged,
    TimerKind,
    TimerRef,
    Tone,
    UnknownCallError,
    flags,
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
from conf_server.domain.speech import participant_count, tone_state

# What a leaving call hears before the line drops; ``None``: it has hung up, nothing to do.
_FAREWELL: Final[Mapping[LeaveReason, tuple[str, ...] | None]] = {
    LeaveReason.HANGUP: None,
    LeaveReason.EXIT_KEY: ("goodbye",),
    LeaveReason.KICKED: (),
    LeaveReason.MEETING_ENDED: ("conference_ended", "goodbye"),
    LeaveReason.CALL_MAX_DURATION: ("goodbye",),
    LeaveReason.LOCKED: ("conference_locked", "goodbye"),
    LeaveReason.FULL: ("conference_full", "goodbye"),
    LeaveReason.START_TIMEOUT: ("goodbye",),
}
_CALL_LIMIT_TIMERS: Final = (TimerKind.CALL_WARN, TimerKind.CALL_END)
_MEETING_LIMIT_TIMERS: Final = (TimerKind.MEETING_WARN, TimerKind.MEETING_END)
_HOLDABLE: Final = frozenset({Role.PARTICIPANT, Role.LISTENER})
_TONE_CYCLE: Final = {
    (True, True): (True, False),
    (True, False): (False, True),
    (False, True): (False, False),
    (False, False): (True, True),
}


class _Tx:
    """One command's work: the meeting as it changes, and the actions and events in order."""

    def __init__(self, meeting: Meeting, now: float) -> None:
        self.m = meeting
        self.now = now
        self.actions: list[Action] = []
        self.events: list[Event] = []

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def emit(self, kind: type[Event], **fields: Any) -> None:
        seq = self.m.seq + 1
        self.m = replace(self.m, seq=seq)
        self.events.append(
            kind(room=self.m.room, instance=self.m.instance, seq=seq, at=self.now, **fields)
        )

    def get(self, call: str) -> Participant:
        found = self.m.participants.get(call)
        if found is None:
            raise UnknownCallError(f"call {call!r} is not in meeting {self.m.room}")
        return found

    def put(self, p: Participant) -> None:
        self.m = replace(self.m, participants={**self.m.participants, p.call: p})

    def drop(self, call: str) -> None:
        rest = {k: v for k, v in self.m.participants.items() if k != call}
        self.m = replace(self.m, participants=rest)

    def play(self, call: str, prompts: tuple[str, ...], exclusive: bool = False) -> None:
        self.act(PlayToCall(call, prompts, exclusive, self.m.language))

    def announce(self, prompts: tuple[str, ...] = (), tone: Tone | None = None, **kw: Any) -> None:
        self.act(PlayToMeeting(self.m.room, prompts, tone, language=self.m.language, **kw))

    def music(self, p: Participant, on: bool) -> Participant:
        if p.music != on:
            self.act(StartMusicOnHold(p.call) if on else StopMusicOnHold(p.call))
        return replace(p, music=on)

    def arm(self, ref: TimerRef, deadline: float) -> None:
        name = self.m.timer_name(ref)
        self.m = replace(self.m, timers={**self.m.timers, name: ref})
        self.act(StartTimer(name, deadline))

    def disarm(self, ref: TimerRef) -> None:
        name = self.m.timer_name(ref)
        if name in self.m.timers:
            self.m = replace(self.m, timers={k: v for k, v in self.m.timers.items() if k != name})
            self.act(CancelTimer(name))

    def done(self) -> Step:
        return Step(self.m, tuple(self.actions), tuple(self.events))


def _arm_limit(tx: _Tx, kinds: tuple[TimerKind, TimerKind], limit: float | None, since: float,
               call: str | None = None) -> None:  # fmt: skip
    """Arm the one-minute warning (when the limit is longer than a minute) and the end."""
    warn, end = kinds
    tx.disarm(TimerRef(warn, call))
    tx.disarm(TimerRef(end, call))
    if limit is None:
        return
    if limit > WARNING_LEAD:
        tx.arm(TimerRef(warn, call), since + limit - WARNING_LEAD)
    tx.arm(TimerRef(end, call), since + limit)


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


def _handle_join(tx: _Tx, cmd: Join) -> None:
    if cmd.call in tx.m.participants:
        raise IllegalInputError(f"call {cmd.call!r} is already in meeting {tx.m.room}")
    refusal = _refusal(tx.m, cmd.role)
    if refusal is not None:
        tx.play(cmd.call, _FAREWELL[refusal] or (), exclusive=True)
        tx.act(Hangup(cmd.call, refusal))
        tx.emit(CallRefused, call=cmd.call, role=cmd.role, caller=cmd.caller, reason=refusal)
        return
    naming = tx.m.rules.rollcall
    p = Participant(
        cmd.call, cmd.role, cmd.caller, tx.now, Phase.NAMING if naming else Phase.WAITING
    )
    tx.put(p)
    tx.emit(CallJoined, call=cmd.call, role=cmd.role, caller=cmd.caller)
    _arm_limit(tx, _CALL_LIMIT_TIMERS, tx.m.rules.call_max_duration, tx.now, cmd.call)
    if naming:
        tx.play(cmd.call, ("recorded_name_prompt",), exclusive=True)
        tx.act(RecordName(cmd.call, rollcall_prompt(cmd.call)))
        return
    _admit(tx, p)


def _handle_name_recorded(tx: _Tx, cmd: NameRecorded) -> None:
    p = tx.get(cmd.call)
    if p.phase is not Phase.NAMING:
        raise IllegalInputError(f"NameRecorded for {cmd.call!r} in phase {p.phase.name}")
    p = replace(p, phase=Phase.WAITING, named=True)
    tx.put(p)
    _admit(tx, p)


def _admit(tx: _Tx, p: Participant) -> None:
    """After the gates (and the name): wait, start the meeting, or enter it."""
    state = tx.m.state
    if state is MeetingState.ENDING and p.role is Role.HOST:
        tx.disarm(TimerRef(TimerKind.STOP_WAIT))
        tx.m = replace(tx.m, state=MeetingState.ACTIVE)
    if state is not MeetingState.WAITING:
        _enter(tx, p)
        return
    start_how = tx.m.rules.start_how
    if start_how is StartHow.FIRST or (start_how is StartHow.MODERATOR and p.role is Role.HOST):
        _start(tx)
        return
    tx.play(p.call, ("waiting_for_host",), exclusive=True)
    tx.put(tx.music(p, True))
    if not any(ref.kind is TimerKind.START_WAIT for ref in tx.m.timers.values()):
        tx.arm(TimerRef(TimerKind.START_WAIT), tx.m.created_at + tx.m.rules.start_wait)


def _start(tx: _Tx) -> None:
    tx.disarm(TimerRef(TimerKind.START_WAIT))
    tx.m = replace(
        tx.m, state=MeetingState.ACTIVE, started_at=tx.now, held_roles=tx.m.rules.hold_policy
    )
    tx.emit(MeetingStarted)
    _arm_limit(tx, _MEETING_LIMIT_TIMERS, tx.m.rules.meeting_max_duration, tx.now)
    for p in list(tx.m.participants.values()):
        if p.phase is Phase.WAITING:
            _enter(tx, p)


def _enter(tx: _Tx, p: Participant) -> None:
    m = tx.m
    others = m.in_mix()
    muted = p.muted or p.role in m.rules.mute_policy or (m.all_muted and p.role in _HOLDABLE)
    p = replace(p, phase=Phase.IN, muted=muted or p.listener, held=p.role in m.held_roles)
    p = tx.music(p, p.held)
    tx.put(p)
    tx.act(JoinMix(p.call, m.room), flags(p))
    if not others:
        tx.play(p.call, ("first_participant",))
        return
    if p.role in m.rules.announce_count:
        tx.play(p.call, participant_count(len(others) + 1))
    if m.rules.entry_tones:
        tx.announce(tone=Tone.ENTRY, exclude=p.call)
    if m.rules.rollcall and m.rules.rollcall_on_enter and p.named:
        tx.announce((rollcall_prompt(p.call), "has_joined"), exclude=p.call)


# --- leaving and ending -------------------------------------------------------------------------


def _remove(tx: _Tx, call: str, reason: LeaveReason) -> Participant:
    """Take ``call`` out (mix, music, timers), tell it goodbye, emit ``CallLeft``."""
    p = tx.get(call)
    tx.drop(call)
    for kind in _CALL_LIMIT_TIMERS:
        tx.disarm(TimerRef(kind, call))
    if p.phase is Phase.IN:
        tx.act(LeaveMix(call))
    tx.music(p, False)
    farewell = _FAREWELL[reason]
    if farewell is not None:
        if farewell:
            tx.play(call, farewell, exclusive=True)
        tx.act(Hangup(call, reason))
    tx.emit(CallLeft, call=call, role=p.role, duration=tx.now - p.joined_at, reason=reason)
    return p


def _handle_leave(tx: _Tx, cmd: Leave) -> None:
    if cmd.reason in (LeaveReason.LOCKED, LeaveReason.FULL, LeaveReason.MEETING_ENDED):
        raise IllegalInputError(f"Leave({cmd.reason.name}) is decided by the meeting itself")
    _leave(tx, cmd.call, cmd.reason)


def _leave(tx: _Tx, call: str, reason: LeaveReason) -> None:
    p = _remove(tx, call, reason)
    m = tx.m
    if p.phase is Phase.IN and m.in_mix():
        if m.rules.exit_tones:
            tx.announce(tone=Tone.EXIT)
        if m.rules.rollcall and m.rules.rollcall_on_exit and p.named:
            tx.announce((rollcall_prompt(call), "has_left"))
    if not m.participants:
        _end(tx, EndReason.LAST_LEFT)
    elif (
        m.rules.stop_how is StopHow.MODERATOR
        and p.role is Role.HOST
        and m.state is MeetingState.ACTIVE
        and m.hosts() == 0
    ):
        tx.m = replace(m, state=MeetingState.ENDING)
        tx.announce(("host_left_ending",))
        tx.arm(TimerRef(TimerKind.STOP_WAIT), tx.now + m.rules.stop_wait)


def _end(tx: _Tx, reason: EndReason, why: LeaveReason = LeaveReason.MEETING_ENDED) -> None:
    for call in list(tx.m.participants):
        _remove(tx, call, why)
    for name in list(tx.m.timers):
        tx.act(CancelTimer(name))
    began = tx.m.started_at if tx.m.started_at is not None else tx.m.created_at
    tx.m = replace(tx.m, state=MeetingState.ENDED, timers={})
    tx.emit(MeetingEnded, reason=reason, duration=tx.now - began)


def _handle_start(tx: _Tx, cmd: Start) -> None:
    _start(tx)


def _handle_end(tx: _Tx, cmd: End) -> None:
    _end(tx, cmd.reason)


# --- controls (keypad and API alike) ------------------------------------------------------------


def _mute(tx: _Tx, p: Participant, muted: bool, by: str) -> None:
    if p.listener and not muted:
        raise NotAllowedError(f"call {p.call!r} is a listener: listeners are never heard")
    if p.muted == muted:
        return
    p = replace(p, muted=muted)
    tx.put(p)
    if p.phase is Phase.IN:
        tx.act(flags(p))
    tx.emit(CallMuted, call=p.call, muted=muted, by=by)


def _handle_set_mute(tx: _Tx, cmd: SetMute) -> None:
    _mute(tx, tx.get(cmd.call), cmd.muted, cmd.by)
    tx.play(cmd.call, ("you_are_muted",) if cmd.muted else ("you_are_unmuted",))


def _handle_mute_all(tx: _Tx, cmd: MuteAll) -> None:
    tx.m = replace(tx.m, all_muted=cmd.muted)
    for p in list(tx.m.participants.values()):
        # Unmuting all leaves listeners as they are: never heard.
        if p.role in _HOLDABLE and not (p.listener and not cmd.muted):
            _mute(tx, p, cmd.muted, cmd.by)
    if cmd.by in tx.m.participants:
        tx.play(cmd.by, ("conference_muted",) if cmd.muted else ("conference_unmuted",))


def _handle_set_lock(tx: _Tx, cmd: SetLock) -> None:
    if tx.m.locked != cmd.locked:
        tx.m = replace(tx.m, locked=cmd.locked)
        tx.emit(LockChanged, locked=cmd.locked, by=cmd.by)
    if cmd.by in tx.m.participants:
        prompt = "conference_now_locked" if cmd.locked else "conference_now_unlocked"
        tx.play(cmd.by, (prompt,))


def _hold(tx: _Tx, p: Participant, held: bool, by: str) -> None:
    if p.held == held:
        return
    p = replace(p, held=held)
    if p.phase is Phase.IN:
        p = tx.music(p, held)
        tx.act(flags(p))
    tx.put(p)
    tx.emit(CallHeld, call=p.call, held=held, by=by)


def _handle_set_hold(tx: _Tx, cmd: SetHold) -> None:
    _hold(tx, tx.get(cmd.call), cmd.held, cmd.by)


def _handle_hold_all(tx: _Tx, cmd: HoldAll) -> None:
    tx.m = replace(tx.m, held_roles=_HOLDABLE if cmd.held else frozenset())
    for p in list(tx.m.participants.values()):
        if p.role in _HOLDABLE or not cmd.held:
            _hold(tx, p, cmd.held, cmd.by)
    if cmd.by in tx.m.participants:
        tx.play(cmd.by, ("conference_on_hold",) if cmd.held else ("conference_resumed",))


def _handle_set_gain(tx: _Tx, cmd: SetGain) -> None:
    p = replace(tx.get(cmd.call), gain_in_db=cmd.gain_in_db, gain_out_db=cmd.gain_out_db)
    tx.put(p)
    if p.phase is Phase.IN:
        tx.act(flags(p))


def _set_attributes(tx: _Tx, changes: Mapping[str, object]) -> None:
    attributes = {**tx.m.attributes, **changes}
    rules = MeetingRules.from_attributes(attributes)
    old = tx.m.rules
    tx.m = replace(tx.m, attributes=attributes, rules=rules)
    if rules.language != old.language:
        _check_language(tx)
    if rules.meeting_max_duration != old.meeting_max_duration and tx.m.started_at is not None:
        _arm_limit(tx, _MEETING_LIMIT_TIMERS, rules.meeting_max_duration, tx.m.started_at)


def _check_language(tx: _Tx) -> None:
    if tx.m.rules.language not in SUPPORTED_LANGUAGES:
        tx.act(LanguageFallback(tx.m.room, tx.m.rules.language, tx.m.language))


def _handle_set_attribute(tx: _Tx, cmd: SetAttribute) -> None:
    _set_attributes(tx, {cmd.name: cmd.value})


def _handle_cycle_tones(tx: _Tx, cmd: CycleTones) -> None:
    tx.get(cmd.call)
    entry, exit_ = _TONE_CYCLE[(tx.m.rules.entry_tones, tx.m.rules.exit_tones)]
    on_off = {True: "on", False: "off"}
    _set_attributes(
        tx, {"conference_entrytones": on_off[entry], "conference_exittones": on_off[exit_]}
    )
    tx.play(cmd.call, tone_state(entry, exit_))


def _handle_announce_count(tx: _Tx, cmd: AnnounceCount) -> None:
    p = tx.get(cmd.call)
    in_mix = len(tx.m.in_mix())
    tx.play(cmd.call, participant_count(in_mix if p.phase is Phase.IN else in_mix + 1))


def _handle_talking(tx: _Tx, cmd: Talking) -> None:
    p = tx.get(cmd.call)
    # A listener is never heard, so it never "talks"; nor does a call outside the mix.
    if p.phase is Phase.IN and not p.listener:
        tx.emit(TalkingChanged, call=cmd.call, talking=cmd.talking)


def _handle_keypad_webhook(tx: _Tx, cmd: KeypadWebhook) -> None:
    tx.get(cmd.call)
    tx.emit(KeypadSequence, call=cmd.call, feature=cmd.feature, keys=cmd.keys)


# --- timers -------------------------------------------------------------------------------------


def _on_start_wait(tx: _Tx, ref: TimerRef) -> None:
    _end(tx, EndReason.START_TIMEOUT, LeaveReason.START_TIMEOUT)


def _on_stop_wait(tx: _Tx, ref: TimerRef) -> None:
    _end(tx, EndReason.HOST_LEFT)


def _on_meeting_warn(tx: _Tx, ref: TimerRef) -> None:
    tx.announce(("ending_in_one_minute",))


def _on_meeting_end(tx: _Tx, ref: TimerRef) -> None:
    _end(tx, EndReason.MAX_DURATION)


def _on_call_warn(tx: _Tx, ref: TimerRef) -> None:
    if ref.call is None:
        raise IllegalInputError("a call timer without a call")
    tx.play(ref.call, ("call_ending_in_one_minute",))


def _on_call_end(tx: _Tx, ref: TimerRef) -> None:
    if ref.call is None:
        raise IllegalInputError("a call timer without a call")
    _leave(tx, ref.call, LeaveReason.CALL_MAX_DURATION)


_TIMER_HANDLERS: Final[Mapping[TimerKind, Callable[[_Tx, TimerRef], None]]] = {
    TimerKind.START_WAIT: _on_start_wait,
    TimerKind.STOP_WAIT: _on_stop_wait,
    TimerKind.MEETING_WARN: _on_meeting_warn,
    TimerKind.MEETING_END: _on_meeting_end,
    TimerKind.CALL_WARN: _on_call_warn,
    TimerKind.CALL_END: _on_call_end,
}


def _handle_timer(tx: _Tx, cmd: TimerFired) -> None:
    ref = tx.m.timers.get(cmd.name)
    if ref is None:
        raise IllegalInputError(f"timer {cmd.name!r} is not armed in meeting {tx.m.room}")
    # A fired timer needs no cancelling.
    tx.m = replace(tx.m, timers={k: v for k, v in tx.m.timers.items() if k != cmd.name})
    _TIMER_HANDLERS[ref.kind](tx, ref)


# --- the table ----------------------------------------------------------------------------------

# Handlers take the command type their row names; Any keeps one table for all of them.
Handler = Callable[[_Tx, Any], None]

_LIVE: Final[dict[type, Handler]] = {
    Join: _handle_join,
    NameRecorded: _handle_name_recorded,
    Leave: _handle_leave,
    End: _handle_end,
    SetMute: _handle_set_mute,
    MuteAll: _handle_mute_all,
    SetLock: _handle_set_lock,
    SetHold: _handle_set_hold,
    HoldAll: _handle_hold_all,
    SetGain: _handle_set_gain,
    SetAttribute: _handle_set_attribute,
    CycleTones: _handle_cycle_tones,
    AnnounceCount: _handle_announce_count,
    Talking: _handle_talking,
    KeypadWebhook: _handle_keypad_webhook,
    TimerFired: _handle_timer,
}

TRANSITIONS: Final[Mapping[MeetingState, Mapping[type, Handler]]] = {
    MeetingState.WAITING: {**_LIVE, Start: _handle_start},
    MeetingState.ACTIVE: _LIVE,
    MeetingState.ENDING: _LIVE,
    MeetingState.ENDED: {},
}
"""state → command type → handler; anything absent is an ``IllegalInputError``."""


def open_meeting(room: str, instance: int, attributes: Mapping[str, object], now: float) -> Step:
    """A new, empty meeting of ``room`` (it starts by the rules once callers join)."""
    meeting = Meeting(
        room, instance, dict(attributes), MeetingRules.from_attributes(attributes), now
    )
    tx = _Tx(meeting, now)
    _check_language(tx)
    return tx.done()


def step(meeting: Meeting, command: Command, now: float) -> Step:
    """Apply one command at monotonic time ``now``; the input meeting is left unchanged."""
    handler = TRANSITIONS[meeting.state].get(type(command))
    if handler is None:
        raise IllegalInputError(
            f"{type(command).__name__} is not accepted by meeting {meeting.room} "
            f"in state {meeting.state.name}"
        )
    tx = _Tx(meeting, now)
    handler(tx, command)
    return tx.done()
