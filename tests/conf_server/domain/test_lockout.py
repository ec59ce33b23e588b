"""Guessing protection driven through its API with repeated failing "calls" and explicit time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf_server.domain.errors import LockoutConfigError
from conf_server.domain.lockout import (
    Locked,
    Lockout,
    LockoutPolicy,
    Scope,
    SecurityEvent,
    SecurityKind,
)

DID = "+12125550100"
ATTACKER_IP = "203.0.113.9"
ATTACKER = "+15550001111"


def _fail_calls(
    lockout: Lockout, count: int, *, ip: str, caller: str, start: float, every: float = 5.0
) -> tuple[list[SecurityEvent], float]:
    """``count`` calls that each pass the check and enter one wrong code; returns events, time."""
    events: list[SecurityEvent] = []
    now = start
    for _ in range(count):
        assert lockout.check(ip, caller, DID, now) is None
        events += lockout.record_failure(ip, caller, DID, now)
        now += every
    return events, now


def test_ten_failures_lock_ip_and_caller_for_the_cooling_off() -> None:
    lockout = Lockout()
    events, now = _fail_calls(lockout, 9, ip=ATTACKER_IP, caller=ATTACKER, start=100.0)
    assert events == []
    events = lockout.record_failure(ATTACKER_IP, ATTACKER, DID, now)
    assert events == [
        SecurityEvent(SecurityKind.LOCKOUT_STARTED, ((Scope.IP, ATTACKER_IP),), now + 900.0),
        SecurityEvent(SecurityKind.LOCKOUT_STARTED, ((Scope.CALLER, ATTACKER),), now + 900.0),
    ]
    assert lockout.check(ATTACKER_IP, ATTACKER, DID, now + 1) == Locked(Scope.IP, now + 900.0)
    # The same number from another address is still refused, as is another number from the IP.
    assert lockout.check("198.51.100.1", ATTACKER, DID, now + 1) == Locked(
        Scope.CALLER, now + 900.0
    )
    assert lockout.check(ATTACKER_IP, "+15559999999", DID, now + 1) == Locked(Scope.IP, now + 900.0)
    # Other callers on the same DID are not affected.
    assert lockout.check("198.51.100.1", "+15557777777", DID, now + 1) is None
    # The cooling-off ends.
    assert lockout.check(ATTACKER_IP, ATTACKER, DID, now + 899.9) is not None
    assert lockout.check(ATTACKER_IP, ATTACKER, DID, now + 900.0) is None


def test_failures_spread_wider_than_the_window_never_lock() -> None:
    lockout = Lockout()
    # 30 failures, one every 67 s: ten of them span 603 s, never within 600 s.
    events, _ = _fail_calls(lockout, 30, ip=ATTACKER_IP, caller=ATTACKER, start=0.0, every=67.0)
    assert events == []


def test_one_event_per_lockout_even_if_calls_in_flight_keep_failing() -> None:
    lockout = Lockout()
    events, now = _fail_calls(lockout, 10, ip=ATTACKER_IP, caller=ATTACKER, start=0.0)
    assert [e.keys[0][0] for e in events] == [Scope.IP, Scope.CALLER]
    # Calls admitted before the lock keep entering wrong codes: no second event while locked.
    for i in range(15):
        assert lockout.record_failure(ATTACKER_IP, ATTACKER, DID, now + i) == []


def test_counting_starts_afresh_after_a_lockout() -> None:
    lockout = Lockout()
    _, now = _fail_calls(lockout, 10, ip=ATTACKER_IP, caller=ATTACKER, start=0.0)
    after = now + 900.0
    events, now = _fail_calls(lockout, 9, ip=ATTACKER_IP, caller=ATTACKER, start=after)
    assert events == []
    assert len(lockout.record_failure(ATTACKER_IP, ATTACKER, DID, now)) == 2


def test_trusted_gateway_is_never_locked_but_its_callers_are_counted() -> None:
    lockout = Lockout(LockoutPolicy(trusted=("10.0.0.0/8",)))
    gateway = "10.1.2.3"
    events, now = _fail_calls(lockout, 10, ip=gateway, caller=ATTACKER, start=0.0)
    assert events == [
        SecurityEvent(SecurityKind.LOCKOUT_STARTED, ((Scope.CALLER, ATTACKER),), now - 5.0 + 900)
    ]
    # Everyone else arriving through the gateway still gets in.
    assert lockout.check(gateway, "+15557777777", DID, now) is None
    assert lockout.check(gateway, ATTACKER, DID, now) == Locked(Scope.CALLER, now - 5.0 + 900)


def test_loopback_is_trusted_by_default_and_garbage_addresses_are_not() -> None:
    lockout = Lockout()
    assert lockout.is_trusted("127.0.0.1")
    assert lockout.is_trusted("::1")
    assert not lockout.is_trusted("203.0.113.9")
    assert not lockout.is_trusted("not-an-ip")


def test_anonymous_callers_do_not_share_one_lock() -> None:
    lockout = Lockout(LockoutPolicy(did_threshold=1000))
    for i in range(40):
        ip = f"198.51.100.{i}"
        for caller in ("anonymous", "", "Restricted"):
            assert lockout.record_failure(ip, caller, DID, float(i)) == []
    assert lockout.check("192.0.2.1", "anonymous", DID, 41.0) is None


def test_did_crossing_its_threshold_only_alerts_once_per_window() -> None:
    lockout = Lockout(LockoutPolicy(did_threshold=20))
    events: list[SecurityEvent] = []
    # 60 failures from 60 different addresses and numbers: no per-key lock, one DID alert.
    for i in range(60):
        events += lockout.record_failure(f"198.51.100.{i}", f"+1555000{i:04d}", DID, float(i))
    assert events == [SecurityEvent(SecurityKind.DID_UNDER_ATTACK, ((Scope.DID, DID),))]
    # The DID is never locked: a fresh caller gets in.
    assert lockout.check("192.0.2.1", "+15557777777", DID, 61.0) is None
    # The attack goes on past the window: one more alert.
    later = [
        e
        for i in range(20)
        for e in lockout.record_failure(f"192.0.2.{i}", f"+1666000{i:04d}", DID, 700.0 + i)
    ]
    assert later == [SecurityEvent(SecurityKind.DID_UNDER_ATTACK, ((Scope.DID, DID),))]


def test_memory_is_bounded_and_evicts_the_oldest_counter() -> None:
    lockout = Lockout(LockoutPolicy(max_keys=50))
    # Nine failures from an address, then a flood of one-off addresses and numbers.
    _fail_calls(lockout, 9, ip=ATTACKER_IP, caller=ATTACKER, start=0.0, every=0.1)
    for i in range(500):
        lockout.record_failure(f"2001:db8::{i:x}", f"+1777{i:07d}", "+1888", 1.0 + i / 1000)
    assert lockout.tracked_keys() <= 3 * 2 * 50
    # The attacker's counter was evicted, so the tenth failure does not lock: the bound wins.
    assert lockout.record_failure(ATTACKER_IP, ATTACKER, DID, 2.0) == []


def test_flood_of_fresh_keys_does_not_evict_a_lock() -> None:
    lockout = Lockout(LockoutPolicy(max_keys=50))
    _, now = _fail_calls(lockout, 10, ip=ATTACKER_IP, caller=ATTACKER, start=0.0, every=0.1)
    for i in range(500):
        lockout.record_failure(f"2001:db8::{i:x}", f"+1777{i:07d}", "+1888", now + i / 1000)
    assert lockout.check(ATTACKER_IP, "+15557777777", DID, now + 1) is not None


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.floats(0, 5)), min_size=1, max_size=300
    )
)
def test_property_bounded_and_locks_only_after_threshold(
    calls: list[tuple[int, int, float]],
) -> None:
    policy = LockoutPolicy(threshold=4, window=60.0, cooling_off=100.0, max_keys=8)
    lockout = Lockout(policy)
    failures: dict[str, list[float]] = {}
    now = 1000.0
    for ip_n, caller_n, gap in calls:
        now += gap
        ip, caller = f"192.0.2.{ip_n}", f"+1555{caller_n:07d}"
        for event in lockout.record_failure(ip, caller, DID, now):
            if event.kind is SecurityKind.LOCKOUT_STARTED:
                ((scope, key),) = event.keys
                assert event.until == now + 100.0
                # A lock needs at least `threshold` failures of that key inside the window.
                recent = [t for t in failures.get(f"{scope.value}:{key}", []) if now - t < 60.0]
                assert len(recent) + 1 >= 4
        failures.setdefault(f"ip:{ip}", []).append(now)
        failures.setdefault(f"caller:{caller}", []).append(now)
        assert lockout.tracked_keys() <= 3 * 2 * 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "threshold must be at least 1, got 0"),
        ({"did_threshold": 0}, "did_threshold must be at least 1, got 0"),
        ({"max_keys": 0}, "max_keys must be at least 1, got 0"),
        ({"window": 0.0}, "window must be positive, got 0.0"),
        ({"cooling_off": -1.0}, "cooling_off must be positive, got -1.0"),
        ({"trusted": ("10.0.0.0/33",)}, "trusted: '10.0.0.0/33' does not appear to be"),
    ],
)
def test_policy_errors_name_the_parameter(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LockoutConfigError, match=message):
        LockoutPolicy(**kwargs)  # type: ignore[arg-type]


# --- withheld and shared caller ids (a trunk's main number) -------------------------------------

TRUNK_IP = "10.1.2.3"
MAIN_NUMBER = "+15551230000"
LISTED = "+15551239999"


def _trunk_lockout(**kwargs: Any) -> Lockout:
    """Trusted 10/8 (the PBX trunk), failures 3 in 60 s, the listed main number ``LISTED``."""
    policy = LockoutPolicy(
        threshold=3,
        window=60.0,
        cooling_off=900.0,
        did_threshold=1000,
        trusted=("10.0.0.0/8",),
        shared_callers=(LISTED,),
    )
    return Lockout(replace(policy, **kwargs))


def _share(lockout: Lockout, caller: str, now: float) -> list[SecurityEvent]:
    """Two trunk calls up at once with ``caller``, one of them let in by the IVR."""
    events = lockout.call_started("member-1", TRUNK_IP, caller, now)
    events += lockout.call_admitted("member-1", now)
    events += lockout.call_started("member-2", TRUNK_IP, caller, now)
    return events


# caller kind → the caller id, and whether it is made shared by calls before the guessing
CALLERS = {
    "withheld": ("Anonymous", False),
    "listed": (LISTED, False),
    "seen_shared": (MAIN_NUMBER, True),
    "unique": (ATTACKER, False),
}
# (source, caller kind) → the scopes locked by `threshold` failures of that source and caller
TABLE = {
    ("trusted", "withheld"): [],
    ("trusted", "listed"): [],
    ("trusted", "seen_shared"): [],
    ("trusted", "unique"): [Scope.CALLER],
    ("untrusted", "withheld"): [Scope.IP],
    ("untrusted", "listed"): [Scope.IP, Scope.CALLER],
    ("untrusted", "seen_shared"): [Scope.IP, Scope.CALLER],
    ("untrusted", "unique"): [Scope.IP, Scope.CALLER],
}


@pytest.mark.parametrize(("source", "kind"), sorted(TABLE))
def test_state_by_input_which_identities_are_locked(source: str, kind: str) -> None:
    lockout = _trunk_lockout()
    caller, seen_shared = CALLERS[kind]
    if seen_shared:
        _share(lockout, caller, 0.0)
    ip = TRUNK_IP if source == "trusted" else ATTACKER_IP
    events, now = _fail_calls(lockout, 2, ip=ip, caller=caller, start=1.0)
    events += lockout.record_failure(ip, caller, DID, now)
    expected = TABLE[(source, kind)]
    assert [event.keys[0][0] for event in events] == expected
    assert all(event.kind is SecurityKind.LOCKOUT_STARTED for event in events)
    refused = lockout.check(ip, caller, DID, now + 1)
    assert (refused is None) == (not expected)
    if expected:
        assert refused == Locked(expected[0], now + 900.0)
    # The trunk's other callers, and the same caller id through the trunk, follow the table.
    assert lockout.check(TRUNK_IP, "+15557777777", DID, now + 1) is None
    through_trunk = lockout.check(TRUNK_IP, caller, DID, now + 1)
    assert (through_trunk is not None) == (Scope.CALLER in expected and kind == "unique")


def test_trunk_main_number_one_guesser_does_not_lock_out_the_others() -> None:
    """The issue: one caller mistypes, the next 201 callers with the same id are refused."""
    lockout = _trunk_lockout(threshold=10, window=600.0)
    assert lockout.call_started("colleague", TRUNK_IP, MAIN_NUMBER, 0.0) == []
    assert lockout.check(TRUNK_IP, MAIN_NUMBER, DID, 0.0) is None
    assert lockout.call_admitted("colleague", 5.0) == []  # alone: no sign of sharing yet
    # The guesser calls in with the same main number while the colleague is in a meeting.
    assert lockout.call_started("guesser-0", TRUNK_IP, MAIN_NUMBER, 10.0) == [
        SecurityEvent(SecurityKind.CALLER_SHARED, ((Scope.CALLER, MAIN_NUMBER),), 86_410.0)
    ]
    now = 10.0
    for n in range(5):  # five calls of three wrong codes each: the IVR ends every one
        lockout.call_started(f"guesser-{n}", TRUNK_IP, MAIN_NUMBER, now)
        assert lockout.check(TRUNK_IP, MAIN_NUMBER, DID, now) is None
        for _ in range(3):
            now += 2.0
            assert lockout.record_failure(TRUNK_IP, MAIN_NUMBER, DID, now) == []
        lockout.call_ended(f"guesser-{n}")
    lockout.call_ended("colleague")
    for n in range(201):
        now += 1.0
        lockout.call_started(f"caller-{n}", TRUNK_IP, MAIN_NUMBER, now)
        assert lockout.check(TRUNK_IP, MAIN_NUMBER, DID, now) is None
        lockout.call_ended(f"caller-{n}")


def test_did_still_counts_failures_under_a_shared_caller_id() -> None:
    lockout = _trunk_lockout(did_threshold=6)
    _share(lockout, MAIN_NUMBER, 0.0)
    events, _ = _fail_calls(lockout, 6, ip=TRUNK_IP, caller=MAIN_NUMBER, start=1.0)
    assert events == [SecurityEvent(SecurityKind.DID_UNDER_ATTACK, ((Scope.DID, DID),))]


def test_parallel_guessing_calls_never_let_in_are_not_a_shared_number() -> None:
    lockout = _trunk_lockout()
    for n in range(4):
        assert lockout.call_started(f"guess-{n}", TRUNK_IP, ATTACKER, 0.0) == []
    assert not lockout.is_shared(ATTACKER, 0.0)
    events, now = _fail_calls(lockout, 3, ip=TRUNK_IP, caller=ATTACKER, start=1.0)
    assert [e.keys for e in events] == [((Scope.CALLER, ATTACKER),)]
    assert lockout.check(TRUNK_IP, ATTACKER, DID, now) is not None


@pytest.mark.parametrize(
    ("calls", "admitted", "needed", "shared"),
    [
        (1, 1, 2, False),  # one caller in a meeting: one person as far as we know
        (2, 0, 2, False),  # two calls, nobody knew a code
        (2, 1, 2, True),
        (2, 2, 2, True),
        (2, 1, 3, False),
        (3, 1, 3, True),
        (1, 1, 1, True),  # 1: any number that got into a meeting
        (1, 0, 1, False),
        (5, 5, 0, False),  # 0: detection off
    ],
)
def test_sharing_needs_calls_up_at_once_one_of_them_let_in(
    calls: int, admitted: int, needed: int, shared: bool
) -> None:
    lockout = _trunk_lockout(shared_caller_calls=needed)
    events: list[SecurityEvent] = []
    for n in range(calls):
        events += lockout.call_started(f"c{n}", TRUNK_IP, MAIN_NUMBER, 1.0)
    for n in range(admitted):
        events += lockout.call_admitted(f"c{n}", 2.0)
    assert lockout.is_shared(MAIN_NUMBER, 3.0) is shared
    assert len(events) == int(shared)  # one event when it becomes shared, not one per call


def test_calls_that_ended_or_came_from_elsewhere_are_no_evidence() -> None:
    lockout = _trunk_lockout()
    lockout.call_started("a", TRUNK_IP, MAIN_NUMBER, 0.0)
    lockout.call_admitted("a", 1.0)
    lockout.call_ended("a")
    assert lockout.call_started("b", TRUNK_IP, MAIN_NUMBER, 2.0) == []  # a is gone
    # Untrusted sources and withheld ids are not tracked at all.
    assert lockout.call_started("c", ATTACKER_IP, MAIN_NUMBER, 3.0) == []
    assert lockout.call_admitted("c", 3.0) == []
    lockout.call_started("d", TRUNK_IP, "anonymous", 3.0)
    lockout.call_started("e", TRUNK_IP, "anonymous", 3.0)
    assert lockout.call_admitted("d", 3.0) == []
    assert not lockout.is_shared(MAIN_NUMBER, 4.0)
    assert not lockout.is_shared("anonymous", 4.0)
    # Admitting twice, or ending an unknown call, changes nothing.
    lockout.call_admitted("b", 5.0)
    assert lockout.call_admitted("b", 5.0) == []
    lockout.call_ended("nobody")
    assert not lockout.is_shared(MAIN_NUMBER, 6.0)


def test_sharing_is_remembered_then_forgotten_and_renewed() -> None:
    lockout = _trunk_lockout(shared_caller_memory=1000.0)
    (event,) = _share(lockout, MAIN_NUMBER, 0.0)
    assert event.until == 1000.0
    lockout.call_ended("member-1")
    lockout.call_ended("member-2")
    assert lockout.is_shared(MAIN_NUMBER, 999.0)
    assert not lockout.is_shared(MAIN_NUMBER, 1000.0)
    # Forgotten: failures count against the number again.
    events, _ = _fail_calls(lockout, 3, ip=TRUNK_IP, caller=MAIN_NUMBER, start=1001.0)
    assert [e.keys for e in events] == [((Scope.CALLER, MAIN_NUMBER),)]
    # Seen shared again while it is still shared: renewed quietly.
    lockout = _trunk_lockout(shared_caller_memory=1000.0)
    _share(lockout, MAIN_NUMBER, 0.0)
    assert lockout.call_started("member-3", TRUNK_IP, MAIN_NUMBER, 900.0) == []
    assert lockout.is_shared(MAIN_NUMBER, 1800.0)


def test_a_lock_from_before_the_sharing_no_longer_refuses_trusted_calls() -> None:
    lockout = _trunk_lockout()
    # A colleague dials in with the main number; a guesser's call overlaps it, but nobody has
    # been let in yet, so nothing shows the number to be shared: the guesser locks it.
    lockout.call_started("colleague", TRUNK_IP, MAIN_NUMBER, 0.0)
    assert lockout.call_started("guesser", TRUNK_IP, MAIN_NUMBER, 0.0) == []
    _, now = _fail_calls(lockout, 3, ip=TRUNK_IP, caller=MAIN_NUMBER, start=1.0)
    lockout.call_ended("guesser")
    assert lockout.check(TRUNK_IP, MAIN_NUMBER, DID, now) == Locked(Scope.CALLER, 911.0)
    # The colleague, past the check before the lock, enters the right code: one person alone.
    assert lockout.call_admitted("colleague", now) == []
    # The next trunk caller with the main number shows it shared and is not refused.
    assert len(lockout.call_started("next", TRUNK_IP, MAIN_NUMBER, now + 1)) == 1
    assert lockout.check(TRUNK_IP, MAIN_NUMBER, DID, now + 1) is None
    # The same number from an untrusted source is still locked.
    assert lockout.check(ATTACKER_IP, MAIN_NUMBER, DID, now + 1) == Locked(Scope.CALLER, 911.0)


def test_tracked_calls_and_shared_marks_are_bounded() -> None:
    lockout = _trunk_lockout(max_keys=20, shared_caller_calls=1)
    for n in range(500):  # calls never reported ended, each admitted: 500 shared numbers
        lockout.call_started(f"c{n}", TRUNK_IP, f"+1555{n:07d}", float(n))
        lockout.call_admitted(f"c{n}", float(n))
    assert lockout.tracked_keys() <= 20 + 20
    assert lockout.is_shared("+15550000499", 500.0)
    assert not lockout.is_shared("+15550000000", 500.0)  # the oldest mark was evicted


CALL_OPS = st.lists(
    st.tuples(st.sampled_from(["start", "admit", "end"]), st.integers(0, 7), st.integers(0, 2)),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(CALL_OPS, st.integers(0, 3))
def test_property_sharing_matches_a_model_of_live_calls(
    ops: list[tuple[str, int, int]], needed: int
) -> None:
    lockout = _trunk_lockout(shared_caller_calls=needed)
    live: dict[str, tuple[str, bool]] = {}  # call → caller, admitted
    shared: set[str] = set()
    for now, (op, call_n, caller_n) in enumerate(ops):
        call, caller = f"call-{call_n}", f"+1555000000{caller_n}"
        if op == "start":
            live[call] = (caller, False)
            lockout.call_started(call, TRUNK_IP, caller, float(now))
        elif op == "admit" and call in live:
            caller = live[call][0]
            live[call] = (caller, True)
            lockout.call_admitted(call, float(now))
        else:
            live.pop(call, None)
            lockout.call_ended(call)
            continue
        up = [admitted for c, admitted in live.values() if c == caller]
        if needed and len(up) >= needed and any(up):
            shared.add(caller)
        for n in range(3):
            number = f"+1555000000{n}"
            assert lockout.is_shared(number, float(now)) == (number in shared)
    assert lockout.tracked_keys() == len(live) + len(shared)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shared_caller_calls": -1}, "shared_caller_calls must be 0 \\(off\\) or more, got -1"),
        ({"shared_caller_memory": 0.0}, "shared_caller_memory must be positive, got 0.0"),
    ],
)
def test_sharing_policy_errors_name_the_parameter(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LockoutConfigError, match=message):
        LockoutPolicy(**kwargs)  # type: ignore[arg-type]
