"""The participant's phase machine: the phase × input table, cell by cell."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conf_server.domain.attributes import Role, resolve
from conf_server.domain.errors import IllegalInputError, NotAllowedError
from conf_server.domain.meeting import (
    CallHeld,
    CallLeft,
    CallMuted,
    JoinMix,
    LeaveMix,
    LeaveReason,
    Meeting,
    MeetingState,
    Participant,
    Phase,
    PlayToCall,
    PlayToMeeting,
    SetFlags,
    StartMusicOnHold,
    TalkingChanged,
    Tone,
)
from conf_server.domain.meeting_flow import open_meeting
from conf_server.domain.meeting_tx import Tx
from conf_server.domain.participant_flow import PHASES, CallInput, call_step

N, W, IN = Phase.NAMING, Phase.WAITING, Phase.IN
C = CallInput
GONE = "gone"
# Written out apart from the module's table: (phase, input) → next phase or GONE; absent: illegal.
_NEXT: dict[tuple[Phase, CallInput], Phase | str] = {
    (N, C.NAME_RECORDED): W,
    (N, C.MEETING_STARTED): N,
    (W, C.WAIT): W,
    (W, C.ENTER): IN,
    (W, C.MEETING_STARTED): IN,
    **{(p, i): GONE for p in (N, W, IN) for i in (C.LEAVE, C.DISMISS)},
    **{(p, i): p for p in (N, W, IN) for i in (C.MUTE, C.HOLD, C.GAIN, C.TALKING)},
    **{(p, C.ANNOUNCE_COUNT): p for p in (N, W, IN)},
}
_CHANGE: dict[CallInput, object] = {
    C.LEAVE: LeaveReason.EXIT_KEY,
    C.DISMISS: LeaveReason.MEETING_ENDED,
    C.MUTE: (True, "api"),
    C.HOLD: (True, "api"),
    C.GAIN: (6.0, -6.0),
    C.TALKING: True,
}
# The cells that reach the mixer: a call is joined, re-flagged or left only while in the mix.
_MIXER = {(W, C.ENTER), (W, C.MEETING_STARTED)} | {
    (IN, i) for i in (C.LEAVE, C.DISMISS, C.MUTE, C.HOLD, C.GAIN)
}
_CELLS = [(p, i) for p in Phase for i in CallInput]


def test_table_matches_the_rules_cell_by_cell() -> None:
    for phase, event in _CELLS:
        rule = PHASES[phase].get(event)
        expected = _NEXT.get((phase, event))
        if expected is None:
            assert rule is None, (phase, event)
        else:
            assert rule is not None and (rule.next or GONE) == expected, (phase, event)


def _meeting(phase: Phase) -> Meeting:
    """Call ``c`` in ``phase``, and ``o`` already in the mix of a started meeting."""
    m = open_meeting("100001", 1, resolve(None, None, None, None), 0.0).meeting
    other = Participant("o", Role.HOST, "+1", 0.0, IN)
    c = Participant("c", Role.PARTICIPANT, "+2", 1.0, phase, named=True)
    return replace(m, state=MeetingState.ACTIVE, started_at=0.0, participants={"o": other, "c": c})


@pytest.mark.parametrize(("phase", "event"), _CELLS, ids=[f"{p.name}-{i.name}" for p, i in _CELLS])
def test_phase_by_input(phase: Phase, event: CallInput) -> None:
    tx = Tx(_meeting(phase), 5.0)
    expected = _NEXT.get((phase, event))
    if expected is None:
        with pytest.raises(
            IllegalInputError, match=f"phase {phase.name} does not accept {event.name}"
        ):
            call_step(tx, "c", event, _CHANGE.get(event))
        return
    call_step(tx, "c", event, _CHANGE.get(event))
    after = tx.m.participants.get("c")
    assert (after.phase if after else GONE) == expected
    mixer = [a for a in tx.actions if isinstance(a, JoinMix | LeaveMix | SetFlags)]
    assert bool(mixer) is ((phase, event) in _MIXER), tx.actions
    assert tx.m.participants["o"].phase is IN  # the other call is untouched


def test_what_the_cells_tell_the_others_and_the_callbacks() -> None:
    def run(phase: Phase, event: CallInput) -> Tx:
        tx = Tx(_meeting(phase), 5.0)
        call_step(tx, "c", event, _CHANGE.get(event))
        return tx

    exit_tone = PlayToMeeting("100001", (), Tone.EXIT)
    assert exit_tone in run(IN, C.LEAVE).actions  # to the others still in the mix
    for phase, event in [(IN, C.DISMISS), (W, C.LEAVE), (N, C.LEAVE)]:
        assert not any(isinstance(a, PlayToMeeting) for a in run(phase, event).actions)
    for phase in Phase:
        left = run(phase, C.LEAVE).events
        assert [type(e) for e in left] == [CallLeft]
        assert [type(e) for e in run(phase, C.MUTE).events] == [CallMuted]
        assert [type(e) for e in run(phase, C.HOLD).events] == [CallHeld]
        talking = [type(e) for e in run(phase, C.TALKING).events]
        assert talking == ([TalkingChanged] if phase is IN else [])
    waiting = run(W, C.WAIT)
    assert waiting.actions == [
        PlayToCall("c", ("waiting_for_host",), True),
        StartMusicOnHold("c"),
    ]
    assert run(N, C.MEETING_STARTED).actions == []  # the recording goes on; it enters once named
    assert run(N, C.NAME_RECORDED).m.participants["c"].named


@pytest.mark.parametrize("phase", list(Phase))
def test_a_kept_mute_and_gain_apply_on_entering(phase: Phase) -> None:
    tx = Tx(_meeting(phase), 5.0)
    call_step(tx, "c", C.MUTE, (True, "api"))
    call_step(tx, "c", C.GAIN, (6.0, -6.0))
    if phase is N:
        call_step(tx, "c", C.NAME_RECORDED)
    if phase is not IN:
        call_step(tx, "c", C.ENTER)
    (entered,) = [a for a in tx.actions if isinstance(a, SetFlags)][-1:]
    assert entered.muted and (entered.gain_in_db, entered.gain_out_db) == (6.0, -6.0)


def test_a_listener_is_never_unmuted_in_any_phase() -> None:
    for phase in Phase:
        m = _meeting(phase)
        c = replace(m.participants["c"], role=Role.LISTENER, muted=True)
        tx = Tx(replace(m, participants={**m.participants, "c": c}), 5.0)
        with pytest.raises(NotAllowedError, match="listener"):
            call_step(tx, "c", C.MUTE, (False, "api"))
