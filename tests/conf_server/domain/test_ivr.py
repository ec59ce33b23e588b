"""The IVR state machine, driven with explicit time: state × input table, dialogues, secrets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf_server.domain.attributes import Role
from conf_server.domain.errors import IllegalInputError, IvrConfigError, IvrError
from conf_server.domain.ivr import (
    FIRST_DIGIT_TIMER,
    INTER_DIGIT_TIMER,
    KEYS,
    Action,
    CallerHungUp,
    CallStarted,
    CancelTimer,
    CheckLockout,
    CodeLookedUp,
    DigitPressed,
    EarlyKey,
    Hangup,
    HangupReason,
    Input,
    IvrSettings,
    Join,
    LockoutStatus,
    LookupCode,
    LookupPin,
    PinChecked,
    PlayPrompt,
    PromptFinished,
    RecordFailure,
    Session,
    Stage,
    StartTimer,
    State,
    StopPrompt,
    TimerFired,
    step,
)
from conf_server.domain.lockout import Locked, Scope, SecurityEvent, SecurityKind
from conf_server.domain.speech import CATALOGUE, ONES, TENS

DID, CALLER, IP = "+12125550100", "+15551234567", "198.51.100.7"
ROOM = "100002"
_COLLECTING_STATES = {State.COLLECTING_CODE, State.COLLECTING_PIN}


class Phone:
    """A fake runtime: applies actions to its own view of timers and prompts, as the real one."""

    def __init__(self, ivr_settings: IvrSettings | None = None) -> None:
        self.session = Session()
        self.timers: dict[str, float] = {}
        self.playing = False
        self.log: list[Action] = []
        self.settings = ivr_settings or IvrSettings()

    def send(self, event: Input, now: float) -> list[Action]:
        self.session, actions = step(self.session, event, now)
        for action in actions:
            self._apply(action)
        self.log += actions
        # The machine's idea of the world matches the runtime's.
        assert set(self.timers) == ({self.session.timer} - {None})
        assert self.playing == self.session.prompt_playing
        return actions

    def _apply(self, action: Action) -> None:
        if isinstance(action, StartTimer):
            self.timers[action.name] = action.deadline
        elif isinstance(action, CancelTimer):
            assert action.name in self.timers, f"cancelling {action.name} which is not armed"
            del self.timers[action.name]
        elif isinstance(action, PlayPrompt):
            self.playing = True
        elif isinstance(action, StopPrompt):
            assert self.playing
            self.playing = False

    def start(self, now: float = 0.0, locked: Locked | None = None) -> list[Action]:
        self.send(CallStarted(DID, CALLER, IP, self.settings), now)
        return self.send(LockoutStatus(locked), now)

    def finish_prompt(self, now: float) -> list[Action]:
        assert self.playing
        self.playing = False
        return self.send(PromptFinished(), now)

    def fire(self, now: float) -> list[Action]:
        ((name, deadline),) = self.timers.items()
        assert deadline <= now, f"{name} is due at {deadline}, not {now}"
        del self.timers[name]
        return self.send(TimerFired(name), now)

    def keys(self, keys: str, now: float, gap: float = 0.5) -> list[Action]:
        out: list[Action] = []
        for i, key in enumerate(keys):
            out += self.send(DigitPressed(key), now + i * gap)
        return out


# --- the state × input table ---------------------------------------------------------------------


def _session_in(label: str) -> Session:
    """Drive a fresh call into the situation ``label`` names, through legal inputs only."""
    phone = Phone()
    room_with_pins = CodeLookedUp(ROOM, Role.HOST, has_pins=True)
    builders: dict[str, list[tuple[Input | str, float]]] = {
        "idle": [],
        "checking_lockout": [(CallStarted(DID, CALLER, IP), 0.0)],
        "code_prompt_playing": [("start", 0.0)],
        "code_waiting": [("start", 0.0), (PromptFinished(), 4.0)],
        "looking_up_code": [("start", 0.0), ("1234#", 1.0)],
        "pin_prompt_playing": [("start", 0.0), ("4444#", 1.0), (room_with_pins, 4.0)],
        "checking_pin": [("start", 0.0), ("4444#", 1.0), (room_with_pins, 4.0), ("2468#", 5.0)],
        "farewell": [
            (CallStarted(DID, CALLER, IP), 0.0),
            (LockoutStatus(Locked(Scope.IP, 9.0)), 0.0),
        ],
        "joined": [("start", 0.0), ("1111#", 1.0), (CodeLookedUp("100001", Role.HOST), 4.0)],
        "ended": [("start", 0.0), (CallerHungUp(), 1.0)],
    }
    for what, now in builders[label]:
        if what == "start":
            phone.start(now)
        elif isinstance(what, str):
            phone.keys(what, now)
        elif isinstance(what, PromptFinished):
            phone.finish_prompt(now)
        else:
            phone.send(what, now)
    return phone.session


_INPUTS: dict[str, Input] = {
    "CallStarted": CallStarted(DID, CALLER, IP),
    "LockoutStatus": LockoutStatus(None),
    "DigitPressed": DigitPressed("5"),
    "TimerFired": TimerFired(FIRST_DIGIT_TIMER),
    "PromptFinished": PromptFinished(),
    "CodeLookedUp": CodeLookedUp(None),
    "PinChecked": PinChecked(ok=False),
    "CallerHungUp": CallerHungUp(),
}

_WAITING = {"DigitPressed", "CallerHungUp"}  # accepted everywhere: the runtime never asks first
_LEGAL: dict[str, tuple[State, set[str]]] = {
    "idle": (State.IDLE, {"CallStarted"} | _WAITING),
    "checking_lockout": (State.CHECKING_LOCKOUT, {"LockoutStatus"} | _WAITING),
    "code_prompt_playing": (State.COLLECTING_CODE, {"PromptFinished"} | _WAITING),
    "code_waiting": (State.COLLECTING_CODE, {"TimerFired"} | _WAITING),
    "looking_up_code": (State.LOOKING_UP_CODE, {"CodeLookedUp"} | _WAITING),
    "pin_prompt_playing": (State.COLLECTING_PIN, {"PromptFinished"} | _WAITING),
    "checking_pin": (State.CHECKING_PIN, {"PinChecked"} | _WAITING),
    "farewell": (State.FAREWELL, {"PromptFinished"} | _WAITING),
    "joined": (State.JOINED, _WAITING),
    "ended": (State.ENDED, _WAITING),
}


def test_table_covers_every_state() -> None:
    assert {state for state, _ in _LEGAL.values()} == set(State)


@pytest.mark.parametrize("label", sorted(_LEGAL))
def test_keys_and_hang_up_are_accepted_in_every_state(label: str) -> None:
    """The runtime hands every key and the hang-up over without asking the IVR's state."""
    session = _session_in(label)
    for key in KEYS:
        after, actions = step(session, DigitPressed(key), 30.0)
        if session.state in _COLLECTING_STATES:
            continue  # collected: the dialogues below
        assert after == session  # dropped: nothing changes
        assert actions == ([EarlyKey()] if session.state is State.IDLE else [])
    ended, actions = step(session, CallerHungUp(), 30.0)
    assert ended.state is State.ENDED and ended.digits == "" and ended.timer is None
    assert {type(a) for a in actions} <= {CancelTimer, StopPrompt}


