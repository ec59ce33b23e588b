"""The meeting service through a fake runtime, with explicit time: rules, keypad, API operations."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf_server.domain.attributes import Role, resolve
from conf_server.domain.errors import (
    IllegalInputError,
    InvalidValueError,
    MeetingError,
    NotAllowedError,
    UnknownCallError,
    UnknownMeetingError,
)
from conf_server.domain.ivr import CancelTimer, StartTimer
from conf_server.domain.meeting import (
    OPERATOR,
    Action,
    CallHeld,
    CallJoined,
    CallLeft,
    CallMuted,
    CallRefused,
    EndReason,
    Event,
    Hangup,
    JoinMix,
    KeypadSequence,
    LanguageFallback,
    LeaveMix,
    LeaveReason,
    LockChanged,
    MeetingEnded,
    MeetingStarted,
    PlayToCall,
    PlayToMeeting,
    RecordName,
    SetFlags,
    StartMusicOnHold,
    StopMusicOnHold,
    TalkingChanged,
    Tone,
)
from conf_server.domain.service import MeetingService, Outcome
from conf_server.domain.speech import tone_state
from media.mixer import MAX_GAIN_DB, MIN_GAIN_DB, gain_db_to_q

ROOM = "100001"
H, P, L = Role.HOST, Role.PARTICIPANT, Role.LISTENER


class Bridge:
    """A fake runtime: executes the service's actions on its own model of mix, music and timers."""

    def __init__(self, **attributes: object) -> None:
        # Every attribute may be set on a DID group, keypad bindings included.
        self.attributes = resolve(None, attributes, None, None)
        self.svc = MeetingService()
        self.now = 0.0
        self.timers: dict[str, float] = {}
        self.mix: dict[str, str] = {}
        self.flags: dict[str, SetFlags] = {}
        self.music: set[str] = set()
        self.hung_up: dict[str, LeaveReason] = {}
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self._execute: Mapping[type, Callable[[Action], None]] = {
            JoinMix: self._join_mix,
            LeaveMix: self._leave_mix,
            SetFlags: self._set_flags,
            StartMusicOnHold: self._start_music,
            StopMusicOnHold: self._stop_music,
            StartTimer: self._start_timer,
            CancelTimer: self._cancel_timer,
            Hangup: self._hang_up,
        }

    # executing actions
    def _join_mix(self, a: Action) -> None:
        assert isinstance(a, JoinMix)
        assert a.call not in self.mix, f"{a.call} joined twice"
        self.mix[a.call] = a.meeting

    def _leave_mix(self, a: Action) -> None:
        assert isinstance(a, LeaveMix)
        del self.mix[a.call]
        self.flags.pop(a.call, None)

    def _set_flags(self, a: Action) -> None:
        assert isinstance(a, SetFlags)
        assert a.call in self.mix, f"flags for {a.call} outside the mix"
        self.flags[a.call] = a

    def _start_music(self, a: Action) -> None:
        assert isinstance(a, StartMusicOnHold)
        assert a.call not in self.music
        self.music.add(a.call)

    def _stop_music(self, a: Action) -> None:
        assert isinstance(a, StopMusicOnHold)
        self.music.remove(a.call)

    def _start_timer(self, a: Action) -> None:
        assert isinstance(a, StartTimer)
        self.timers[a.name] = a.deadline

    def _cancel_timer(self, a: Action) -> None:
        assert isinstance(a, CancelTimer)
        del self.timers[a.name]

    def _hang_up(self, a: Action) -> None:
        assert isinstance(a, Hangup)
        assert a.call not in self.mix and a.call not in self.music
        self.hung_up[a.call] = a.reason

    def apply(self, out: Outcome) -> Outcome:
        for action in out.actions:
            handler = self._execute.get(type(action))
            if handler is not None:
                handler(action)
        self.actions += out.actions
        self.events += out.events
        return out

    def flag(self, call: str) -> SetFlags:
        return self.flags[call]

    # driving
    def at(self, t: float) -> Bridge:
        """Advance to ``t``, firing due timers in deadline order."""
        while True:
            due = sorted((d, n) for n, d in self.timers.items() if d <= t)
            if not due:
                break
            deadline, name = due[0]
            del self.timers[name]
            self.now = deadline
            self.apply(self.svc.timer_fired(name, deadline))
        self.now = t
        return self

    def join(self, call: str, role: Role, room: str = ROOM) -> Outcome:
        out = self.svc.join(
            call, room, role, f"+1555{call}", attributes=self.attributes, now=self.now
        )
        return self.apply(out)

    def keys(self, call: str, keys: str) -> Outcome:
        out = Outcome()
        for key in keys:
            out += self.apply(self.svc.digit(call, key, self.now))
        return out

    def do(self, make: Callable[[MeetingService], Outcome]) -> Outcome:
        return self.apply(make(self.svc))


