"""The keypad collector: sequences, restarts, timeouts, features and help items."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.domain.attributes import Role, keypad_bindings, resolve
from conf_server.domain.errors import KeypadError
from conf_server.domain.keypad import (
    KEYS,
    OPERATIONS,
    Bindings,
    Collector,
    Matched,
    Operation,
    Outcome,
    Pending,
    Unmatched,
    allowed,
    expire,
    help_items,
    operation,
    press,
)

DEFAULTS = keypad_bindings(resolve(None, None, None, None))
H, P, L = Role.HOST, Role.PARTICIPANT, Role.LISTENER


def feed(keys: str, bindings: Bindings = DEFAULTS, now: float = 0.0) -> list[Outcome]:
    collector, seen = Collector(), list[Outcome]()
    for key in keys:
        collector, outcome = press(collector, key, bindings, now)
        seen.append(outcome)
    return seen


@pytest.mark.parametrize(
    ("keys", "feature"),
    [
        ("*6", "call_mute"),
        ("*#", "call_participantsnumber"),
        ("**", "call_instructions"),
        ("*9", "call_exit"),
        ("*5", "conference_mute"),
        ("*7", "conference_lock"),
        ("*8", "conference_hold"),
        ("*4", "conference_entryexittones"),
        ("*2", "recording"),
    ],
)
def test_default_sequences_match_their_feature(keys: str, feature: str) -> None:
    first, last = feed(keys)
    assert first == Pending(3.0)
    assert last == Matched(feature, keys)


@pytest.mark.parametrize(
    ("keys", "last"),
    [
        ("5", Unmatched("5")),  # a digit outside a sequence is talk, not a command
        ("#", Unmatched("#")),
        ("*3", Unmatched("*3")),  # Q&A has no roles by default, so no binding
        ("*A", Unmatched("*A")),
        ("5*6", Matched("call_mute", "*6")),
        ("*3*6", Matched("call_mute", "*6")),  # astray, then a fresh "*" starts over
    ],
)
def test_keys_outside_bindings(keys: str, last: object) -> None:
    assert feed(keys)[-1] == last


def test_star_star_is_help_not_a_restart() -> None:
    assert feed("**6")[1:] == [Matched("call_instructions", "**"), Unmatched("6")]


def test_restart_when_star_star_is_unbound() -> None:
    bindings = {k: v for k, v in DEFAULTS.items() if k != "call_instructions"}
    outcomes = feed("**6", bindings)
    assert outcomes == [Pending(3.0), Pending(3.0), Matched("call_mute", "*6")]


def test_longer_sequences_wait_for_every_key() -> None:
    bindings: Bindings = {"polling": ("*12", frozenset({P}))}
    assert feed("*12", bindings) == [Pending(3.0), Pending(3.0), Matched("polling", "*12")]


def test_deadline_moves_with_each_key_and_expire_resets() -> None:
    collector, first = press(Collector(), "*", DEFAULTS, 10.0, timeout=2.0)
    assert first == Pending(12.0)
    assert collector == Collector("*", 12.0)
    with pytest.raises(KeypadError, match="nothing expires"):
        expire(collector, 11.0)
    assert expire(collector, 12.0) == Collector()
    with pytest.raises(KeypadError, match="nothing expires"):
        expire(Collector(), 12.0)


def test_after_expiry_the_partial_sequence_is_forgotten() -> None:
    collector, _ = press(Collector(), "*", DEFAULTS, 0.0)
    collector = expire(collector, 3.0)
    _, outcome = press(collector, "6", DEFAULTS, 3.5)
    assert outcome == Unmatched("6")


@pytest.mark.parametrize("key", ["", "**", "E", "x", "1 "])
def test_bad_key_is_an_error(key: str) -> None:
    with pytest.raises(KeypadError, match="is not one of"):
        press(Collector(), key, DEFAULTS, 0.0)


def test_operations_cover_the_help_features_and_the_rest_are_webhooks() -> None:
    assert {op.value for op in OPERATIONS.values()} == {
        "self_mute", "participant_count", "help", "exit", "mute_all", "lock", "hold", "tones",
    }  # fmt: skip
    assert operation("polling") is Operation.WEBHOOK
    assert operation("recording") is Operation.WEBHOOK


# role × feature with the default attributes
PERMISSIONS = {
    "call_mute": {H, P},
    "call_participantsnumber": {H, P, L},
    "call_instructions": {H, P, L},
    "call_exit": {H, P, L},
    "conference_mute": {H},
    "conference_lock": {H},
    "conference_hold": {H},
    "conference_entryexittones": {H},
    "recording": {H},
}


@pytest.mark.parametrize("feature", sorted(PERMISSIONS))
@pytest.mark.parametrize("role", list(Role))
def test_default_permissions(feature: str, role: Role) -> None:
    assert allowed(DEFAULTS, feature, role) is (role in PERMISSIONS[feature])


def test_help_items_follow_role_and_menu_order() -> None:
    assert help_items(DEFAULTS, L) == [
        ("participant_count", "*#"),
        ("help", "**"),
        ("exit", "*9"),
    ]
    assert [name for name, _ in help_items(DEFAULTS, H)] == [
        "self_mute", "participant_count", "help", "exit", "mute_all", "lock", "hold", "tones",
    ]  # fmt: skip


def test_help_leaves_out_keys_it_cannot_say() -> None:
    bindings: Bindings = {"call_mute": ("*A", frozenset({P})), "call_exit": ("*9", frozenset({P}))}
    assert help_items(bindings, P) == [("exit", "*9")]


@given(st.text(alphabet=KEYS, max_size=30))
def test_every_match_is_a_bound_sequence_and_state_stays_a_prefix(keys: str) -> None:
    sequences = {seq: feature for feature, (seq, _) in DEFAULTS.items()}
    collector = Collector()
    for key in keys:
        collector, outcome = press(collector, key, DEFAULTS, 0.0)
        if isinstance(outcome, Matched):
            assert sequences[outcome.keys] == outcome.feature
            assert collector == Collector()
        elif isinstance(outcome, Pending):
            assert any(seq.startswith(collector.keys) for seq in sequences)
            assert collector.keys not in sequences
        else:
            assert collector == Collector()
