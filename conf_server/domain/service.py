"""The meeting service: one code path for the keypad, the IVR's ``Join`` and the REST API.

Source: DESIGN.md §1 points 4 and 6; the CarrierX Conference API v1 live Meetings and Calls
(``seeds/004_…``: ``PUT /calls/{id}``, ``DELETE /calls/{id}``, ``PUT /meetings/{n}``,
``DELETE /meetings/{n}``) and its keypad attributes.

Theory of operation
-------------------
``MeetingService`` holds the live meetings (room → ``Meeting``), which call is in which room, a
keypad ``Collector`` per call, and which timer belongs to whom. Every method takes ``now`` and
returns an ``Outcome``: the actions for the runtime (in order) and the events for the callbacks.
Each method turns its request into one ``meeting_commands`` command and hands it to
``meeting_flow.step``, so a host pressing ``*6`` and an operator's ``PUT /calls/{id}`` run the
same handler and raise the same ``CallMuted`` event (``by`` tells them apart).

A join to a room with no live meeting opens one (a new ``instance``, sequence numbers from 1)
with the attributes the runtime resolved for that call; later joins use the meeting's own,
which an operator may change live with ``set_attribute``. The keypad's timers are named
``keypad:<call>``; the meetings' names come from ``Meeting.timer_name``. A call that the service
hung up (``Hangup`` action) is already gone: ``has_call`` tells the runtime whether a BYE still
needs reporting with ``leave``.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from conf_server.domain import keypad
from conf_server.domain.attributes import (
    Level,
    Role,
    check_bindings,
    keypad_bindings,
    typed,
    validate,
)
from conf_server.domain.errors import (
    AttributeValueError,
    InvalidValueError,
    MeetingError,
    NotAllowedError,
    UnknownCallError,
    UnknownMeetingError,
)
from conf_server.domain.ivr import CancelTimer, StartTimer
from conf_server.domain.keypad import Collector, Matched, Operation, Pending
from conf_server.domain.meeting import (
    OPERATOR,
    Action,
    Event,
    LeaveReason,
    Meeting,
    MeetingState,
    Participant,
    Phase,
    PlayToCall,
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
from conf_server.domain.meeting_flow import open_meeting, step
from conf_server.domain.speech import help_menu
from media.mixer import MAX_GAIN_DB, MIN_GAIN_DB

_KEYPAD_TIMER: Final = "keypad:"


@dataclass(frozen=True, slots=True)
class Outcome:
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.actions + other.actions, self.events + other.events)


@dataclass(frozen=True, slots=True)
class _Press:
    """A completed key sequence of a caller allowed to use it."""

    meeting: Meeting
    who: Participant
    hit: Matched
    now: float


KeypadHandler = Callable[["MeetingService", _Press], Outcome]


class MeetingService:
    """Live meetings and the operations on them; see the module docstring."""

    def __init__(self, keypad_timeout: float = keypad.KEYPAD_TIMEOUT) -> None:
        self.keypad_timeout = keypad_timeout
        self._meetings: dict[str, Meeting] = {}
        self._rooms: dict[str, str] = {}  # call → room
        self._keypads: dict[str, Collector] = {}
        self._timers: dict[str, str] = {}  # meeting timer name → room
        self._instances: dict[str, int] = {}

    # --- queries ----------------------------------------------------------------------------

    def meeting(self, room: str) -> Meeting:
        found = self._meetings.get(room)
        if found is None:
            raise UnknownMeetingError(f"room {room!r} has no live meeting")
        return found

    def meetings(self) -> Mapping[str, Meeting]:
        return dict(self._meetings)

    def has_call(self, call: str) -> bool:
        return call in self._rooms

    def room_of(self, call: str) -> str:
        room = self._rooms.get(call)
        if room is None:
            raise UnknownCallError(f"call {call!r} is not in any meeting")
        return room

    def participant(self, call: str) -> Participant:
        return self.meeting(self.room_of(call)).participants[call]

    # --- core -------------------------------------------------------------------------------

    def _apply(self, room: str, command: Command, now: float) -> Outcome:
        before = self.meeting(room)
        result = step(before, command, now)
        out = Outcome(result.actions, result.events)
        after = result.meeting
        for call in before.participants.keys() - after.participants.keys():
            out += self._forget_call(call)
        for call in after.participants.keys() - before.participants.keys():
            self._rooms[call] = room
        self._track_timers(room, result.actions)
        if after.state is MeetingState.ENDED:
            del self._meetings[room]
        else:
            self._meetings[room] = after
        return out

    def _track_timers(self, room: str, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if isinstance(action, StartTimer):
                self._timers[action.name] = room
            elif isinstance(action, CancelTimer):
                self._timers.pop(action.name, None)

    def _forget_call(self, call: str) -> Outcome:
        del self._rooms[call]
        collector = self._keypads.pop(call, None)
        if collector is not None and collector.keys:
            return Outcome((CancelTimer(_KEYPAD_TIMER + call),))
        return Outcome()

    def _on_call(self, call: str, make: Callable[[], Command], now: float) -> Outcome:
        return self._apply(self.room_of(call), make(), now)

    # --- the IVR's side ---------------------------------------------------------------------

    def join(
        self,
        call: str,
        room: str,
        role: Role,
        caller: str,
        *,
        attributes: Mapping[str, object],
        now: float,
    ) -> Outcome:
        """A caller passed the IVR (``ivr.Join``); ``attributes`` are the resolved values."""
        if call in self._rooms:
            raise MeetingError(f"call {call!r} is already in meeting {self._rooms[call]}")
        out = Outcome()
        if room not in self._meetings:
            instance = self._instances.get(room, 0) + 1
            self._instances[room] = instance
            opened = open_meeting(room, instance, attributes, now)
            self._meetings[room] = opened.meeting
            out = Outcome(opened.actions, opened.events)
        return out + self._apply(room, Join(call, role, caller), now)

    def name_recorded(self, call: str, now: float) -> Outcome:
        return self._on_call(call, lambda: NameRecorded(call), now)

    def leave(self, call: str, now: float, reason: LeaveReason = LeaveReason.HANGUP) -> Outcome:
        """The caller hung up (or ``reason``); the meeting's stop rules follow."""
        return self._on_call(call, lambda: Leave(call, reason), now)

    def talking(self, call: str, talking: bool, now: float) -> Outcome:
        return self._on_call(call, lambda: Talking(call, talking), now)

    def timer_fired(self, name: str, now: float) -> Outcome:
        if name.startswith(_KEYPAD_TIMER):
            call = name.removeprefix(_KEYPAD_TIMER)
            collector = self._keypads.get(call)
            if collector is None:
                raise UnknownCallError(f"keypad timer {name!r} for a call with no sequence")
            self._keypads[call] = keypad.expire(collector, now)
            return Outcome()
        room = self._timers.pop(name, None)
        if room is None:
            raise MeetingError(f"timer {name!r} is not armed")
        return self._apply(room, TimerFired(name), now)

    # --- operations for the API and the keypad ----------------------------------------------

    def start(self, room: str, now: float) -> Outcome:
        return self._apply(room, Start(), now)

    def end(self, room: str, now: float) -> Outcome:
        """Kick all: hang up everyone and end the meeting."""
        return self._apply(room, End(), now)

    def kick(self, call: str, now: float) -> Outcome:
        return self._on_call(call, lambda: Leave(call, LeaveReason.KICKED), now)

    def mute(self, call: str, muted: bool, now: float, by: str = OPERATOR) -> Outcome:
        self.check_mute(call, muted)
        return self._on_call(call, lambda: SetMute(call, muted, by), now)

    def check_mute(self, call: str, muted: bool) -> None:
        """Refuse what ``mute`` refuses, changing nothing (the API checks a whole request first)."""
        if not muted and self.participant(call).listener:
            raise NotAllowedError("a listener is never heard and cannot be unmuted")

    def mute_all(self, room: str, muted: bool, now: float, by: str = OPERATOR) -> Outcome:
        return self._apply(room, MuteAll(muted, by), now)

    def lock(self, room: str, locked: bool, now: float, by: str = OPERATOR) -> Outcome:
        return self._apply(room, SetLock(locked, by), now)

    def hold(self, call: str, held: bool, now: float, by: str = OPERATOR) -> Outcome:
        return self._on_call(call, lambda: SetHold(call, held, by), now)

    def hold_all(self, room: str, held: bool, now: float, by: str = OPERATOR) -> Outcome:
        return self._apply(room, HoldAll(held, by), now)

    def set_gain(self, call: str, gain_in_db: float, gain_out_db: float, now: float) -> Outcome:
        self.check_gain(gain_in_db, gain_out_db)
        return self._on_call(call, lambda: SetGain(call, gain_in_db, gain_out_db), now)

    @staticmethod
    def check_gain(gain_in_db: float, gain_out_db: float) -> None:
        """Gains the mixer applies as they are: its own limits (``media.mixer``), NaN refused."""
        for gain in (gain_in_db, gain_out_db):
            if not MIN_GAIN_DB <= gain <= MAX_GAIN_DB:
                raise InvalidValueError(
                    f"gain {gain} dB is outside [{MIN_GAIN_DB:g}, {MAX_GAIN_DB:g}] dB"
                )

    def set_attribute(self, room: str, name: str, value: object, now: float) -> Outcome:
        """Change one attribute of a live meeting, validated as on a meeting room."""
        meeting = self.meeting(room)
        try:
            value = typed(name, validate(name, value, Level.ROOM))
            check_bindings({**meeting.attributes, name: value})
        except AttributeValueError as exc:
            raise InvalidValueError(str(exc)) from exc
        return self._apply(room, SetAttribute(name, value), now)

    # --- keypad -----------------------------------------------------------------------------

    def digit(self, call: str, key: str, now: float) -> Outcome:
        """A key pressed by a caller in a meeting (RFC 4733, SIP INFO or in-band)."""
        meeting = self.meeting(self.room_of(call))
        p = meeting.participants[call]
        if p.phase is Phase.NAMING:
            return Outcome()  # the name recorder owns the keys ("#" ends the recording)
        bindings = keypad_bindings(meeting.attributes)
        before = self._keypads.get(call, Collector())
        after, result = keypad.press(before, key, bindings, now, self.keypad_timeout)
        self._keypads[call] = after
        timer = _KEYPAD_TIMER + call
        if isinstance(result, Pending):
            return Outcome((StartTimer(timer, result.deadline),))
        out = Outcome((CancelTimer(timer),)) if before.keys else Outcome()
        if not isinstance(result, Matched):
            return out
        if not keypad.allowed(bindings, result.feature, p.role):
            return out + self._say(meeting, call, ("not_allowed",))
        handler = _KEYPAD[keypad.operation(result.feature)]
        return out + handler(self, _Press(meeting, p, result, now))

    def _say(self, meeting: Meeting, call: str, prompts: tuple[str, ...]) -> Outcome:
        return Outcome((PlayToCall(call, prompts, False, meeting.language),))

    def _command(self, meeting: Meeting, command: Command, now: float) -> Outcome:
        return self._apply(meeting.room, command, now)


