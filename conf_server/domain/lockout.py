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

Which identities are keys
-------------------------
A lock must stop a guesser without turning one caller's mistakes into a denial of service for
everyone who shows the same identity. So a call's identities are keys only when they name one
party:

==================  ==================  ===========================  ===========================
source \\ caller     withheld            shared                       unique
==================  ==================  ===========================  ===========================
trusted             (none)              (none)                       caller
untrusted           ip                  ip, caller                   ip, caller
==================  ==================  ===========================  ===========================

* A **trusted** source (``trusted`` networks: the PSTN gateway, SBC or PBX trunk that carries
  many callers from one address) is never a key; its callers are keys by number.
* A **withheld** caller, one of ``UNIDENTIFIED_CALLERS`` (anonymous, unknown, restricted,
  private, unavailable, withheld, empty; case and spaces ignored), is never a key, from any
  source: otherwise one hidden-number guesser locks every hidden number out.
* A **shared** caller, *from a trusted source only*, is not a key either: a PBX main number or a
  trunk's default caller id names a switchboard, not a person. A caller identity is shared when
  it is listed in ``shared_callers``, or when ``shared_caller_calls`` (default 2) calls carrying
  it from trusted sources were up at the same time and at least one of them had passed the IVR
  (``call_admitted``: its code, and PIN, accepted) — evidence that different people who know
  their codes dial from that number. It stays shared for ``shared_caller_memory`` seconds
  (default a day) after it was last seen so; ``shared_caller_calls = 0`` turns detection off.
  The same number from an untrusted source is counted and locked like any other.

A caller that is not a key is neither counted nor refused: a caller lock that started before the
sharing was seen does not refuse a trusted call carrying it. Parallel guessing calls under one
number never pass the IVR, so they are not taken for a shared number and are locked as before.
A guesser behind a withheld or shared identity is still stopped: the IVR ends its call after
``call_operator_after`` wrong codes (``security.attempts_exhausted``), each new call starts that
count again, and every failure still counts against the DID (``security.did_under_attack``).
Until a quiet trunk's main number has been seen shared a guesser on it locks it like a unique
number; an operator who knows the number lists it in ``shared_callers``.

To see sharing the runtime reports a call's life: ``call_started`` before ``check``,
``call_admitted`` when the IVR lets it in, ``call_ended`` when it goes. Only calls from trusted
sources with an identified caller are tracked.

Memory is bounded whatever an attacker sends: each key keeps at most ``threshold`` timestamps
(the window holds ``threshold`` failures iff the oldest of the last ``threshold`` is inside it),
and each kind of key tracks at most ``max_keys`` keys, forgetting the least recently failed one
first. Locks live in their own table, capped the same way, so a flood of fresh keys evicts
counters before it can evict a lock. Tracked calls and shared marks are capped at ``max_keys``
too (the oldest call is forgotten first).