def played(out: Outcome, call: str) -> list[tuple[str, ...]]:
    return [a.prompts for a in out.actions if isinstance(a, PlayToCall) and a.call == call]


def to_meeting(out: Outcome) -> list[PlayToMeeting]:
    return [a for a in out.actions if isinstance(a, PlayToMeeting)]


def kinds(out: Outcome) -> list[type]:
    return [type(e) for e in out.events]


# --- start rules ---------------------------------------------------------------------------------


def test_start_first_counts_and_entry_tones() -> None:
    b = Bridge()
    first = b.join("a", P)
    assert kinds(first) == [CallJoined, MeetingStarted]
    assert played(first, "a") == [("first_participant",)]
    second = b.join("b", P)
    assert played(second, "b") == [("there_are", "two", "participants")]
    assert to_meeting(second) == [PlayToMeeting(ROOM, tone=Tone.ENTRY, exclude="b")]
    assert b.mix == {"a": ROOM, "b": ROOM}


def test_start_moderator_waits_with_music_then_host_starts_for_everyone() -> None:
    b = Bridge(conference_start_how="moderator", conference_start_wait=300)
    for call in ("p1", "p2"):
        out = b.join(call, P)
        assert played(out, call) == [("waiting_for_host",)]
        assert kinds(out) == [CallJoined]
    assert b.music == {"p1", "p2"}
    assert b.mix == {}
    assert list(b.timers.values()) == [300.0]
    b.at(20.0)
    out = b.join("h", H)
    assert kinds(out) == [CallJoined, MeetingStarted]
    assert b.music == set()
    assert set(b.mix) == {"p1", "p2", "h"}
    assert not any(f.held for f in b.flags.values())
    assert b.timers == {}  # the start wait is cancelled
    assert played(out, "p1") == [("first_participant",)]
    assert played(out, "h") == [("there_are", "three", "participants")]


def test_start_wait_expires_and_everyone_waiting_is_hung_up() -> None:
    b = Bridge(conference_start_how="moderator", conference_start_wait=60)
    b.join("p1", P)
    b.at(30.0).join("p2", P)
    b.at(60.0)
    assert b.hung_up == {"p1": LeaveReason.START_TIMEOUT, "p2": LeaveReason.START_TIMEOUT}
    ended = [e for e in b.events if isinstance(e, MeetingEnded)]
    assert ended == [MeetingEnded(room=ROOM, instance=1, seq=5, at=60.0,
                                  reason=EndReason.START_TIMEOUT, duration=60.0)]  # fmt: skip
    assert b.music == set()
    assert b.svc.meetings() == {}


def test_start_explicit_waits_even_for_hosts_until_started() -> None:
    b = Bridge(conference_start_how="explicit")
    b.join("h", H)
    b.join("p", P)
    assert b.mix == {}
    out = b.at(5.0).do(lambda s: s.start(ROOM, 5.0))
    assert MeetingStarted in kinds(out)
    assert set(b.mix) == {"h", "p"}
    with pytest.raises(IllegalInputError, match="Start is not accepted"):
        b.svc.start(ROOM, 6.0)


# --- stop rules ----------------------------------------------------------------------------------


def test_stop_moderator_announces_waits_and_hangs_up_the_rest() -> None:
    b = Bridge(conference_stop_how="moderator", conference_stop_wait=30)
    b.join("h", H)
    b.join("p", P)
    b.join("l", L)
    out = b.at(100.0).do(lambda s: s.leave("h", 100.0))
    assert PlayToMeeting(ROOM, ("host_left_ending",)) in to_meeting(out)
    assert list(b.timers.values()) == [130.0]
    b.at(129.0)
    assert b.hung_up == {}
    b.at(130.0)
    assert b.hung_up == {"p": LeaveReason.MEETING_ENDED, "l": LeaveReason.MEETING_ENDED}
    assert played(Outcome(tuple(b.actions)), "p")[-1] == ("conference_ended", "goodbye")
    ended = b.events[-1]
    assert isinstance(ended, MeetingEnded)
    assert ended.reason is EndReason.HOST_LEFT
    assert b.mix == {}


