"""Guessing protection: failed access codes and PINs counted across calls.

An IVR that only counts wrong codes per call lets a 4-digit code fall to parallel calls in
minutes. This module counts every failed code or PIN across calls, in sliding windows, under
three keys of the call that failed:

* the **source IP** of the SIP request and the **caller** number: past ``threshold`` failures
  within ``window`` seconds the key is *locked* for ``cooling_off`` seconds, and ``check`` refuses
  new calls that carry it (the IVR plays "access refused" and hangs up);
* the dialled **DID**: a shared number carries everybody's calls, so locking it would let one
  attacker lock everyone out. Its higher ``did_threshold`` only raises a security event, at most
  once per ``window``, for an operator to look at.

Exempt from counting: source addresses in the ``trusted`` networks (a PSTN gateway carries many
callers from one address; its callers are still counted by number), and caller identities that
identify nobody (anonymous, empty) — otherwise one hidden-number attacker locks every hidden
number out.

Memory is bounded whatever an attacker sends: each key keeps at most ``threshold`` timestamps
(the window holds ``threshold`` failures iff the oldest of the last ``threshold`` is inside it),
and each kind of key tracks at most ``max_keys`` keys, forgetting the least recently failed one
first. Locks live in their own table, capped the same way, so a flood of fresh keys evicts
counters before it can evict a lock.

Pure: time is the caller's ``now`` (monotonic seconds); nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNIDENTIFIED_CALLERS: Final = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld"}
)
"""Caller identities that name nobody; failures are not counted against them."""


class LockoutConfigError(ValueError):
    """A guessing-protection parameter outside its range (the config loader names the key)."""


class Scope(Enum):
    """Which identity of a call a count or lock is about."""

    IP = "ip"
    CALLER = "caller"
    DID = "did"


class SecurityKind(Enum):
    """What a security event reports; the runtime logs it as ``security.<value>``."""

    LOCKOUT_STARTED = "lockout_started"
    DID_UNDER_ATTACK = "did_under_attack"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One line for operators: ``kind`` and the identities involved as (scope, value) pairs."""

    kind: SecurityKind
    keys: tuple[tuple[Scope, str], ...]
    until: float | None = None
    """End of the cooling-off for ``LOCKOUT_STARTED`` (monotonic seconds), else None."""


@dataclass(frozen=True, slots=True)
class Locked:
    """A new call is refused: ``scope`` names the locked identity, ``until`` when it expires."""

    scope: Scope
    until: float


def _parse_networks(networks: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(net, strict=False) for net in networks)
    except ValueError as exc:
        raise LockoutConfigError(f"trusted: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Thresholds; the defaults are 10 failures in 10 minutes → 15 minutes of cooling-off."""

    threshold: int = 10
    window: float = 600.0
    cooling_off: float = 900.0
    did_threshold: int = 50
    max_keys: int = 10_000
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    trusted_networks: tuple[IpNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("threshold", "did_threshold", "max_keys"):
            if getattr(self, name) < 1:
                raise LockoutConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("window", "cooling_off"):
            if not getattr(self, name) > 0:
                raise LockoutConfigError(f"{name} must be positive, got {getattr(self, name)}")
        # Parsed once here so that every check is a cheap membership test.
        object.__setattr__(self, "trusted_networks", _parse_networks(self.trusted))


class _Counter:
    """Sliding-window failure counts for one scope, LRU-bounded to ``max_keys`` keys."""

    def __init__(self, threshold: int, window: float, max_keys: int) -> None:
        self._threshold = threshold
        self._window = window
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def add(self, key: str, now: float) -> bool:
        """Record a failure; True when ``threshold`` failures now fall within the window."""
        times = self._failures.pop(key, None)
        if times is None:
            times = deque(maxlen=self._threshold)
            while len(self._failures) >= self._max_keys:
                self._failures.popitem(last=False)
        times.append(now)
        self._failures[key] = times
        return len(times) == self._threshold and now - times[0] < self._window

    def reset(self, key: str) -> None:
        """Start counting afresh (a lockout began: its failures are accounted for)."""
        self._failures.pop(key, None)


class _Deadlines:
    """Keys with an expiry time (locks, alert suppression), LRU-bounded to ``max_keys``."""

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def active(self, key: str, now: float) -> float | None:
        until = self._until.get(key)
        if until is None:
            return None
        if now >= until:
            del self._until[key]
            return None
        return until

    def set(self, key: str, until: float) -> None:
        self._until.pop(key, None)
        while len(self._until) >= self._max_keys:
            self._until.popitem(last=False)
        self._until[key] = until


@dataclass(slots=True)
class _Scoped:
    counter: _Counter
    deadlines: _Deadlines


class Lockout:
    """Counts failures across calls and answers whether a new call may proceed."""

    def __init__(self, policy: LockoutPolicy | None = None) -> None:
        self.policy = policy or LockoutPolicy()
        p = self.policy
        self._scopes = {
            scope: _Scoped(
                _Counter(
                    p.did_threshold if scope is Scope.DID else p.threshold, p.window, p.max_keys
                ),
                _Deadlines(p.max_keys),
            )
            for scope in Scope
        }

    def tracked_keys(self) -> int:
        """How many keys are held in memory (counters and deadlines), for bounds and metrics."""
        return sum(len(s.counter) + len(s.deadlines) for s in self._scopes.values())

    def is_trusted(self, ip: str) -> bool:
        """Whether ``ip`` lies in a trusted network; unparsable addresses are not trusted."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.policy.trusted_networks)

    def _keys(self, ip: str, caller: str, did: str) -> list[tuple[Scope, str]]:
        """The (scope, key) pairs of a call that are counted and may be locked."""
        keys: list[tuple[Scope, str]] = []
        if not self.is_trusted(ip):
            keys.append((Scope.IP, ip))
        if caller.strip().lower() not in UNIDENTIFIED_CALLERS:
            keys.append((Scope.CALLER, caller))
        return keys

    def check(self, ip: str, caller: str, did: str, now: float) -> Locked | None:
        """For a new call: the lock that refuses it, or None when it may go on."""
        for scope, key in self._keys(ip, caller, did):
            until = self._scopes[scope].deadlines.active(key, now)
            if until is not None:
                return Locked(scope, until)
        return None

    def record_failure(self, ip: str, caller: str, did: str, now: float) -> list[SecurityEvent]:
        """Count one wrong code or PIN; one event per lockout that starts (and per DID alert)."""
        events: list[SecurityEvent] = []
        for scope, key in self._keys(ip, caller, did):
            scoped = self._scopes[scope]
            if scoped.counter.add(key, now) and scoped.deadlines.active(key, now) is None:
                until = now + self.policy.cooling_off
                scoped.deadlines.set(key, until)
                scoped.counter.reset(key)
                events.append(SecurityEvent(SecurityKind.LOCKOUT_STARTED, ((scope, key),), until))
        events += self._did_alert(did, now)
        return events

    def _did_alert(self, did: str, now: float) -> list[SecurityEvent]:
        """The DID is never locked; crossing its threshold is reported once per window."""
        scoped = self._scopes[Scope.DID]
        if not scoped.counter.add(did, now) or scoped.deadlines.active(did, now) is not None:
            return []
        scoped.deadlines.set(did, now + self.policy.window)
        return [SecurityEvent(SecurityKind.DID_UNDER_ATTACK, ((Scope.DID, did),))]