def _key_self_mute(s: MeetingService, k: _Press) -> Outcome:
    if k.who.listener:
        # A listener is never heard: unmuting would be a promise the mixer does not keep.
        return s._say(k.meeting, k.who.call, ("not_allowed",))
    return s._command(k.meeting, SetMute(k.who.call, not k.who.muted, k.who.call), k.now)


def _key_count(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, AnnounceCount(k.who.call), k.now)


def _key_help(s: MeetingService, k: _Press) -> Outcome:
    bindings = keypad_bindings(k.meeting.attributes)
    return s._say(k.meeting, k.who.call, help_menu(keypad.help_items(bindings, k.who.role)))


def _key_exit(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, Leave(k.who.call, LeaveReason.EXIT_KEY), k.now)


def _key_mute_all(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, MuteAll(not k.meeting.all_muted, k.who.call), k.now)


def _key_lock(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, SetLock(not k.meeting.locked, k.who.call), k.now)


def _key_hold(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, HoldAll(not k.meeting.held_roles, k.who.call), k.now)


def _key_tones(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, CycleTones(k.who.call), k.now)


def _key_webhook(s: MeetingService, k: _Press) -> Outcome:
    return s._command(k.meeting, KeypadWebhook(k.who.call, k.hit.feature, k.hit.keys), k.now)


_KEYPAD: Final[Mapping[Operation, KeypadHandler]] = {
    Operation.SELF_MUTE: _key_self_mute,
    Operation.PARTICIPANT_COUNT: _key_count,
    Operation.HELP: _key_help,
    Operation.EXIT: _key_exit,
    Operation.MUTE_ALL: _key_mute_all,
    Operation.LOCK: _key_lock,
    Operation.HOLD: _key_hold,
    Operation.TONES: _key_tones,
    Operation.WEBHOOK: _key_webhook,
}
"""Keypad operation → what the service does for a caller allowed to use it."""
