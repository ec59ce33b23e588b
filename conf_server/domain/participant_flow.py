"""A participant's phase as a state machine: ``call_step(tx, call, input, change)``.

Source: the CarrierX Conference API v1 (``seeds/004_…``): ``conference_rollcall`` (a caller
records a name before entering), ``conference_start_how`` (callers wait with music until the
meeting starts), the Call object's ``muteMode``/``holdMode`` and ``gainLevel``,
``call_announceparticipantcount``, ``conference_entrytones``/``_exittones`` and
``conference_rollcall_onenter``/``_onexit``.

Theory of operation
-------------------
Each call of a meeting is in one phase (``meeting.Phase``): ``NAMING`` (recording its roll-call
name), ``WAITING`` (admitted, the meeting not started: music on hold once told to wait) or ``IN``
(in the mix). The meeting machine (``meeting_flow``) creates a participant in ``NAMING`` (roll
call) or ``WAITING`` and sends it the inputs below; ``PHASES`` maps (phase × input) to the next
phase (``None``: the call is gone from the meeting) and the action, which runs once the phase has
changed. An input absent for the phase raises ``IllegalInputError``. ``change`` carries the
input's data (a leave reason, ``(muted, by)``, ``(held, by)``, ``(gain_in_db, gain_out_db)``,
``talking``).

=================  ===================  =====================  ============================
input              NAMING               WAITING                IN
=================  ===================  =====================  ============================
NAME_RECORDED      → WAITING, named     ✗                      ✗
WAIT               ✗                    "waiting_for_host",    ✗
                                        music on
ENTER              ✗                    → IN: enter the mix    ✗
MEETING_STARTED    stays: enters once   → IN: enter the mix    ✗
                   named
LEAVE              gone: farewell       gone: music off,       gone: leave the mix, music
                                        farewell               off, farewell; exit tone and
                                                               name to the others
DISMISS            gone: farewell       gone: music off,       gone: leave the mix, music
(meeting ends)                          farewell               off, farewell
MUTE               kept                 kept                   kept, mixer flags
HOLD               kept                 kept                   kept, music, mixer flags
GAIN               kept                 kept                   kept, mixer flags
TALKING            ignored              ignored                ``TalkingChanged`` (not for
                                                               listeners: never heard)
ANNOUNCE_COUNT     count + 1            count + 1              count
=================  ===================  =====================  ============================

"Kept": the participant remembers it; entering the mix applies the mute (with the mute policy)
and the hold state of the meeting. A farewell is the leave reason's prompts and ``Hangup`` (none
for a caller who hung up), then ``CallLeft``. Entering plays "first participant" or the count,
the entry tone and the roll-call name to the others.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final

from conf_server.domain.attributes import Role
from conf_server.domain.errors import IllegalInputError, NotAllowedError
from conf_server.domain.meeting import (
    CallHeld,
    CallLeft,
    CallMuted,
    Hangup,
    JoinMix,
    LeaveMix,
    LeaveReason,
    Participant,
    Phase,
    TalkingChanged,
    TimerRef,
    Tone,
    flags,
    rollcall_prompt,
)
from conf_server.domain.meeting_tx import CALL_LIMIT_TIMERS, Tx
from conf_server.domain.speech import participant_count

HOLDABLE: Final = frozenset({Role.PARTICIPANT, Role.LISTENER})
"""The roles that mute all and hold all reach (hosts keep their own state)."""

FAREWELL: Final[Mapping[LeaveReason, tuple[str, ...] | None]] = {
    LeaveReason.HANGUP: None,
    LeaveReason.EXIT_KEY: ("goodbye",),
    LeaveReason.KICKED: (),
    LeaveReason.MEETING_ENDED: ("conference_ended", "goodbye"),
    LeaveReason.CALL_MAX_DURATION: ("goodbye",),
    LeaveReason.LOCKED: ("conference_locked", "goodbye"),
    LeaveReason.FULL: ("conference_full", "goodbye"),
    LeaveReason.START_TIMEOUT: ("goodbye",),
}
"""What a leaving call hears before the line drops; ``None``: it has hung up, nothing to do."""


class CallInput(Enum):
    """What happens to one call, as the participant's phase machine sees it."""

    NAME_RECORDED = "name_recorded"
    WAIT = "wait"  # the meeting has not started: wait for it
    ENTER = "enter"  # admitted into a meeting that has started
    MEETING_STARTED = "meeting_started"
    LEAVE = "leave"  # the call goes; the meeting goes on
    DISMISS = "dismiss"  # the meeting ends: everyone goes
    MUTE = "mute"
    HOLD = "hold"
    GAIN = "gain"
    TALKING = "talking"
    ANNOUNCE_COUNT = "announce_count"


