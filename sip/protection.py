"""Flood and scanner protection for a SIP server on a public port.

A server on 5060 meets scanners within minutes. Two cheap defences, both without I/O:

* A per-source-IP token bucket in the spirit of Kamailio's ``pike`` module: each source may send
  ``limit`` new requests per ``window`` seconds (the bucket holds ``limit`` tokens and refills at
  ``limit / window`` per second). A source that empties its bucket is banned for ``ban`` seconds:
  every new request from it is dropped silently (answering would confirm we exist). Sources in the
  ``trusted`` networks (loopback by default; an operator adds trunks) are never counted.
  Retransmissions that match a transaction never reach the guard: only *new* requests count.
* Requests whose User-Agent names a known scanner (SIPVicious' ``friendly-scanner``, ``sipcli``
  …) are dropped silently.

Memory is bounded: at most ``max_sources`` addresses are tracked; the least recently seen one is
forgotten first.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field

DEFAULT_SCANNERS: tuple[str, ...] = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipsak",
    "iwar",
    "sundayddr",
    "vaxsipuseragent",
    "pplsip",
)


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Limits of the guard; defaults follow Kamailio pike (16 requests in 2 s, 300 s ban)."""

    window: float = 2.0
    limit: int = 16
    ban: float = 300.0
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_sources: int = 100_000
    scanners: tuple[str, ...] = field(default=DEFAULT_SCANNERS)

    def __post_init__(self) -> None:
        if self.window <= 0 or self.limit < 1 or self.ban < 0 or self.max_sources < 1:
            raise ValueError("guard limits must be positive (window, limit, max_sources)")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    banned_until: float = 0.0


class Guard:
    """Decides whether a new request from a source IP may be processed."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config or GuardConfig()
        self._trusted = tuple(ipaddress.ip_network(n, strict=False) for n in self.config.trusted)
        self._scanners = tuple(s.lower() for s in self.config.scanners)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._rate = self.config.limit / self.config.window
        self.bans = 0

    def is_trusted(self, source_ip: str) -> bool:
        """True when the address lies in a trusted network (never limited)."""
        try:
            addr = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted)

    def is_scanner(self, user_agent: str | None) -> bool:
        """True when the User-Agent names a known scanner (case-insensitive substring)."""
        if not user_agent:
            return False
        ua = user_agent.lower()
        return any(s in ua for s in self._scanners)

    def is_banned(self, source_ip: str, now: float) -> bool:
        """True while a ban on the source lasts (does not count a request)."""
        bucket = self._buckets.get(source_ip)
        return bucket is not None and bucket.banned_until > now

    def allow(self, source_ip: str, now: float) -> bool:
        """Count one new request from ``source_ip``; False means drop it silently."""
        if self.is_trusted(source_ip):
            return True
        bucket = self._buckets.get(source_ip)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.config.limit), stamp=now)
            self._remember(source_ip, bucket)
        else:
            self._buckets.move_to_end(source_ip)
        if bucket.banned_until > now:
            return False
        bucket.tokens = min(
            float(self.config.limit), bucket.tokens + (now - bucket.stamp) * self._rate
        )
        bucket.stamp = now
        if bucket.tokens < 1.0:
            bucket.banned_until = now + self.config.ban
            bucket.tokens = float(self.config.limit)
            self.bans += 1
            return False
        bucket.tokens -= 1.0
        return True

    def _remember(self, source_ip: str, bucket: _Bucket) -> None:
        while len(self._buckets) >= self.config.max_sources:
            self._buckets.popitem(last=False)
        self._buckets[source_ip] = bucket