def test_host_back_within_the_stop_wait_keeps_the_meeting() -> None:
    b = Bridge(conference_stop_how="moderator", conference_stop_wait=30)
    b.join("h", H)
    b.join("p", P)
    b.at(10.0).do(lambda s: s.leave("h", 10.0))
    b.at(20.0).join("h2", H)
    assert b.timers == {}
    b.at(100.0)
    assert b.hung_up == {}
    assert set(b.mix) == {"p", "h2"}


def test_stop_moderator_with_another_host_left_goes_on() -> None:
    b = Bridge(conference_stop_how="moderator")
    for call, role in (("h1", H), ("h2", H), ("p", P)):
        b.join(call, role)
    out = b.do(lambda s: s.leave("h1", 0.0))
    assert to_meeting(out) == [PlayToMeeting(ROOM, tone=Tone.EXIT)]
    assert b.timers == {}


def test_stop_last_host_leaving_changes_nothing_until_the_last_caller() -> None:
    b = Bridge()
    b.join("h", H)
    b.join("p", P)
    b.do(lambda s: s.leave("h", 0.0))
    assert b.svc.meeting(ROOM).participants.keys() == {"p"}
    out = b.at(50.0).do(lambda s: s.leave("p", 50.0))
    assert kinds(out) == [CallLeft, MeetingEnded]
    assert to_meeting(out) == []  # nobody left to hear an exit tone


# --- gates: lock and full ------------------------------------------------------------------------


def test_lock_refuses_all_but_hosts_and_unlock_reopens() -> None:
    b = Bridge()
    b.join("h", H)
    out = b.keys("h", "*7")
    assert played(out, "h") == [("conference_now_locked",)]
    assert next(e for e in out.events if isinstance(e, LockChanged)).by == "h"
    refused = b.join("p", P)
    assert played(refused, "p") == [("conference_locked", "goodbye")]
    assert b.hung_up == {"p": LeaveReason.LOCKED}
    assert kinds(refused) == [CallRefused]
    assert not b.svc.has_call("p")
    b.join("h2", H)
    assert "h2" in b.mix
    unlocked = b.do(lambda s: s.lock(ROOM, False, 1.0))
    assert [(e.locked, e.by) for e in unlocked.events if isinstance(e, LockChanged)] == [
        (False, OPERATOR)
    ]
    b.join("p2", P)
    assert "p2" in b.mix


@pytest.mark.parametrize(
    ("attributes", "joins", "refused"),
    [
        ({"conference_maxcalls": 2}, [H, P, P], [2]),
        ({"conference_maxcalls": 2}, [L, L, H], [2]),
        ({"conference_maxcalls": -1}, [P] * 5, []),
        ({"conference_maxcallsperrole": "1:-1:-1"}, [H, P, H, P], [2]),
        ({"conference_maxcallsperrole": "-1:1:0"}, [P, P, L, H], [1, 2]),
    ],
)
def test_full(attributes: dict[str, object], joins: list[Role], refused: list[int]) -> None:
    b = Bridge(**attributes)
    for i, role in enumerate(joins):
        out = b.join(f"c{i}", role)
        if i in refused:
            assert played(out, f"c{i}") == [("conference_full", "goodbye")]
    assert sorted(b.hung_up) == [f"c{i}" for i in refused]
    assert set(b.hung_up.values()) <= {LeaveReason.FULL}


def test_a_freed_place_can_be_taken() -> None:
    b = Bridge(conference_maxcalls=2)
    b.join("a", P)
    b.join("b", P)
    b.join("c", H)
    assert b.hung_up == {"c": LeaveReason.FULL}
    b.do(lambda s: s.leave("a", 0.0))
    b.join("d", P)
    assert set(b.mix) == {"b", "d"}


# --- join policies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "muted"),
    [("", {L}), ("l", {L}), ("p", {P, L}), ("hp", {H, P, L}), ("hpl", {H, P, L})],
)
def test_mute_policy_and_listeners_never_heard(policy: str, muted: set[Role]) -> None:
    b = Bridge(conference_mute_policy=policy)
    for role in (H, P, L):
        b.join(role.letter, role)
    assert {Role.HOST if c == "h" else Role.PARTICIPANT if c == "p" else Role.LISTENER
            for c, f in b.flags.items() if f.muted} == muted  # fmt: skip
    assert [c for c, f in b.flags.items() if f.listener] == ["l"]