# An action gets the participant as it is after the phase change (or as it was, when gone).
CallAction = Callable[[Tx, Participant, Any], None]


@dataclass(frozen=True, slots=True)
class PhaseRule:
    next: Phase | None  # None: the call leaves the meeting
    action: CallAction


# --- actions ------------------------------------------------------------------------------------


def _named(tx: Tx, p: Participant, change: None) -> None:
    tx.put(replace(p, named=True))


def _wait(tx: Tx, p: Participant, change: None) -> None:
    tx.play(p.call, ("waiting_for_host",), exclusive=True)
    tx.put(tx.music(p, True))


def _enter(tx: Tx, p: Participant, change: None) -> None:
    m = tx.m
    others = [q for q in m.in_mix() if q.call != p.call]
    muted = p.muted or p.role in m.rules.mute_policy or (m.all_muted and p.role in HOLDABLE)
    p = replace(p, muted=muted or p.listener, held=p.role in m.held_roles)
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


def _keep(tx: Tx, p: Participant, change: object) -> None:
    """Nothing to do in this phase (a roll-call recording goes on when the meeting starts)."""


def _depart(tx: Tx, p: Participant, reason: LeaveReason, in_mix: bool) -> None:
    for kind in CALL_LIMIT_TIMERS:
        tx.disarm(TimerRef(kind, p.call))
    if in_mix:
        tx.act(LeaveMix(p.call))
    tx.music(p, False)
    farewell = FAREWELL[reason]
    if farewell is not None:
        if farewell:
            tx.play(p.call, farewell, exclusive=True)
        tx.act(Hangup(p.call, reason))
    tx.emit(CallLeft, call=p.call, role=p.role, duration=tx.now - p.joined_at, reason=reason)


def _go(tx: Tx, p: Participant, reason: LeaveReason) -> None:
    _depart(tx, p, reason, in_mix=False)


def _dismiss_from_mix(tx: Tx, p: Participant, reason: LeaveReason) -> None:
    _depart(tx, p, reason, in_mix=True)


def _leave_mix(tx: Tx, p: Participant, reason: LeaveReason) -> None:
    _depart(tx, p, reason, in_mix=True)
    m = tx.m
    if not m.in_mix():
        return
    if m.rules.exit_tones:
        tx.announce(tone=Tone.EXIT)
    if m.rules.rollcall and m.rules.rollcall_on_exit and p.named:
        tx.announce((rollcall_prompt(p.call), "has_left"))


def _muted(tx: Tx, p: Participant, change: tuple[bool, str], in_mix: bool) -> None:
    muted, by = change
    if p.listener and not muted:
        raise NotAllowedError(f"call {p.call!r} is a listener: listeners are never heard")
    if p.muted == muted:
        return
    p = replace(p, muted=muted)
    tx.put(p)
    if in_mix:
        tx.act(flags(p))
    tx.emit(CallMuted, call=p.call, muted=muted, by=by)


def _mute_kept(tx: Tx, p: Participant, change: tuple[bool, str]) -> None:
    _muted(tx, p, change, in_mix=False)


def _mute_in_mix(tx: Tx, p: Participant, change: tuple[bool, str]) -> None:
    _muted(tx, p, change, in_mix=True)


def _held(tx: Tx, p: Participant, change: tuple[bool, str], in_mix: bool) -> None:
    held, by = change
    if p.held == held:
        return
    p = replace(p, held=held)
    if in_mix:
        p = tx.music(p, held)
        tx.act(flags(p))
    tx.put(p)
    tx.emit(CallHeld, call=p.call, held=held, by=by)