@pytest.mark.parametrize("label", sorted(_LEGAL))
@pytest.mark.parametrize("input_name", sorted(_INPUTS))
def test_state_by_input(label: str, input_name: str) -> None:
    session = _session_in(label)
    expected_state, legal = _LEGAL[label]
    assert session.state is expected_state
    if input_name in legal:
        new, actions = step(session, _INPUTS[input_name], 30.0)
        assert isinstance(new, Session)
        assert all(dataclasses.is_dataclass(a) for a in actions)
    else:
        with pytest.raises(IllegalInputError, match=input_name):
            step(session, _INPUTS[input_name], 30.0)


# --- dialogues -----------------------------------------------------------------------------------


def test_call_start_checks_the_lockout_then_greets() -> None:
    phone = Phone()
    assert phone.send(CallStarted(DID, CALLER, IP), 0.0) == [CheckLockout(IP, CALLER, DID)]
    assert phone.send(LockoutStatus(None), 0.1) == [
        PlayPrompt(("welcome", "enter_access_code"), barge_in=True)
    ]


def test_dnis_welcome_prompt_replaces_the_default_greeting() -> None:
    phone = Phone(IvrSettings(welcome_prompt="acme_greeting"))
    assert phone.start() == [PlayPrompt(("acme_greeting", "enter_access_code"), barge_in=True)]


