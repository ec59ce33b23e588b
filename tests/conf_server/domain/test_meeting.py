"""Meeting rules from attributes, the state × command table, and purity of ``step``."""

from __future__ import annotations

import pytest

from conf_server.domain.attributes import Role, resolve
from conf_server.domain.meeting import (
    IllegalInputError,
    LeaveReason,
    Meeting,
    MeetingConfigError,
    MeetingRules,
    MeetingState,
    NotAllowedError,
    Participant,
    Phase,
    SetFlags,
    StartHow,
    StopHow,
    TimerKind,
    TimerRef,
    UnknownCallError,
    flags,
)
from conf_server.domain.meeting_commands import (
    End,
    Join,
    Leave,
    SetLock,
    SetMute,
    Start,
    TimerFired,
)
from conf_server.domain.meeting_flow import TRANSITIONS, open_meeting, step

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


@pytest.mark.parametrize("state", [MeetingState.WAITING, MeetingState.ACTIVE, MeetingState.ENDED])
@pytest.mark.parametrize("command", [Start(), SetLock(True), Join("x", Role.PARTICIPANT, "+2")])
def test_state_by_command_table(state: MeetingState, command: object) -> None:
    m = _meeting_in(state)
    accepted = type(command) in TRANSITIONS[state]
    assert accepted is not (state is MeetingState.ENDED or (
        isinstance(command, Start) and state is not MeetingState.WAITING))  # fmt: skip
    if not accepted:
        with pytest.raises(IllegalInputError, match=f"in state {state.name}"):
            step(m, command, 1.0)  # type: ignore[arg-type]


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