def _hold_kept(tx: Tx, p: Participant, change: tuple[bool, str]) -> None:
    _held(tx, p, change, in_mix=False)


def _hold_in_mix(tx: Tx, p: Participant, change: tuple[bool, str]) -> None:
    _held(tx, p, change, in_mix=True)


def _gain_kept(tx: Tx, p: Participant, change: tuple[float, float]) -> None:
    gain_in_db, gain_out_db = change
    tx.put(replace(p, gain_in_db=gain_in_db, gain_out_db=gain_out_db))


def _gain_in_mix(tx: Tx, p: Participant, change: tuple[float, float]) -> None:
    _gain_kept(tx, p, change)
    tx.act(flags(tx.get(p.call)))


def _talking(tx: Tx, p: Participant, talking: bool) -> None:
    if not p.listener:  # a listener is never heard, so it never "talks"
        tx.emit(TalkingChanged, call=p.call, talking=talking)


def _count_with_self(tx: Tx, p: Participant, change: None) -> None:
    tx.play(p.call, participant_count(len(tx.m.in_mix()) + 1))


def _count(tx: Tx, p: Participant, change: None) -> None:
    tx.play(p.call, participant_count(len(tx.m.in_mix())))


# --- the table ----------------------------------------------------------------------------------

_I = CallInput
_NAMING, _WAITING, _IN = Phase.NAMING, Phase.WAITING, Phase.IN

PHASES: Final[Mapping[Phase, Mapping[CallInput, PhaseRule]]] = {
    Phase.NAMING: {
        _I.NAME_RECORDED: PhaseRule(_WAITING, _named),
        _I.MEETING_STARTED: PhaseRule(_NAMING, _keep),
        _I.LEAVE: PhaseRule(None, _go),
        _I.DISMISS: PhaseRule(None, _go),
        _I.MUTE: PhaseRule(_NAMING, _mute_kept),
        _I.HOLD: PhaseRule(_NAMING, _hold_kept),
        _I.GAIN: PhaseRule(_NAMING, _gain_kept),
        _I.TALKING: PhaseRule(_NAMING, _keep),
        _I.ANNOUNCE_COUNT: PhaseRule(_NAMING, _count_with_self),
    },
    Phase.WAITING: {
        _I.WAIT: PhaseRule(_WAITING, _wait),
        _I.ENTER: PhaseRule(_IN, _enter),
        _I.MEETING_STARTED: PhaseRule(_IN, _enter),
        _I.LEAVE: PhaseRule(None, _go),
        _I.DISMISS: PhaseRule(None, _go),
        _I.MUTE: PhaseRule(_WAITING, _mute_kept),
        _I.HOLD: PhaseRule(_WAITING, _hold_kept),
        _I.GAIN: PhaseRule(_WAITING, _gain_kept),
        _I.TALKING: PhaseRule(_WAITING, _keep),
        _I.ANNOUNCE_COUNT: PhaseRule(_WAITING, _count_with_self),
    },
    Phase.IN: {
        _I.LEAVE: PhaseRule(None, _leave_mix),
        _I.DISMISS: PhaseRule(None, _dismiss_from_mix),
        _I.MUTE: PhaseRule(_IN, _mute_in_mix),
        _I.HOLD: PhaseRule(_IN, _hold_in_mix),
        _I.GAIN: PhaseRule(_IN, _gain_in_mix),
        _I.TALKING: PhaseRule(_IN, _talking),
        _I.ANNOUNCE_COUNT: PhaseRule(_IN, _count),
    },
}
"""phase → input → (next phase, action); anything absent is an ``IllegalInputError``."""


def call_step(tx: Tx, call: str, event: CallInput, change: object = None) -> None:
    """Apply ``event`` to the participant ``call`` of the meeting in ``tx``."""
    p = tx.get(call)
    rule = PHASES[p.phase].get(event)
    if rule is None:
        raise IllegalInputError(
            f"call {call!r} in phase {p.phase.name} does not accept {event.name}"
        )
    if rule.next is None:
        tx.drop(call)
    elif rule.next is not p.phase:
        p = replace(p, phase=rule.next)
        tx.put(p)
    rule.action(tx, p, change)