def test_locked_out_caller_hears_refusal_and_is_hung_up() -> None:
    phone = Phone()
    actions = phone.start(0.0, locked=Locked(Scope.CALLER, 900.0))
    assert actions == [PlayPrompt(("access_refused", "goodbye"), barge_in=False)]
    assert phone.keys("1111#", 1.0) == []  # no barge-in over a refusal
    assert phone.finish_prompt(5.0) == [Hangup(HangupReason.LOCKED_OUT)]
    assert phone.session.state is State.ENDED


def test_happy_path_without_pin() -> None:
    phone = Phone()
    phone.start(0.0)
    # The first-digit timer runs from the end of the prompt, not its start.
    assert phone.finish_prompt(6.0) == [StartTimer(FIRST_DIGIT_TIMER, 16.0)]
    assert phone.send(DigitPressed("2"), 8.0) == [
        CancelTimer(FIRST_DIGIT_TIMER),
        StartTimer(INTER_DIGIT_TIMER, 13.0),
    ]
    assert phone.send(DigitPressed("2"), 9.0) == [StartTimer(INTER_DIGIT_TIMER, 14.0)]
    phone.keys("22", 10.0)
    assert phone.send(DigitPressed("#"), 12.0) == [
        CancelTimer(INTER_DIGIT_TIMER),
        LookupCode("2222"),
    ]
    assert phone.send(CodeLookedUp("100001", Role.PARTICIPANT), 12.1) == [
        Join("100001", Role.PARTICIPANT)
    ]
    assert phone.session.state is State.JOINED
    assert phone.session.keys_pressed == 4
    assert phone.timers == {}


def test_digits_barge_in_over_the_greeting() -> None:
    phone = Phone()
    phone.start(0.0)
    assert phone.send(DigitPressed("1"), 1.5) == [StopPrompt(), StartTimer(INTER_DIGIT_TIMER, 6.5)]
    phone.keys("111#", 2.0)
    assert phone.log[-1] == LookupCode("1111")


def test_star_clears_the_digits_entered_so_far() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.keys("98", 1.0)
    assert phone.send(DigitPressed("*"), 2.0) == [
        CancelTimer(INTER_DIGIT_TIMER),
        StartTimer(FIRST_DIGIT_TIMER, 12.0),
    ]
    phone.keys("3333#", 3.0)
    assert phone.log[-1] == LookupCode("3333")


def test_keys_a_to_d_are_not_part_of_a_code() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.finish_prompt(5.0)
    assert phone.keys("ABCD", 6.0) == []
    phone.keys("12A34#", 7.0)
    assert phone.log[-1] == LookupCode("1234")


def test_inter_digit_timeout_submits_what_was_entered() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.finish_prompt(5.0)
    phone.keys("555", 6.0)  # last key at 7.0
    assert phone.timers == {INTER_DIGIT_TIMER: 12.0}
    assert phone.fire(12.0) == [LookupCode("555")]


def test_maximum_code_length_ends_entry() -> None:
    phone = Phone(IvrSettings(max_code_length=6))
    phone.start(0.0)
    actions = phone.keys("123456", 1.0)
    assert actions[-2:] == [CancelTimer(INTER_DIGIT_TIMER), LookupCode("123456")]
    assert phone.keys("78#", 5.0) == []  # discarded while the lookup runs
    assert phone.session.state is State.LOOKING_UP_CODE


def test_default_maximum_code_length_is_twenty() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.keys("1" * 19, 1.0, gap=0.1)
    assert phone.session.state is State.COLLECTING_CODE
    assert phone.send(DigitPressed("1"), 3.0)[-1] == LookupCode("1" * 20)


