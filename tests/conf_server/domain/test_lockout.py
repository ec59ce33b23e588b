"""Guessing protection driven through its API with repeated failing "calls" and explicit time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf_server.domain.lockout import (
    Locked,
    Lockout,
    LockoutConfigError,
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