def test_hold_policy_holds_at_start_and_the_host_resumes() -> None:
    b = Bridge(conference_hold_policy="pl", conference_start_how="moderator")
    b.join("p", P)
    b.join("l", L)
    b.join("h", H)
    assert b.music == {"p", "l"}
    assert {c for c, f in b.flags.items() if f.held} == {"p", "l"}
    out = b.keys("h", "*8")
    assert played(out, "h") == [("conference_resumed",)]
    assert b.music == set()
    assert not any(f.held for f in b.flags.values())
    assert sorted((e.call, e.held) for e in out.events if isinstance(e, CallHeld)) == [
        ("l", False), ("p", False),
    ]  # fmt: skip
    b.keys("h", "*8")
    assert b.music == {"p", "l"}
    b.join("p2", P)  # joins a meeting on hold: held too
    assert b.flag("p2").held
    assert "p2" in b.music
    assert not b.flag("h").held


@pytest.mark.parametrize(
    ("announce", "role", "hears_count"),
    [("hpl", P, True), ("h", P, False), ("h", H, True), ("", H, False), ("l", L, True)],
)
def test_announce_count_per_role(announce: str, role: Role, hears_count: bool) -> None:
    b = Bridge(call_announceparticipantcount=announce)
    b.join("first", H)
    out = b.join("x", role)
    assert (played(out, "x") == [("there_are", "two", "participants")]) is hears_count


@pytest.mark.parametrize(
    ("entry", "exit_", "join_tone", "leave_tone"),
    [("on", "on", True, True), ("on", "off", True, False), ("off", "on", False, True)],
)
def test_entry_and_exit_tones(entry: str, exit_: str, join_tone: bool, leave_tone: bool) -> None:
    b = Bridge(conference_entrytones=entry, conference_exittones=exit_)
    b.join("a", P)
    joined = b.join("b", P)
    left = b.do(lambda s: s.leave("b", 1.0))
    assert (to_meeting(joined) == [PlayToMeeting(ROOM, tone=Tone.ENTRY, exclude="b")]) is join_tone
    assert (to_meeting(left) == [PlayToMeeting(ROOM, tone=Tone.EXIT)]) is leave_tone


def test_exit_tones_turned_off_live_apply_at_the_next_leave() -> None:
    b = Bridge()
    for call in "abc":
        b.join(call, P)
    assert to_meeting(b.do(lambda s: s.leave("a", 1.0))) != []
    b.do(lambda s: s.set_attribute(ROOM, "conference_exittones", "off", 2.0))
    assert to_meeting(b.do(lambda s: s.leave("b", 3.0))) == []


def test_tone_cycling_key() -> None:
    b = Bridge()
    b.join("h", H)
    heard = [played(b.keys("h", "*4"), "h")[0] for _ in range(5)]
    assert heard == [
        tone_state(True, False),
        tone_state(False, True),
        tone_state(False, False),
        tone_state(True, True),
        tone_state(True, False),
    ]
    joined = b.join("p", P)  # ON:OFF: entry tone on
    assert to_meeting(joined) == [PlayToMeeting(ROOM, tone=Tone.ENTRY, exclude="p")]
    assert to_meeting(b.do(lambda s: s.leave("p", 0.0))) == []


# --- roll call -----------------------------------------------------------------------------------


def test_rollcall_records_then_enters_and_names_play_in_order() -> None:
    b = Bridge(conference_rollcall="on")
    out = b.join("a", P)
    assert played(out, "a") == [("recorded_name_prompt",)]
    assert [x for x in out.actions if isinstance(x, RecordName)] == [RecordName("a", "rollcall/a")]
    assert b.mix == {}
    assert b.svc.digit("a", "*", 0.0) == Outcome()  # keys belong to the recorder meanwhile
    b.do(lambda s: s.name_recorded("a", 1.0))
    assert "a" in b.mix
    b.join("b", P)
    entered = b.do(lambda s: s.name_recorded("b", 2.0))
    assert to_meeting(entered) == [
        PlayToMeeting(ROOM, tone=Tone.ENTRY, exclude="b"),
        PlayToMeeting(ROOM, ("rollcall/b", "has_joined"), exclude="b"),
    ]
    left = b.do(lambda s: s.leave("b", 3.0))
    assert to_meeting(left) == [
        PlayToMeeting(ROOM, tone=Tone.EXIT),
        PlayToMeeting(ROOM, ("rollcall/b", "has_left")),
    ]
    with pytest.raises(IllegalInputError, match="phase IN does not accept NAME_RECORDED"):
        b.svc.name_recorded("a", 4.0)


