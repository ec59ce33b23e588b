"""The pike-style guard: token bucket per source, bans, trusted networks, scanners."""

from __future__ import annotations

import pytest

from sip.protection import Guard, GuardConfig


def test_a_burst_of_sixteen_passes_the_seventeenth_bans() -> None:
    guard = Guard()
    assert all(guard.allow("203.0.113.9", 0.001 * i) for i in range(16))
    assert not guard.allow("203.0.113.9", 0.02)
    assert guard.bans == 1
    assert guard.is_banned("203.0.113.9", 2.0)


def test_ban_lasts_ban_seconds_then_the_source_starts_afresh() -> None:
    guard = Guard(GuardConfig(window=2.0, limit=2, ban=300.0))
    assert guard.allow("198.51.100.1", 0.0)
    assert guard.allow("198.51.100.1", 0.0)
    assert not guard.allow("198.51.100.1", 0.0)
    assert not guard.allow("198.51.100.1", 299.9)
    assert guard.allow("198.51.100.1", 300.1)


def test_a_steady_rate_below_the_limit_is_never_banned() -> None:
    guard = Guard()  # 8 requests per second sustained
    assert all(guard.allow("192.0.2.7", i * 0.125) for i in range(2000))
    assert guard.bans == 0


def test_sources_are_counted_separately() -> None:
    guard = Guard(GuardConfig(limit=1))
    assert guard.allow("192.0.2.1", 0.0)
    assert not guard.allow("192.0.2.1", 0.0)
    assert guard.allow("192.0.2.2", 0.0)


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.9.9.9", "::1"])
def test_loopback_is_trusted_by_default(ip: str) -> None:
    guard = Guard(GuardConfig(limit=1))
    assert all(guard.allow(ip, 0.0) for _ in range(100))


def test_operator_trusted_trunk_network_is_exempt() -> None:
    guard = Guard(GuardConfig(limit=1, trusted=("203.0.113.0/24",)))
    assert all(guard.allow("203.0.113.50", 0.0) for _ in range(10))
    assert not guard.is_trusted("127.0.0.1")
    assert not guard.is_trusted("not-an-ip")


@pytest.mark.parametrize(
    "ua", ["friendly-scanner", "sipvicious 0.3", "SIPCLI/v1.8", "Friendly-Scanner"]
)
def test_known_scanners_are_recognised(ua: str) -> None:
    assert Guard().is_scanner(ua)


@pytest.mark.parametrize("ua", [None, "", "Linphone/5.2", "PJSUA v2.14 Linux", "Asterisk PBX"])
def test_ordinary_user_agents_are_not_scanners(ua: str | None) -> None:
    assert not Guard().is_scanner(ua)


def test_memory_is_bounded_and_oldest_source_forgotten() -> None:
    guard = Guard(GuardConfig(limit=1, max_sources=3))
    for i in range(10):
        guard.allow(f"192.0.2.{i}", 0.0)
    assert len(guard._buckets) == 3
    assert guard.allow("192.0.2.0", 0.0)  # forgotten, so a fresh bucket


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        GuardConfig(window=0)