def _wrong_code(phone: Phone, now: float, code: str = "9999") -> list[Action]:
    phone.keys(code + "#", now)
    return phone.send(CodeLookedUp(None), now + 3)


def test_wrong_code_plays_error_and_asks_again() -> None:
    phone = Phone()
    phone.start(0.0)
    assert _wrong_code(phone, 1.0) == [
        RecordFailure(Stage.CODE),
        PlayPrompt(("invalid_code", "enter_access_code"), barge_in=True),
    ]
    assert phone.session.state is State.COLLECTING_CODE
    phone.keys("1111#", 4.5)  # barge in over the error prompt
    assert phone.log[-1] == LookupCode("1111")


def test_three_wrong_codes_say_goodbye_and_hang_up() -> None:
    phone = Phone()
    phone.start(0.0)
    _wrong_code(phone, 1.0)
    _wrong_code(phone, 10.0)
    assert _wrong_code(phone, 20.0) == [
        RecordFailure(Stage.CODE),
        SecurityEvent(
            SecurityKind.ATTEMPTS_EXHAUSTED,
            ((Scope.IP, IP), (Scope.CALLER, CALLER), (Scope.DID, DID)),
        ),
        PlayPrompt(("invalid_code", "too_many_attempts", "goodbye"), barge_in=False),
    ]
    assert phone.keys("1111#", 24.0) == []
    assert phone.finish_prompt(30.0) == [Hangup(HangupReason.TOO_MANY_ATTEMPTS)]
    assert phone.log.count(RecordFailure(Stage.CODE)) == 3


def test_call_operator_after_sets_the_limit_and_minus_one_is_unlimited() -> None:
    phone = Phone(IvrSettings.from_attributes({"call_operator_after": "-1"}))
    phone.start(0.0)
    for i in range(25):
        _wrong_code(phone, 10.0 * i)
    assert phone.session.state is State.COLLECTING_CODE
    for limit in (0, 1):  # 0 leaves no attempt to spare: the first wrong code ends the call
        one = Phone(IvrSettings.from_attributes({"call_operator_after": limit}))
        one.start(0.0)
        assert isinstance(_wrong_code(one, 1.0)[-1], PlayPrompt)
        assert one.session.state is State.FAREWELL


def test_no_input_replays_the_prompt_then_hangs_up() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.finish_prompt(5.0)
    assert phone.fire(15.0) == [PlayPrompt(("enter_access_code",), barge_in=True)]
    phone.finish_prompt(18.0)
    assert phone.send(DigitPressed("#"), 19.0) == [  # '#' alone is no input too
        CancelTimer(FIRST_DIGIT_TIMER),
        PlayPrompt(("enter_access_code",), barge_in=True),
    ]
    phone.finish_prompt(22.0)
    assert phone.fire(32.0) == [PlayPrompt(("goodbye",), barge_in=False)]
    assert phone.finish_prompt(33.0) == [Hangup(HangupReason.NO_INPUT)]
    assert RecordFailure(Stage.CODE) not in phone.log  # silence is not a guess


def _to_pin(phone: Phone, role: Role = Role.PARTICIPANT) -> list[Action]:
    phone.start(0.0)
    phone.keys("5555#", 1.0)
    return phone.send(CodeLookedUp(ROOM, role, has_pins=True), 4.0)


def test_room_with_pins_asks_for_the_pin() -> None:
    phone = Phone()
    assert _to_pin(phone) == [PlayPrompt(("enter_pin",), barge_in=True)]
    phone.finish_prompt(6.0)
    phone.keys("1357#", 7.0)
    assert phone.log[-1] == LookupPin(ROOM, "1357")
    assert phone.send(PinChecked(ok=True), 10.0) == [Join(ROOM, Role.PARTICIPANT)]


@pytest.mark.parametrize("code_role", list(Role))
def test_organizer_pin_joins_as_host(code_role: Role) -> None:
    phone = Phone()
    _to_pin(phone, code_role)
    phone.keys("2468#", 5.0)
    assert phone.send(PinChecked(ok=True, organizer=True), 8.0) == [Join(ROOM, Role.HOST)]
    assert phone.session.role is Role.HOST