@pytest.mark.parametrize(("onenter", "onexit"), [("off", "on"), ("on", "off"), ("off", "off")])
def test_rollcall_enter_and_exit_switches(onenter: str, onexit: str) -> None:
    b = Bridge(conference_rollcall="on", conference_rollcall_onenter=onenter,
               conference_rollcall_onexit=onexit, conference_entrytones="off",
               conference_exittones="off")  # fmt: skip
    for call in "ab":
        b.join(call, P)
        b.apply(b.svc.name_recorded(call, 0.0))
    left = b.do(lambda s: s.leave("b", 1.0))
    entered = [a for a in b.actions if isinstance(a, PlayToMeeting) and "has_joined" in a.prompts]
    assert bool(entered) is (onenter == "on")
    assert bool(to_meeting(left)) is (onexit == "on")


# --- durations and language ----------------------------------------------------------------------


def test_call_max_duration_warns_a_minute_before_then_hangs_up() -> None:
    b = Bridge(call_maxduration=120)
    b.join("a", P)
    b.at(10.0).join("b", P)
    b.at(60.0)
    assert played(Outcome(tuple(b.actions)), "a")[-1] == ("call_ending_in_one_minute",)
    b.at(120.0)
    assert b.hung_up == {"a": LeaveReason.CALL_MAX_DURATION}
    b.at(130.0)
    assert b.hung_up == {"a": LeaveReason.CALL_MAX_DURATION, "b": LeaveReason.CALL_MAX_DURATION}
    left = [e for e in b.events if isinstance(e, CallLeft)]
    assert [(e.call, e.duration) for e in left] == [("a", 120.0), ("b", 120.0)]


def test_a_short_limit_has_no_one_minute_warning() -> None:
    b = Bridge(call_maxduration=45)
    b.join("a", P)
    assert list(b.timers.values()) == [45.0]


def test_meeting_max_duration_warns_everyone_then_ends() -> None:
    b = Bridge(conference_maxduration=600, conference_start_how="moderator")
    b.join("p", P)
    b.at(100.0).join("h", H)  # the limit counts from the start
    b.at(639.0)
    assert PlayToMeeting(ROOM, ("ending_in_one_minute",)) not in b.actions
    b.at(640.0)
    assert PlayToMeeting(ROOM, ("ending_in_one_minute",)) in b.actions
    b.at(700.0)
    assert set(b.hung_up) == {"p", "h"}
    ended = b.events[-1]
    assert isinstance(ended, MeetingEnded)
    assert (ended.reason, ended.duration) == (EndReason.MAX_DURATION, 600.0)


def test_language_other_than_english_falls_back_and_says_so() -> None:
    b = Bridge(conference_language="FR")
    out = b.join("a", P)
    assert out.actions[0] == LanguageFallback(ROOM, "FR", "EN")
    assert {a.language for a in out.actions if isinstance(a, PlayToCall)} == {"EN"}
    assert Bridge().join("a", P).actions[0] == JoinMix("a", ROOM)


# --- the keypad ----------------------------------------------------------------------------------

KEYPAD_FEATURES = {
    # keys: (roles allowed by default, the change an allowed press makes)
    "*6": {H, P},
    "*#": {H, P, L},
    "**": {H, P, L},
    "*9": {H, P, L},
    "*5": {H},
    "*7": {H},
    "*8": {H},
    "*4": {H},
    "*2": {H},
}


@pytest.mark.parametrize("keys", sorted(KEYPAD_FEATURES))
@pytest.mark.parametrize("role", list(Role))
def test_role_by_keypad_operation(keys: str, role: Role) -> None:
    b = Bridge()
    b.join("other", P)
    b.join("me", role)
    before = b.svc.meeting(ROOM)
    out = b.keys("me", keys)
    refused = played(out, "me") == [("not_allowed",)]
    assert refused is (role not in KEYPAD_FEATURES[keys])
    if refused:  # nothing changed
        assert out.events == ()
        assert b.svc.meeting(ROOM) == before
    else:
        assert out.events or played(out, "me")


def test_self_mute_toggles_with_prompts_and_events() -> None:
    b = Bridge()
    b.join("p", P)
    muted = b.keys("p", "*6")
    assert played(muted, "p") == [("you_are_muted",)]
    assert b.flag("p").muted
    unmuted = b.keys("p", "*6")
    assert played(unmuted, "p") == [("you_are_unmuted",)]
    assert not b.flag("p").muted
    assert [(e.muted, e.by) for e in b.events if isinstance(e, CallMuted)] == [
        (True, "p"), (False, "p"),
    ]  # fmt: skip


def test_listener_allowed_to_self_mute_still_cannot_be_heard() -> None:
    b = Bridge(call_mute_dtmf="hpl")
    b.join("l", L)
    out = b.keys("l", "*6")
    assert played(out, "l") == [("not_allowed",)]
    assert b.flag("l").muted and b.flag("l").listener
    with pytest.raises(NotAllowedError, match="listener"):
        b.svc.mute("l", False, 0.0)


