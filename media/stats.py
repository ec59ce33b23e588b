"""Per-leg RTP statistics: receive side (RFC 3550 §6.4.1, A.3, A.8) and send side (§6.4.1).

Theory of operation
-------------------
``ReceiveStats`` watches one incoming stream. Every packet goes through the A.1
``SequenceTracker`` (received, lost, duplicates, late, restarts) and, unless it is a duplicate, the
A.8 interarrival-jitter estimator: ``D = (Rj − Ri) − (Sj − Si)`` in timestamp units, with
``J += (|D| − J) / 16``. Arrival times are monotonic seconds passed in by the caller; the RTP
timestamp difference is taken with 32-bit wrap. The jitter buffer increments ``concealed`` for
every frame it had to invent.

``interval_loss()`` is A.3: the fraction lost since the previous report, as the 8-bit fixed-point
number RTCP carries, and it moves the interval. ``on_sender_report`` remembers the middle 32 bits of
the peer's last SR NTP time and when it arrived, for the LSR/DLSR fields of our next report.

``SendStats`` counts what we send (the SR's packet and octet counts) and holds the peer's view of
our stream as read from its reception reports: fraction lost, cumulative lost, jitter, and the
round-trip time ``A − LSR − DLSR`` (§6.4.1) in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from media.rtp import SequenceTracker, SeqVerdict, ts_delta


@dataclass(slots=True)
class ReceiveStats:
    """Statistics of one received stream."""

    clock_rate: int = 8000
    packets: int = 0  # every packet accepted by the RTP parser, duplicates included
    octets: int = 0  # payload octets of those packets
    concealed: int = 0  # frames the jitter buffer had to conceal
    jitter: float = 0.0  # A.8 estimate, in timestamp units
    seq: SequenceTracker = field(default_factory=SequenceTracker)
    last_sr_ntp32: int = 0  # middle 32 bits of the peer's last SR NTP timestamp (0: none yet)
    last_sr_arrival: float = 0.0
    _prev_arrival: float | None = None
    _prev_ts: int = 0
    _expected_prior: int = 0
    _received_prior: int = 0

    def on_packet(
        self, ssrc: int, sequence: int, timestamp: int, payload_len: int, arrival: float
    ) -> SeqVerdict:
        """Account for one received packet; returns the A.1 verdict (drop ``DUPLICATE``)."""
        self.packets += 1
        self.octets += payload_len
        verdict = self.seq.update(ssrc, sequence)
        if verdict is SeqVerdict.RESTART:
            self._restart()
        if verdict in (SeqVerdict.IN_ORDER, SeqVerdict.LATE, SeqVerdict.RESTART):
            self._update_jitter(timestamp, arrival)
        return verdict

    def _restart(self) -> None:
        self.jitter = 0.0
        self._prev_arrival = None
        self._expected_prior = 0
        self._received_prior = 0

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        if self._prev_arrival is not None:
            d = (arrival - self._prev_arrival) * self.clock_rate - ts_delta(
                timestamp, self._prev_ts
            )
            self.jitter += (abs(d) - self.jitter) / 16.0
        self._prev_arrival = arrival
        self._prev_ts = timestamp

    @property
    def jitter_ms(self) -> float:
        """The jitter estimate in milliseconds."""
        return self.jitter * 1000.0 / self.clock_rate

    @property
    def lost(self) -> int:
        """Packets expected and never received."""
        return self.seq.lost

    @property
    def duplicates(self) -> int:
        """Packets received more than once (beyond the first copy)."""
        return self.seq.duplicates

    @property
    def late(self) -> int:
        """Packets that arrived after a later one (reordered), not duplicates."""
        return self.seq.late

    @property
    def cumulative_lost(self) -> int:
        """A.3 cumulative loss for a report block, clamped to the signed 24-bit field."""
        return max(-0x800000, min(0x7FFFFF, self.seq.expected - self.seq.received))

    def interval_loss(self) -> int:
        """A.3 fraction lost since the last call, as an 8-bit fixed-point fraction (0..255)."""
        expected, received = self.seq.expected, self.seq.received
        expected_interval = expected - self._expected_prior
        lost_interval = expected_interval - (received - self._received_prior)
        self._expected_prior, self._received_prior = expected, received
        if expected_interval <= 0 or lost_interval <= 0:
            return 0
        return min(255, (lost_interval << 8) // expected_interval)

    def on_sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """Remember the peer's SR (64-bit NTP time) and its arrival, for LSR/DLSR."""
        self.last_sr_ntp32 = (ntp_timestamp >> 16) & 0xFFFF_FFFF
        self.last_sr_arrival = arrival

    def dlsr(self, now: float) -> int:
        """Delay since the last SR in 1/65536 s units (0 when no SR was received)."""
        if not self.last_sr_ntp32:
            return 0
        return max(0, min(0xFFFF_FFFF, int((now - self.last_sr_arrival) * 65536)))

    def summary(self) -> dict[str, float | int]:
        """Figures for the per-call hang-up log line."""
        return {
            "rx_packets": self.packets,
            "rx_octets": self.octets,
            "rx_lost": self.lost,
            "rx_duplicates": self.duplicates,
            "rx_late": self.late,
            "rx_jitter_ms": round(self.jitter_ms, 2),
            "rx_concealed": self.concealed,
        }


@dataclass(slots=True)
class SendStats:
    """What we sent, and the peer's reported view of it."""

    packets: int = 0
    octets: int = 0
    remote_fraction_lost: float = 0.0  # 0.0 .. 1.0
    remote_cumulative_lost: int = 0
    remote_jitter: int = 0  # timestamp units, as reported
    rtt: float | None = None  # seconds, from the last report carrying LSR
    reports: int = 0

    def on_sent(self, payload_len: int) -> None:
        """Account for one sent packet."""
        self.packets += 1
        self.octets += payload_len

    def on_report(
        self,
        fraction_lost: int,
        cumulative_lost: int,
        jitter: int,
        *,
        lsr: int,
        dlsr: int,
        now_ntp32: int,
    ) -> None:
        """The peer's report block about our stream; ``now_ntp32`` is our middle-32 NTP time."""
        self.reports += 1
        self.remote_fraction_lost = fraction_lost / 256.0
        self.remote_cumulative_lost = cumulative_lost
        self.remote_jitter = jitter
        if lsr:
            # §6.4.1: RTT = A − LSR − DLSR, all in 1/65536 s, modulo 2**32.
            # A negative result (clock error) counts as zero rather than as ~18 hours.
            raw = ((now_ntp32 - lsr - dlsr + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
            self.rtt = max(0, raw) / 65536.0

    def summary(self) -> dict[str, float | int | None]:
        """Figures for the per-call hang-up log line."""
        return {
            "tx_packets": self.packets,
            "tx_octets": self.octets,
            "remote_fraction_lost": round(self.remote_fraction_lost, 4),
            "remote_jitter": self.remote_jitter,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
        }
