"""One command's work on a meeting: the ``Tx`` the meeting and participant machines write to.

Theory of operation: ``meeting_flow.step`` opens a ``Tx`` over the caller's frozen ``Meeting``;
the actions of a transition (``meeting_flow``, ``meeting_controls``, ``participant_flow``) replace
the meeting inside it as they go and append the actions for the runtime and the events for the
callbacks, in order. ``done`` closes it into a ``Step``. The caller's ``Meeting`` is never
changed, so a command that raises half-way leaves nothing behind.

Neither ``Meeting.state`` nor ``Participant.phase`` is written here: they change only through the
tables of ``meeting_flow`` and ``participant_flow``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from conf_server.domain.errors import UnknownCallError
from conf_server.domain.ivr import CancelTimer, StartTimer
from conf_server.domain.meeting import (
    WARNING_LEAD,
    Action,
    Event,
    Meeting,
    Participant,
    PlayToCall,
    PlayToMeeting,
    StartMusicOnHold,
    Step,
    StopMusicOnHold,
    TimerKind,
    TimerRef,
    Tone,
)

CALL_LIMIT_TIMERS: Final = (TimerKind.CALL_WARN, TimerKind.CALL_END)
MEETING_LIMIT_TIMERS: Final = (TimerKind.MEETING_WARN, TimerKind.MEETING_END)


class Tx:
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
        return participant(self.m, call)

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

    def take_timer(self, name: str) -> TimerRef:
        """The fired timer ``name``, no longer armed (a fired timer needs no cancelling)."""
        ref = self.m.timers[name]
        self.m = replace(self.m, timers={k: v for k, v in self.m.timers.items() if k != name})
        return ref

    def done(self) -> Step:
        return Step(self.m, tuple(self.actions), tuple(self.events))


def participant(m: Meeting, call: str) -> Participant:
    found = m.participants.get(call)
    if found is None:
        raise UnknownCallError(f"call {call!r} is not in meeting {m.room}")
    return found


def arm_limit(tx: Tx, kinds: tuple[TimerKind, TimerKind], limit: float | None, since: float,
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