def test_pin_follows_the_same_rules_with_its_own_counts() -> None:
    phone = Phone()
    phone.start(0.0)
    _wrong_code(phone, 1.0)
    _wrong_code(phone, 10.0)
    phone.keys("5555#", 20.0)
    phone.send(CodeLookedUp(ROOM, Role.PARTICIPANT, has_pins=True), 23.0)
    phone.keys("12*", 24.0)  # '*' clears in PIN entry too
    phone.keys("0000#", 26.0)
    assert phone.log[-1] == LookupPin(ROOM, "0000")
    assert phone.send(PinChecked(ok=False), 30.0) == [
        RecordFailure(Stage.PIN),
        PlayPrompt(("invalid_pin", "enter_pin"), barge_in=True),
    ]
    phone.keys("0001#", 31.0)
    phone.send(PinChecked(ok=False), 34.0)
    phone.keys("0002#", 35.0)
    actions = phone.send(PinChecked(ok=False), 38.0)
    assert actions[-1] == PlayPrompt(("invalid_pin", "too_many_attempts", "goodbye"), False)
    assert phone.finish_prompt(42.0) == [Hangup(HangupReason.TOO_MANY_ATTEMPTS)]


def test_pin_timeouts() -> None:
    phone = Phone()
    _to_pin(phone)
    phone.finish_prompt(6.0)
    phone.keys("24", 7.0)
    assert phone.fire(12.5) == [LookupPin(ROOM, "24")]


def test_caller_hanging_up_cancels_the_timer_and_prompt() -> None:
    phone = Phone()
    phone.start(0.0)
    assert phone.send(CallerHungUp(), 1.0) == [StopPrompt()]
    phone = Phone()
    phone.start(0.0)
    phone.keys("12", 1.0)
    assert phone.send(CallerHungUp(), 2.0) == [CancelTimer(INTER_DIGIT_TIMER)]
    assert phone.session.state is State.ENDED
    assert phone.session.digits == ""


def test_stale_or_unknown_timer_is_an_error() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.finish_prompt(5.0)
    with pytest.raises(
        IllegalInputError,
        match=r"TimerFired\('ivr.inter_digit'\) but the armed timer is 'ivr.first_digit'",
    ):
        phone.send(TimerFired(INTER_DIGIT_TIMER), 6.0)


def test_prompt_finished_without_a_prompt_is_an_error() -> None:
    phone = Phone()
    phone.start(0.0)
    phone.finish_prompt(5.0)
    with pytest.raises(IllegalInputError, match="no prompt playing"):
        step(phone.session, PromptFinished(), 6.0)


# --- secrets -------------------------------------------------------------------------------------

_NUMBER_WORDS = set(ONES) | set(TENS) | {"hundred", "thousand", "million", "star", "pound"}
_digits = st.text(alphabet="0123456789", min_size=4, max_size=12)