def test_mute_all_covers_participants_and_listeners_not_hosts() -> None:
    b = Bridge()
    for call, role in (("h", H), ("p", P), ("l", L)):
        b.join(call, role)
    out = b.keys("h", "*5")
    assert played(out, "h")[-1] == ("conference_muted",)
    assert {c for c, f in b.flags.items() if f.muted} == {"p", "l"}
    assert [e.call for e in out.events if isinstance(e, CallMuted)] == ["p"]  # l already was
    b.join("p2", P)
    assert b.flag("p2").muted  # joins a muted meeting muted
    out = b.keys("h", "*5")
    assert played(out, "h")[-1] == ("conference_unmuted",)
    assert {c for c, f in b.flags.items() if f.muted} == {"l"}


def test_participant_count_help_exit_and_webhook() -> None:
    b = Bridge()
    b.join("h", H)
    b.join("p", P)
    assert played(b.keys("p", "*#"), "p") == [("there_are", "two", "participants")]
    help_ = played(b.keys("p", "**"), "p")[0]
    assert help_[:2] == ("help_intro", "help_self_mute")
    assert "help_lock" not in help_
    hook = b.keys("h", "*2")
    assert [(e.call, e.feature, e.keys) for e in hook.events if isinstance(e, KeypadSequence)] == [
        ("h", "recording", "*2")
    ]
    out = b.keys("p", "*9")
    assert b.hung_up == {"p": LeaveReason.EXIT_KEY}
    assert played(out, "p") == [("goodbye",)]
    assert not b.svc.has_call("p")
    assert played(b.keys("h", "*#"), "h") == [("you_are_the_only_participant",)]


def test_a_raise_hand_sequence_configured_for_participants() -> None:
    b = Bridge(conference_qa_dtmf="p")
    b.join("p", P)
    out = b.keys("p", "*3")
    assert [(e.feature, e.keys) for e in out.events if isinstance(e, KeypadSequence)] == [
        ("conference_qa", "*3")
    ]


def test_keypad_timeout_drops_a_partial_sequence() -> None:
    b = Bridge()
    b.join("p", P)
    b.keys("p", "*")
    assert list(b.timers.values()) == [3.0]
    b.at(3.0)
    assert b.timers == {}
    assert b.keys("p", "6").actions == ()  # "6" alone is no command
    assert not b.svc.participant("p").muted


def test_leaving_mid_sequence_cancels_the_keypad_timer() -> None:
    b = Bridge()
    b.join("a", P)
    b.join("b", P)
    b.keys("a", "*")
    b.do(lambda s: s.leave("a", 1.0))
    assert b.timers == {}


# --- API operations go through the same path ----------------------------------------------------


def test_api_mute_raises_the_same_event_as_the_keypad() -> None:
    b = Bridge()
    b.join("p", P)
    by_key = b.keys("p", "*6")
    b.keys("p", "*6")
    by_api = b.do(lambda s: s.mute("p", True, 0.0))
    strip = [(type(e), e.call, e.muted) for o in (by_key, by_api) for e in o.events
             if isinstance(e, CallMuted)]  # fmt: skip
    assert strip[0] == strip[1]
    assert [e.by for e in by_api.events if isinstance(e, CallMuted)] == [OPERATOR]
    assert b.do(lambda s: s.mute("p", True, 0.0)).events == ()  # already muted: no event


def test_api_kick_and_kick_all() -> None:
    b = Bridge()
    for call in "abc":
        b.join(call, P)
    kicked = b.do(lambda s: s.kick("a", 1.0))
    assert b.hung_up == {"a": LeaveReason.KICKED}
    assert played(kicked, "a") == []
    b.do(lambda s: s.end(ROOM, 2.0))
    assert set(b.hung_up) == {"a", "b", "c"}
    ended = b.events[-1]
    assert isinstance(ended, MeetingEnded)
    assert ended.reason is EndReason.ENDED_BY_OPERATOR
    with pytest.raises(UnknownMeetingError):
        b.svc.end(ROOM, 3.0)


