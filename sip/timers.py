"""SIP timer values (RFC 3261 §17.1.1.1, §17.1.2.2, §17.2.1, §17.2.2, Appendix A; RFC 6026 §8.2).

Theory of operation: every transaction timer is derived from three base values, T1 (RTT
estimate, 500 ms), T2 (the cap on non-INVITE and 2xx retransmission intervals, 4 s) and T4
(the time a message may stay in the network, 5 s).  ``TimerConfig`` holds the three and
answers the derived durations A–K (plus L and M from RFC 6026) for a given transport: over a
reliable transport (TCP) the retransmission timers A, E and G are never started and the
"wait for stray retransmissions" timers D, I, J and K are zero, as §17 prescribes.  Durations
are seconds; the cores add them to the ``now`` they were given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sip.errors import TransactionError


class Timer(Enum):
    """The RFC 3261 transaction timers, plus L and M from RFC 6026 (2xx handling)."""

    A = "A"  # INVITE client: request retransmit (UDP)
    B = "B"  # INVITE client: transaction timeout
    D = "D"  # INVITE client: wait for response retransmits after a non-2xx
    E = "E"  # non-INVITE client: request retransmit (UDP)
    F = "F"  # non-INVITE client: transaction timeout
    G = "G"  # INVITE server: response retransmit (UDP)
    H = "H"  # INVITE server: wait for ACK
    I = "I"  # INVITE server: wait for ACK retransmits  # noqa: E741 - the RFC's name
    J = "J"  # non-INVITE server: wait for request retransmits
    K = "K"  # non-INVITE client: wait for response retransmits
    L = "L"  # INVITE server (RFC 6026): Accepted, absorb INVITE retransmits
    M = "M"  # INVITE client (RFC 6026): Accepted, pass 2xx retransmits up


RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "WS", "WSS"})


def is_reliable(transport: str) -> bool:
    """True for transports that retransmit themselves (RFC 3261 §18: no SIP retransmissions)."""
    return transport.upper() in RELIABLE_TRANSPORTS


@dataclass(frozen=True)
class TimerConfig:
    """T1, T2, T4 in seconds (RFC 3261 Table 4 defaults) and the timers derived from them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise TransactionError(f"timers need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.t4 <= 0:
            raise TransactionError(f"T4 must be positive, got {self.t4}")

    @property
    def timeout(self) -> float:
        """64·T1: timers B, F, H, J (UDP), L, M and the UAS wait for the ACK of a 2xx."""
        return 64 * self.t1

    def duration(self, timer: Timer, reliable: bool) -> float | None:
        """Initial duration of ``timer``; None when the timer is not started on this transport."""
        return _DURATIONS[timer](self, reliable)

    def next_interval(self, timer: Timer, interval: float) -> float:
        """The interval after ``interval`` for the doubling timers (A doubles freely; E, G cap)."""
        if timer is Timer.A:
            return 2 * interval
        if timer in (Timer.E, Timer.G):
            return min(2 * interval, self.t2)
        raise TransactionError(f"timer {timer.value} does not retransmit")


def _unreliable_only(value: float, reliable: bool) -> float | None:
    return None if reliable else value


def _zero_if_reliable(value: float, reliable: bool) -> float:
    return 0.0 if reliable else value


_DURATIONS: dict[Timer, Callable[[TimerConfig, bool], float | None]] = {
    Timer.A: lambda c, r: _unreliable_only(c.t1, r),
    Timer.B: lambda c, r: c.timeout,
    # §17.1.1.2: D is at least 32 s for unreliable transports, zero for reliable ones.
    Timer.D: lambda c, r: _zero_if_reliable(max(32.0, c.timeout), r),
    Timer.E: lambda c, r: _unreliable_only(c.t1, r),
    Timer.F: lambda c, r: c.timeout,
    Timer.G: lambda c, r: _unreliable_only(c.t1, r),
    Timer.H: lambda c, r: c.timeout,
    Timer.I: lambda c, r: _zero_if_reliable(c.t4, r),
    Timer.J: lambda c, r: _zero_if_reliable(c.timeout, r),
    Timer.K: lambda c, r: _zero_if_reliable(c.t4, r),
    Timer.L: lambda c, r: c.timeout,
    Timer.M: lambda c, r: c.timeout,
}