Pure: time is the caller's ``now`` (monotonic seconds); nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from conf_server.domain.errors import LockoutConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNIDENTIFIED_CALLERS: Final = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld"}
)
"""Caller identities that name nobody; failures are not counted against them."""


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
    CALLER_SHARED = "caller_shared"


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One line for operators: ``kind`` and the identities involved as (scope, value) pairs."""

    kind: SecurityKind
    keys: tuple[tuple[Scope, str], ...]
    until: float | None = None
    """End of the cooling-off for ``LOCKOUT_STARTED``, or of the sharing for ``CALLER_SHARED``
    (monotonic seconds), else None."""


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


def is_withheld(caller: str) -> bool:
    """Whether a caller identity names nobody (``UNIDENTIFIED_CALLERS``, case and spaces aside)."""
    return caller.strip().lower() in UNIDENTIFIED_CALLERS


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Thresholds; the defaults are 10 failures in 10 minutes → 15 minutes of cooling-off.

    ``shared_caller_calls``, ``shared_caller_memory`` and ``shared_callers`` say which caller
    identities from trusted sources are shared (see the module docstring); 0 calls: never seen.
    """

    threshold: int = 10
    window: float = 600.0
    cooling_off: float = 900.0
    did_threshold: int = 50
    max_keys: int = 10_000
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    shared_caller_calls: int = 2
    shared_caller_memory: float = 86_400.0
    shared_callers: tuple[str, ...] = ()
    trusted_networks: tuple[IpNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("threshold", "did_threshold", "max_keys"):
            if getattr(self, name) < 1:
                raise LockoutConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.shared_caller_calls < 0:
            raise LockoutConfigError(
                f"shared_caller_calls must be 0 (off) or more, got {self.shared_caller_calls}"
            )
        for name in ("window", "cooling_off", "shared_caller_memory"):
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


@dataclass(slots=True)
class _Tally:
    """The tracked calls of one caller identity: up, and up after passing the IVR."""

    up: int = 0
    admitted: int = 0


class _LiveCalls:
    """Calls up from trusted sources with an identified caller, LRU-bounded to ``max_calls``.

    A call that is forgotten (evicted, or never reported ended) only weakens the evidence of
    sharing; it never adds to it.
    """

    def __init__(self, max_calls: int) -> None:
        self._max_calls = max_calls
        self._calls: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # id → caller, admitted
        self._tallies: dict[str, _Tally] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def tally(self, caller: str) -> _Tally:
        return self._tallies.get(caller) or _Tally()

    def start(self, call_id: str, caller: str) -> None:
        self.end(call_id)
        while len(self._calls) >= self._max_calls:
            self.end(next(iter(self._calls)))
        self._calls[call_id] = (caller, False)
        self._tallies.setdefault(caller, _Tally()).up += 1

    def admit(self, call_id: str) -> str | None:
        """Mark a tracked call as let in; its caller, or None when untracked or already in."""
        entry = self._calls.get(call_id)
        if entry is None or entry[1]:
            return None
        caller = entry[0]
        self._calls[call_id] = (caller, True)
        self._tallies[caller].admitted += 1
        return caller

    def end(self, call_id: str) -> None:
        entry = self._calls.pop(call_id, None)
        if entry is None:
            return
        caller, admitted = entry
        tally = self._tallies[caller]
        tally.up -= 1
        tally.admitted -= int(admitted)
        if tally.up == 0:
            del self._tallies[caller]


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
        self._live = _LiveCalls(p.max_keys)
        self._shared = _Deadlines(p.max_keys)
        self._listed = frozenset(p.shared_callers)

    def tracked_keys(self) -> int:
        """How many keys are held in memory (counters, deadlines, tracked calls, shared marks)."""
        scoped = sum(len(s.counter) + len(s.deadlines) for s in self._scopes.values())
        return scoped + len(self._live) + len(self._shared)

    def is_trusted(self, ip: str) -> bool:
        """Whether ``ip`` lies in a trusted network; unparsable addresses are not trusted."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.policy.trusted_networks)

    def is_shared(self, caller: str, now: float) -> bool:
        """Whether ``caller`` is a shared identity (listed, or seen shared lately).

        Only calls from trusted sources are exempted for it; see the module docstring.
        """
        return caller in self._listed or self._shared.active(caller, now) is not None

    def _keys(self, ip: str, caller: str, now: float) -> list[tuple[Scope, str]]:
        """The (scope, key) pairs of a call that are counted and may be locked (the table)."""
        trusted = self.is_trusted(ip)
        keys = [] if trusted else [(Scope.IP, ip)]
        if not (is_withheld(caller) or (trusted and self.is_shared(caller, now))):
            keys.append((Scope.CALLER, caller))
        return keys

    # --- the life of a call, for sharing ------------------------------------------------------

    def call_started(self, call_id: str, ip: str, caller: str, now: float) -> list[SecurityEvent]:
        """A new call, reported before its ``check``; a ``CALLER_SHARED`` event when it shows
        its caller to be shared. Only trusted sources with an identified caller are tracked."""
        if not self.is_trusted(ip) or is_withheld(caller):
            return []
        self._live.start(call_id, caller)
        return self._see_sharing(caller, now)

    def call_admitted(self, call_id: str, now: float) -> list[SecurityEvent]:
        """The call passed the IVR (code and PIN accepted); may show its caller to be shared."""
        caller = self._live.admit(call_id)
        return [] if caller is None else self._see_sharing(caller, now)

    def call_ended(self, call_id: str) -> None:
        """The call is gone (any call; untracked ones are ignored)."""
        self._live.end(call_id)

    def _see_sharing(self, caller: str, now: float) -> list[SecurityEvent]:
        """Mark ``caller`` shared while ``shared_caller_calls`` tracked calls carry it at once,
        one of them admitted; an event only when it was not shared already."""
        needed = self.policy.shared_caller_calls
        tally = self._live.tally(caller)
        if needed == 0 or tally.up < needed or tally.admitted < 1 or caller in self._listed:
            return []
        fresh = not self.is_shared(caller, now)
        until = now + self.policy.shared_caller_memory
        self._shared.set(caller, until)
        if not fresh:
            return []
        return [SecurityEvent(SecurityKind.CALLER_SHARED, ((Scope.CALLER, caller),), until)]

    # --- failures and checks ------------------------------------------------------------------

    def check(self, ip: str, caller: str, did: str, now: float) -> Locked | None:
        """For a new call: the lock that refuses it, or None when it may go on."""
        for scope, key in self._keys(ip, caller, now):
            until = self._scopes[scope].deadlines.active(key, now)
            if until is not None:
                return Locked(scope, until)
        return None

    def record_failure(self, ip: str, caller: str, did: str, now: float) -> list[SecurityEvent]:
        """Count one wrong code or PIN; one event per lockout that starts (and per DID alert)."""
        events: list[SecurityEvent] = []
        for scope, key in self._keys(ip, caller, now):
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
