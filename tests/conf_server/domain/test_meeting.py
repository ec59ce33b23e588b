"""Meeting rules from attributes, the state × input table, and purity of ``step``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf_server.domain.attributes import Role, resolve
from conf_server.domain.errors import (
    IllegalInputError,
    MeetingConfigError,
    NotAllowedError,
    UnknownCallError,
)
from conf_server.domain.ivr import CancelTimer
from conf_server.domain.meeting import (
    LeaveReason,
    Meeting,
    MeetingEnded,
    MeetingRules,
    MeetingStarted,
    MeetingState,
    Participant,
    Phase,
    SetFlags,
    StartHow,
    StopHow,
    TimerKind,
    TimerRef,
    flags,
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
from conf_server.domain.meeting_flow import (
    TRANSITIONS,
    MeetingInput,
    classify,
    open_meeting,
    step,
    transition,
)
from conf_server.domain.participant_flow import PHASES

DEFAULTS = resolve(None, None, None, None)


def rules(**values: object) -> MeetingRules:
    return MeetingRules.from_attributes(resolve(None, values, None, None))


def test_default_rules_golden() -> None:
    assert MeetingRules.from_attributes(DEFAULTS) == MeetingRules(
        start_how=StartHow.FIRST,
        start_wait=600.0,
        stop_how=StopHow.LAST,
        stop_wait=30.0,
        max_calls=1000,
        max_calls_per_role={},
        mute_policy=frozenset({Role.LISTENER}),
        hold_policy=frozenset(),
        announce_count=frozenset(Role),
        entry_tones=True,
        exit_tones=True,
        rollcall=False,
        rollcall_on_enter=True,
        rollcall_on_exit=True,
        call_max_duration=None,
        meeting_max_duration=None,
        language="EN",
    )


@pytest.mark.parametrize(
    ("values", "field", "expected"),
    [
        ({"conference_start_how": "MODERATOR"}, "start_how", StartHow.MODERATOR),
        ({"conference_stop_how": "moderator"}, "stop_how", StopHow.MODERATOR),
        ({"conference_maxcalls": -1}, "max_calls", None),
        ({"conference_maxcallsperrole": "2:-1:0"}, "max_calls_per_role",
         {Role.HOST: 2, Role.LISTENER: 0}),
        ({"conference_hold_policy": "pl"}, "hold_policy", {Role.PARTICIPANT, Role.LISTENER}),
        ({"call_announceparticipantcount": ""}, "announce_count", frozenset()),
        ({"conference_exittones": "off"}, "exit_tones", False),
        ({"call_maxduration": 0}, "call_max_duration", None),
        ({"conference_maxduration": 3600}, "meeting_max_duration", 3600.0),
        ({"conference_language": "pt-br"}, "language", "PT-BR"),
    ],
)  # fmt: skip
def test_rules_read_each_attribute(values: dict[str, object], field: str, expected: object) -> None:
    assert getattr(rules(**values), field) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("conference_start_how", "sometimes", "conference_start_how: 'sometimes' is not a known"),
        ("conference_maxcalls", "ten", "conference_maxcalls: expected a resolved integer"),
        ("conference_maxcallsperrole", "1:2", "conference_maxcallsperrole: expected h:p:l"),
        ("conference_entrytones", 1, "conference_entrytones: expected a resolved string"),
    ],
)
def test_rules_refuse_unresolved_values(name: str, value: object, message: str) -> None:
    with pytest.raises(MeetingConfigError, match=message):
        MeetingRules.from_attributes({**DEFAULTS, name: value})


def test_listener_flags_are_never_heard() -> None:
    p = Participant("l", Role.LISTENER, "+1", 0.0, Phase.IN, muted=False)
    assert flags(p) == SetFlags("l", True, False, False, True, 0.0, 0.0)


def test_timer_names_are_unique_per_room_instance_and_call() -> None:
    m = open_meeting("100001", 3, DEFAULTS, 0.0).meeting
    names = {
        m.timer_name(TimerRef(TimerKind.STOP_WAIT)),
        m.timer_name(TimerRef(TimerKind.CALL_END, "a")),
        m.timer_name(TimerRef(TimerKind.CALL_END, "b")),
        open_meeting("100001", 4, DEFAULTS, 0.0).meeting.timer_name(TimerRef(TimerKind.STOP_WAIT)),
    }
    assert len(names) == 4


def _meeting_in(state: MeetingState) -> Meeting:
    m = open_meeting("100001", 1, {**DEFAULTS, "conference_start_how": "explicit"}, 0.0).meeting
    m = step(m, Join("h", Role.HOST, "+1"), 0.0).meeting
    if state is MeetingState.ACTIVE:
        m = step(m, Start(), 0.0).meeting
    if state is MeetingState.ENDED:
        m = step(m, End(), 0.0).meeting
    assert m.state is state
    return m


# --- the state × input table -------------------------------------------------------------------

W, A, E, X = MeetingState.WAITING, MeetingState.ACTIVE, MeetingState.ENDING, MeetingState.ENDED
MI = MeetingInput
_CONTROLS = {
    MI.SET_MUTE, MI.MUTE_ALL, MI.SET_LOCK, MI.SET_HOLD, MI.HOLD_ALL, MI.SET_GAIN, MI.SET_ATTRIBUTE,
    MI.CYCLE_TONES, MI.ANNOUNCE_COUNT, MI.TALKING, MI.KEYPAD_WEBHOOK,
}  # fmt: skip
# Written out apart from the module's table: (state, input) → next state; absent: illegal.
_NEXT: dict[tuple[MeetingState, MeetingInput], MeetingState] = {
    **{(s, i): s for s in (W, A, E) for i in _CONTROLS | {MI.REFUSE, MI.ASK_NAME, MI.CALL_WARNING}},
    **{(s, i): X for s in (W, A, E) for i in (MI.LEAVE_LAST, MI.END)},
    **{(s, MI.LEAVE): s for s in (W, A, E)},
    (W, MI.ADMIT): W, (W, MI.ADMIT_STARTER): A,
    (W, MI.ADMIT_HOST): W, (W, MI.ADMIT_HOST_STARTER): A,
    (A, MI.ADMIT): A, (A, MI.ADMIT_STARTER): A,
    (A, MI.ADMIT_HOST): A, (A, MI.ADMIT_HOST_STARTER): A,
    (E, MI.ADMIT): E, (E, MI.ADMIT_STARTER): E,
    (E, MI.ADMIT_HOST): A, (E, MI.ADMIT_HOST_STARTER): A,
    (W, MI.START): A,
    (W, MI.LEAVE_LAST_HOST): W, (A, MI.LEAVE_LAST_HOST): E, (E, MI.LEAVE_LAST_HOST): E,
    (W, MI.START_TIMEOUT): X,
    (E, MI.STOP_TIMEOUT): X,
    (A, MI.MAX_DURATION): X, (E, MI.MAX_DURATION): X,
    (A, MI.MEETING_WARNING): A, (E, MI.MEETING_WARNING): E,
}  # fmt: skip
_CELLS = [(s, i) for s in MeetingState for i in MeetingInput]


def test_table_matches_the_rules_cell_by_cell() -> None:
    for state, event in _CELLS:
        cell = transition(state, event)
        assert (cell and cell.next) == _NEXT.get((state, event)), (state, event)
    assert TRANSITIONS[X] == {}  # an ended meeting accepts nothing


def _scene(state: MeetingState) -> Meeting:
    """Host h, participants p and q (explicit start, stop_how=moderator), in ``state``.

    ENDING: h left, p and q stay. ENDED: everyone gone."""
    attrs = {**DEFAULTS, "conference_start_how": "explicit", "conference_stop_how": "moderator"}
    m = open_meeting("100001", 1, attrs, 0.0).meeting
    for call, role in (("h", Role.HOST), ("p", Role.PARTICIPANT), ("q", Role.PARTICIPANT)):
        m = step(m, Join(call, role, "+1"), 0.0).meeting
    if state in (A, E):
        m = step(m, Start(), 1.0).meeting
    if state is E:
        m = step(m, Leave("h", LeaveReason.HANGUP), 2.0).meeting
    if state is X:
        m = step(m, End(), 2.0).meeting
    assert m.state is state
    return m


def _rules(m: Meeting, **values: object) -> Meeting:
    attributes = {**m.attributes, **values}
    return replace(m, attributes=attributes, rules=MeetingRules.from_attributes(attributes))


def _with(m: Meeting, *calls: tuple[str, Role]) -> Meeting:
    """Exactly ``calls`` present; ones the scene lacks are planted (an ended meeting has none)."""
    made = {
        c: m.participants.get(c) or Participant(c, r, "+1", 0.0, Phase.NAMING) for c, r in calls
    }
    return replace(m, participants=made)


def _armed(m: Meeting, kind: TimerKind, call: str | None = None) -> tuple[Meeting, TimerFired]:
    """``m`` with a timer of ``kind`` armed (planted where the flow never arms one)."""
    ref = TimerRef(kind, call)
    name = m.timer_name(ref)
    return replace(m, timers={**m.timers, name: ref}), TimerFired(name)


_Q, _H = ("q", Role.PARTICIPANT), ("h", Role.HOST)
_SCENES: dict[MeetingInput, Callable[[Meeting], tuple[Meeting, Command]]] = {
    MI.REFUSE: lambda m: (replace(m, locked=True), Join("x", Role.PARTICIPANT, "+9")),
    MI.ASK_NAME: lambda m: (_rules(m, conference_rollcall="on"), Join("x", Role.HOST, "+9")),
    MI.ADMIT: lambda m: (
        _rules(m, conference_start_how="moderator"), Join("x", Role.PARTICIPANT, "+9")),
    MI.ADMIT_STARTER: lambda m: (
        _rules(m, conference_start_how="first"), Join("x", Role.LISTENER, "+9")),
    MI.ADMIT_HOST: lambda m: (
        _rules(m, conference_start_how="explicit"), Join("x", Role.HOST, "+9")),
    MI.ADMIT_HOST_STARTER: lambda m: (
        _rules(m, conference_start_how="moderator"), Join("x", Role.HOST, "+9")),
    MI.START: lambda m: (m, Start()),
    MI.LEAVE: lambda m: (_with(m, ("p", Role.PARTICIPANT), _Q), Leave("q", LeaveReason.EXIT_KEY)),
    MI.LEAVE_LAST: lambda m: (_with(m, _Q), Leave("q", LeaveReason.HANGUP)),
    MI.LEAVE_LAST_HOST: lambda m: (_with(m, _H, _Q), Leave("h", LeaveReason.KICKED)),
    MI.END: lambda m: (m, End()),
    MI.START_TIMEOUT: lambda m: _armed(m, TimerKind.START_WAIT),
    MI.STOP_TIMEOUT: lambda m: _armed(m, TimerKind.STOP_WAIT),
    MI.MAX_DURATION: lambda m: _armed(m, TimerKind.MEETING_END),
    MI.MEETING_WARNING: lambda m: _armed(m, TimerKind.MEETING_WARN),
    MI.CALL_WARNING: lambda m: _armed(_with(m, _Q), TimerKind.CALL_WARN, "q"),
    MI.SET_MUTE: lambda m: (_with(m, _Q), SetMute("q", True)),
    MI.MUTE_ALL: lambda m: (m, MuteAll(True)),
    MI.SET_LOCK: lambda m: (m, SetLock(True)),
    MI.SET_HOLD: lambda m: (_with(m, _Q), SetHold("q", True)),
    MI.HOLD_ALL: lambda m: (m, HoldAll(True)),
    MI.SET_GAIN: lambda m: (_with(m, _Q), SetGain("q", 6.0, -6.0)),
    MI.SET_ATTRIBUTE: lambda m: (m, SetAttribute("conference_exittones", "off")),
    MI.CYCLE_TONES: lambda m: (_with(m, _Q), CycleTones("q")),
    MI.ANNOUNCE_COUNT: lambda m: (_with(m, _Q), AnnounceCount("q")),
    MI.TALKING: lambda m: (_with(m, _Q), Talking("q", True)),
    MI.KEYPAD_WEBHOOK: lambda m: (_with(m, _Q), KeypadWebhook("q", "raise_hand", "*9")),
}  # fmt: skip


def test_every_input_has_a_scene() -> None:
    assert set(_SCENES) == set(MeetingInput)


@pytest.mark.parametrize(("state", "event"), _CELLS, ids=[f"{s.name}-{i.name}" for s, i in _CELLS])
def test_state_by_input(state: MeetingState, event: MeetingInput) -> None:
    m, command = _SCENES[event](_scene(state))
    assert classify(m, command) is event
    expected = _NEXT.get((state, event))
    if expected is None:
        with pytest.raises(IllegalInputError, match=f"in state {state.name} .input {event.name}"):
            step(m, command, 10.0)
        return
    after = step(m, command, 10.0)
    assert after.meeting.state is expected
    assert m.state is state  # the input meeting is left as it was
    if expected is X:
        assert after.meeting.participants == {} and after.meeting.timers == {}
        assert isinstance(after.events[-1], MeetingEnded)
    started = [e for e in after.events if isinstance(e, MeetingStarted)]
    assert bool(started) is (state is W and expected is A)


@pytest.mark.parametrize(
    ("start_how", "role", "expected"),
    [
        ("first", Role.PARTICIPANT, MI.ADMIT_STARTER),
        ("first", Role.LISTENER, MI.ADMIT_STARTER),
        ("first", Role.HOST, MI.ADMIT_HOST_STARTER),
        ("moderator", Role.PARTICIPANT, MI.ADMIT),
        ("moderator", Role.HOST, MI.ADMIT_HOST_STARTER),
        ("explicit", Role.LISTENER, MI.ADMIT),
        ("explicit", Role.HOST, MI.ADMIT_HOST),
    ],
)
def test_admission_reads_the_start_rule_and_the_role(
    start_how: str, role: Role, expected: MeetingInput
) -> None:
    for state in (W, A, E):  # the same reading in every state: the table decides what it does
        m = _rules(_scene(state), conference_start_how=start_how)
        assert classify(m, Join("x", role, "+9")) is expected


def test_departure_reads_who_stays() -> None:
    m = _scene(A)
    assert classify(m, Leave("p", LeaveReason.HANGUP)) is MI.LEAVE
    assert classify(m, Leave("h", LeaveReason.HANGUP)) is MI.LEAVE_LAST_HOST
    last = _rules(m, conference_stop_how="last")
    assert classify(last, Leave("h", LeaveReason.HANGUP)) is MI.LEAVE
    assert classify(_with(m, _H), Leave("h", LeaveReason.HANGUP)) is MI.LEAVE_LAST
    ending, fired = _armed(m, TimerKind.CALL_END, "h")
    assert classify(ending, fired) is MI.LEAVE_LAST_HOST  # a call's time limit is a leave too


def test_a_host_back_in_time_makes_the_meeting_active_again() -> None:
    m = _scene(E)
    (stop_wait,) = m.timers
    back = step(m, Join("h2", Role.HOST, "+9"), 5.0)
    assert back.meeting.state is A
    assert CancelTimer(stop_wait) in back.actions
    assert back.meeting.participants["h2"].phase is Phase.IN


def test_step_leaves_its_input_unchanged() -> None:
    m = _meeting_in(MeetingState.ACTIVE)
    before = (dict(m.participants), m.seq, dict(m.timers), m.locked)
    after = step(m, SetLock(True), 1.0).meeting
    after = step(after, Join("p", Role.PARTICIPANT, "+2"), 2.0).meeting
    assert (dict(m.participants), m.seq, dict(m.timers), m.locked) == before
    # LockChanged, then CallRefused: the participant met the lock
    assert after.locked and after.seq == m.seq + 2
    assert set(after.participants) == {"h"}


def test_commands_for_unknown_calls_and_bad_timers() -> None:
    m = _meeting_in(MeetingState.ACTIVE)
    with pytest.raises(UnknownCallError, match="'nobody' is not in meeting 100001"):
        step(m, SetMute("nobody", True), 1.0)
    with pytest.raises(IllegalInputError, match="is not armed"):
        step(m, TimerFired("meeting:100001:1:meeting:stop_wait"), 1.0)
    with pytest.raises(IllegalInputError, match="already in meeting"):
        step(m, Join("h", Role.HOST, "+1"), 1.0)
    listener = step(m, Join("l", Role.LISTENER, "+3"), 1.0).meeting
    with pytest.raises(NotAllowedError, match="listener"):
        step(listener, SetMute("l", False), 2.0)
    ended = step(m, Leave("h", LeaveReason.HANGUP), 3.0).meeting
    assert ended.state is MeetingState.ENDED
    assert ended.participants == {}
    assert ended.timers == {}


# --- a random walk through commands -------------------------------------------------------------


def _paths(edges: set[tuple[Phase, Phase]]) -> set[tuple[Phase, Phase]]:
    """Every (from, to) joined by a path of ``edges``: one command may take several steps."""
    closed = set(edges)
    while grown := {(a, d) for a, b in closed for c, d in closed if b is c} - closed:
        closed |= grown
    return closed


_PHASE_PATHS = _paths(
    {(phase, r.next) for phase, row in PHASES.items() for r in row.values() if r.next is not None}
)
_CALLS = ("a", "b", "c", "d")


def _options(m: Meeting, call: str, flag: bool, n: int) -> list[Command]:
    role = list(Role)[n % 3]
    joins: list[Command] = [Join(call, role, "+1")] * 4
    leaves: list[Command] = [Leave(call, (LeaveReason.HANGUP, LeaveReason.KICKED)[n % 2])] * 2
    controls: list[Command] = [
        NameRecorded(call), NameRecorded(call), Start(), SetMute(call, flag), MuteAll(flag),
        SetHold(call, flag), HoldAll(flag), SetLock(flag), Talking(call, flag),
        AnnounceCount(call), SetGain(call, 1.0, -1.0),
    ]  # fmt: skip
    ends: list[Command] = [End()] if n % 7 == 0 else []
    return joins + leaves + controls + ends + [TimerFired(name) for name in sorted(m.timers)] * 2


def _check(before: Meeting, after: Meeting) -> None:
    for call, p in after.participants.items():
        old = before.participants.get(call)
        if old is not None and old.phase is not p.phase:
            assert (old.phase, p.phase) in _PHASE_PATHS, (call, old.phase, p.phase)
        assert p.music is (p.phase is Phase.WAITING or (p.phase is Phase.IN and p.held)), p
    phases = {p.phase for p in after.participants.values()}
    state = after.state
    if state is W:
        assert Phase.IN not in phases and after.started_at is None
    if state in (A, E):
        assert Phase.WAITING not in phases and after.started_at is not None
    if state is E:
        assert any(ref.kind is TimerKind.STOP_WAIT for ref in after.timers.values())
        assert all(p.phase is Phase.NAMING for p in after.participants.values() if p.role is H)
    if state is X:
        assert after.participants == {} and after.timers == {}


H = Role.HOST


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(("first", "moderator", "explicit")),
    st.sampled_from(("last", "moderator")),
    st.booleans(),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(_CALLS), st.booleans()),
        min_size=10,
        max_size=80,
    ),
)
def test_random_commands_move_only_along_the_tables(
    start_how: str, stop_how: str, rollcall: bool, ops: list[tuple[int, str, bool]]
) -> None:
    attrs = {**DEFAULTS, "conference_start_how": start_how, "conference_stop_how": stop_how,
             "conference_rollcall": "on" if rollcall else "off", "call_maxduration": 90,
             "conference_start_wait": 40, "conference_stop_wait": 20}  # fmt: skip
    m = open_meeting("100001", 1, attrs, 0.0).meeting
    now = 0.0
    for n, call, flag in ops:
        now += n % 13
        options = _options(m, call, flag, n)
        command = options[n % len(options)]
        try:
            event = classify(m, command)
        except (IllegalInputError, UnknownCallError):
            continue  # what the command names is not there (a call, an armed timer)
        cell = transition(m.state, event)
        if cell is None:
            with pytest.raises(IllegalInputError, match=f"in state {m.state.name}"):
                step(m, command, now)
            continue
        try:
            after = step(m, command, now).meeting
        except (IllegalInputError, NotAllowedError, UnknownCallError) as exc:
            # a control for a call that is not there, or the call's own machine refused it (a
            # name from a caller not recording one, unmuting a listener)
            assert not isinstance(exc, IllegalInputError) or "does not accept" in str(exc)
            continue
        assert after.state is cell.next
        _check(m, after)
        m = after if after.state is not X else open_meeting("100001", 2, attrs, now).meeting