def test_api_hold_one_call_and_gain() -> None:
    b = Bridge()
    b.join("h", H)
    b.join("p", P)
    held = b.do(lambda s: s.hold("h", True, 1.0))
    assert b.flag("h").held and "h" in b.music
    assert [(e.call, e.held, e.by) for e in held.events if isinstance(e, CallHeld)] == [
        ("h", True, OPERATOR)
    ]
    b.do(lambda s: s.hold("h", False, 2.0))
    assert not b.flag("h").held and "h" not in b.music
    b.do(lambda s: s.set_gain("p", -6.0, 3.0, 3.0))
    assert (b.flag("p").gain_in_db, b.flag("p").gain_out_db) == (-6.0, 3.0)
    for bad in (30.0, float("nan"), float("inf")):
        with pytest.raises(InvalidValueError, match="gain"):
            b.svc.set_gain("p", bad, 0.0, 4.0)


@pytest.mark.parametrize(
    "bad", [MAX_GAIN_DB + 0.5, MIN_GAIN_DB - 0.5, np.nextafter(MAX_GAIN_DB, np.inf), 24.0]
)
def test_gain_beyond_the_mixers_limits_is_refused(bad: float) -> None:
    b = Bridge()
    b.join("p", P)
    with pytest.raises(InvalidValueError, match=r"outside \[-20, 20\] dB"):
        b.svc.set_gain("p", bad, 0.0, 1.0)
    with pytest.raises(InvalidValueError, match="outside"):
        b.svc.set_gain("p", 0.0, bad, 1.0)
    with pytest.raises(InvalidValueError, match="outside"):
        MeetingService.check_gain(bad, 0.0)
    assert (b.svc.participant("p").gain_in_db, b.svc.participant("p").gain_out_db) == (0.0, 0.0)


def test_gain_at_the_mixers_limits_reaches_the_mixer_unchanged() -> None:
    b = Bridge()
    b.join("h", H)
    b.join("p", P)
    out = b.do(lambda s: s.set_gain("p", MAX_GAIN_DB, MIN_GAIN_DB, 1.0))
    (flags,) = [a for a in out.actions if isinstance(a, SetFlags)]
    assert (flags.gain_in_db, flags.gain_out_db) == (MAX_GAIN_DB, MIN_GAIN_DB)
    gain_db_to_q([flags.gain_in_db, flags.gain_out_db])  # the mixer takes them as they are


def test_unmuting_a_listener_is_refused_before_anything_changes() -> None:
    b = Bridge()
    b.join("h", H)
    b.join("l", L)
    with pytest.raises(NotAllowedError, match="a listener is never heard and cannot be unmuted"):
        b.svc.check_mute("l", False)
    with pytest.raises(NotAllowedError, match="a listener is never heard and cannot be unmuted"):
        b.svc.mute("l", False, 1.0)
    b.svc.check_mute("l", True)
    b.svc.check_mute("h", False)
    with pytest.raises(UnknownCallError):
        b.svc.check_mute("nobody", False)


def test_set_attribute_validates_like_a_room() -> None:
    b = Bridge(conference_qa_dtmf_binding="*61")  # harmless while Q&A has no roles
    b.join("h", H)
    with pytest.raises(InvalidValueError, match="conference_exittones"):
        b.svc.set_attribute(ROOM, "conference_exittones", "maybe", 1.0)
    with pytest.raises(InvalidValueError, match="collide"):
        b.svc.set_attribute(ROOM, "conference_qa_dtmf", "p", 1.0)
    with pytest.raises(InvalidValueError, match="cannot be set on a meeting room"):
        b.svc.set_attribute(ROOM, "call_mute_dtmf_binding", "*1", 1.0)
    assert b.svc.meeting(ROOM).attributes["conference_qa_dtmf"] == ""
    b.do(lambda s: s.set_attribute(ROOM, "conference_mute_policy", "p", 1.0))
    b.join("p", P)
    assert b.flag("p").muted


def test_talking_passes_through_for_callers_heard_only() -> None:
    b = Bridge()
    b.join("p", P)
    b.join("l", L)
    out = b.do(lambda s: s.talking("p", True, 1.0))
    assert [(e.call, e.talking) for e in out.events if isinstance(e, TalkingChanged)] == [
        ("p", True)
    ]
    assert b.do(lambda s: s.talking("l", True, 1.0)).events == ()


# --- events and errors ---------------------------------------------------------------------------


def test_event_sequence_numbers_per_meeting_instance() -> None:
    b = Bridge()
    b.join("a", P)
    b.join("b", P)
    b.keys("a", "*6")
    b.do(lambda s: s.leave("a", 1.0))
    b.do(lambda s: s.leave("b", 2.0))
    b.join("c", P)
    first = [e.seq for e in b.events if e.instance == 1]
    assert first == list(range(1, len(first) + 1))
    assert [(e.instance, e.seq) for e in b.events if e.instance == 2] == [(2, 1), (2, 2)]