def _strings_in(action: Action) -> Iterable[str]:
    for f in dataclasses.fields(action):
        value = getattr(action, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            yield str(item)


@settings(max_examples=60, deadline=None)
@given(code=_digits, pin=_digits, noise=st.text(alphabet="0123456789*", max_size=6))
def test_code_and_pin_appear_only_in_lookups(code: str, pin: str, noise: str) -> None:
    room = "room-b"  # no digits, so that a digit string found in the output must be a leak
    phone = Phone()
    phone.start(0.0)
    phone.keys(noise + "*" + code + "#", 1.0)
    phone.send(CodeLookedUp(None), 20.0)
    phone.keys(code + "#", 21.0)
    phone.send(CodeLookedUp(room, Role.LISTENER, has_pins=True), 30.0)
    assert code not in repr(phone.session)
    phone.keys(pin + "#", 31.0)
    assert pin not in repr(phone.session)
    phone.send(PinChecked(ok=True), 40.0)
    assert phone.log.count(LookupCode(code)) == 2
    assert LookupPin(room, pin) in phone.log
    for action in phone.log:
        assert code not in repr(action) and pin not in repr(action)
        if isinstance(action, LookupCode | LookupPin):
            continue
        for text in _strings_in(action):
            assert code not in text and pin not in text
        if isinstance(action, PlayPrompt):
            # Nothing is ever read back: no number or key words during the IVR.
            assert not set(action.names) & _NUMBER_WORDS
            assert set(action.names) <= CATALOGUE.keys()


# --- a random walk through legal inputs ---------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60))
def test_random_walk_keeps_timers_and_prompts_consistent(choices: list[int]) -> None:
    phone = Phone(IvrSettings(max_code_length=5))
    phone.send(CallStarted(DID, CALLER, IP), 0.0)
    now = 0.0
    for choice in choices:
        now += 0.7
        state = phone.session.state
        options: list[Input] = [DigitPressed(k) for k in "0123#*A"]
        if state is State.CHECKING_LOCKOUT:
            options.append(LockoutStatus(Locked(Scope.IP, 1.0) if choice % 9 == 0 else None))
        if state is State.LOOKING_UP_CODE:
            options += [CodeLookedUp(None), CodeLookedUp(ROOM, Role.LISTENER, bool(choice % 2))]
        if state is State.CHECKING_PIN:
            options += [PinChecked(False), PinChecked(True, bool(choice % 2))]
        if phone.playing:
            options.append(PromptFinished())
        if phone.timers:
            ((name, deadline),) = phone.timers.items()
            options.append(TimerFired(name))
        if state in (State.JOINED, State.ENDED):
            break
        event = options[choice % len(options)]
        if isinstance(event, TimerFired):
            now = max(now, deadline)
            del phone.timers[event.name]
        if isinstance(event, PromptFinished):
            phone.playing = False
        phone.send(event, now)
    if phone.session.state is State.JOINED:
        assert isinstance(phone.log[-1], Join)
    if phone.session.state is State.ENDED:
        assert isinstance(phone.log[-1], Hangup)
    assert phone.session.failures <= 3


# --- settings and input validation ---------------------------------------------------------------


def test_settings_from_attributes() -> None:
    got = IvrSettings.from_attributes(
        {
            "dnis_welcomeprompt": "acme_greeting",
            "call_operator_after": "5",
            "ivr_first_digit_timeout": 12,
            "ivr_inter_digit_timeout": "4",
            "ivr_max_code_length": 16,
        }
    )
    assert got == IvrSettings("acme_greeting", 12.0, 4.0, 5, 3, 16)
    assert IvrSettings.from_attributes({}) == IvrSettings()
    assert IvrSettings.from_attributes({"dnis_welcomeprompt": ""}).welcome_prompt == "welcome"


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"call_operator_after": -2}, "call_operator_after: must be at least -1, got -2"),
        ({"call_operator_after": "three"}, "call_operator_after: expected an integer, got 'three'"),
        ({"ivr_first_digit_timeout": True}, "ivr_first_digit_timeout: expected an integer"),
        ({"ivr_inter_digit_timeout": 0}, "ivr_inter_digit_timeout: must be at least 1, got 0"),
        ({"dnis_welcomeprompt": 7}, "dnis_welcomeprompt: expected a string, got 7"),
    ],
)
def test_settings_errors_name_the_attribute(attrs: dict[str, object], message: str) -> None:
    with pytest.raises(IvrConfigError, match=message):
        IvrSettings.from_attributes(attrs)


def test_settings_validate_ranges() -> None:
    with pytest.raises(IvrConfigError, match="max_failures: must be at least 1, got 0"):
        IvrSettings(max_failures=0)
    with pytest.raises(IvrConfigError, match="timeouts must be positive"):
        IvrSettings(first_digit_timeout=0.0)


def test_input_validation() -> None:
    with pytest.raises(IvrError, match="key must be one of"):
        DigitPressed("x")
    with pytest.raises(IvrError, match="key must be one of"):
        DigitPressed("12")
    with pytest.raises(IvrError, match="a room needs a role"):
        CodeLookedUp(ROOM)
    assert "7" not in repr(DigitPressed("7"))