def test_errors_name_what_is_wrong() -> None:
    b = Bridge()
    b.join("a", P)
    with pytest.raises(MeetingError, match="already in meeting"):
        b.join("a", P)
    with pytest.raises(UnknownCallError, match="'zz'"):
        b.svc.mute("zz", True, 0.0)
    with pytest.raises(UnknownMeetingError, match="'999'"):
        b.svc.lock("999", True, 0.0)
    with pytest.raises(MeetingError, match="not armed"):
        b.svc.timer_fired("meeting:100001:1:meeting:stop_wait", 0.0)
    with pytest.raises(UnknownCallError, match="keypad timer"):
        b.svc.timer_fired("keypad:zz", 0.0)
    with pytest.raises(IllegalInputError, match="decided by the meeting"):
        b.svc.leave("a", 0.0, LeaveReason.FULL)


# --- properties ----------------------------------------------------------------------------------

ROOMS = ("r1", "r2")
CALLS = tuple(f"c{i}" for i in range(6))
Op = tuple[str, str, int, float]
operations = st.tuples(
    st.sampled_from(("join", "leave", "key", "mute", "hold", "lock", "kick", "end", "wait")),
    st.sampled_from(CALLS),
    st.integers(0, 30),
    st.floats(0.0, 40.0),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(operations, max_size=40),
    st.sampled_from(("first", "moderator")),
    st.sampled_from(("last", "moderator")),
)
def test_random_operations_keep_the_invariants(ops: list[Op], start: str, stop: str) -> None:
    b = Bridge(conference_start_how=start, conference_stop_how=stop, conference_stop_wait=20,
               conference_start_wait=90, conference_maxcalls=4, call_maxduration=100)  # fmt: skip
    joins: dict[str, int] = dict.fromkeys(ROOMS, 0)
    leaves: dict[str, int] = dict.fromkeys(ROOMS, 0)
    for name, call, n, dt in ops:
        b.at(b.now + dt)
        room, role = ROOMS[n % 2], list(Role)[n % 3]
        present = b.svc.has_call(call)
        if name == "join" and not present:
            b.join(call, role, room)
        elif name == "key" and present:
            b.keys(call, "*" + "6#9578424"[n % 9])
        elif name in ("leave", "kick", "mute", "hold") and present:
            b.do(_CALL_OPS[name](call, n % 2 == 0, b.now))
        elif name in ("lock", "end") and room in b.svc.meetings():
            b.do(_ROOM_OPS[name](room, n % 2 == 0, b.now))
        _check(b)
    for e in b.events:
        if isinstance(e, CallJoined):
            joins[e.room] += 1
        elif isinstance(e, CallLeft):
            leaves[e.room] += 1
    for room in ROOMS:
        live = b.svc.meetings().get(room)
        assert joins[room] - leaves[room] == (len(live.participants) if live else 0)


_CALL_OPS: dict[str, Callable[[str, bool, float], Callable[[MeetingService], Outcome]]] = {
    "leave": lambda c, f, t: lambda s: s.leave(c, t),
    "kick": lambda c, f, t: lambda s: s.kick(c, t),
    "mute": lambda c, f, t: (
        lambda s: Outcome() if s.participant(c).role is Role.LISTENER else s.mute(c, f, t)
    ),
    "hold": lambda c, f, t: lambda s: s.hold(c, f, t),
}
_ROOM_OPS: dict[str, Callable[[str, bool, float], Callable[[MeetingService], Outcome]]] = {
    "lock": lambda r, f, t: lambda s: s.lock(r, f, t),
    "end": lambda r, f, t: lambda s: s.end(r, t),
}


def _check(b: Bridge) -> None:
    """Nobody in two meetings, no listener heard, the fake runtime agrees with the service."""
    seen: set[str] = set()
    for room, meeting in b.svc.meetings().items():
        calls = set(meeting.participants)
        assert not calls & seen
        seen |= calls
        for call, p in meeting.participants.items():
            assert b.svc.room_of(call) == room
            assert (b.mix.get(call) == room) is (p.phase.value == "in")
    assert set(b.mix) <= seen
    assert set(b.music) <= seen
    for call, f in b.flags.items():
        if b.svc.participant(call).role is Role.LISTENER:
            assert f.listener and f.muted
        assert f.listener is (b.svc.participant(call).role is Role.LISTENER)
    seqs: dict[tuple[str, int], int] = {}
    for e in b.events:
        key = (e.room, e.instance)
        assert e.seq == seqs.get(key, 0) + 1
        seqs[key] = e.seq
