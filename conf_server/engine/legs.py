"""Handles and records of the media engine: legs, playbacks, per-leg summaries, engine stats.

References: RFC 3550 §6.4 (the figures a leg's summary reports: packets, loss, jitter), RFC 4733
(digits come out through ``on_digit``), RFC 3264 §5.1 (a leg's direction decides whether we send).

Theory of operation. These are plain records shared by the live engine
(``conf_server.runtime.engine``), its sans-IO tick (``conf_server.engine.core``) and the file
mixdown (``conf_server.mixdown``). A :class:`Leg` is the handle the call layer keeps: its ``id``,
our RTP ``host`` and ``port`` for the SDP answer, and the slot it occupies in the tick's arrays.
A :class:`Playback` is the handle of a prompt; ``cancel`` only sets a flag that the tick reads,
so it is safe from any thread. :class:`EngineStats` accumulates tick lateness in a fixed
histogram (0.1 ms bins up to 100 ms) so percentiles cost nothing per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from media.dtmf import Digit
from sip.offer_answer import MediaParams

DigitCallback = Callable[[Digit], None]
TalkCallback = Callable[[bool], None]
DoneCallback = Callable[[], None]
RecordCallback = Callable[[NDArray[np.int16]], None]  # a leg's received audio, 8 kHz int16

LATENESS_BIN_MS = 0.1
LATENESS_BINS = 1000  # 100 ms; anything later lands in the last bin (max is kept exactly)


@dataclass(eq=False)
class Leg:
    """One call's media: the handle ``add_leg`` returns."""

    id: int
    host: str
    port: int
    params: MediaParams
    slot: int
    on_digit: DigitCallback
    on_talking: TalkCallback | None = None
    meeting: str | None = None
    removed: bool = False


@dataclass(eq=False)
class Playback:
    """A prompt or tone sequence being played; ``cancel`` stops it at the next tick."""

    on_done: DoneCallback | None = None
    cancelled: bool = False
    finished: bool = False

    def cancel(self) -> None:
        """Stop the playback at the next tick (``on_done`` is not called for a cancel)."""
        self.cancelled = True


@dataclass(frozen=True, slots=True)
class LegSummary:
    """What the hang-up log line reports about a leg's media."""

    leg_id: int
    packets_in: int
    packets_out: int
    lost: int
    jitter_ms: float
    late: int
    concealed: int
    foreign_dropped: int
    malformed: int
    digits: int
    rtcp_in: int
    rtcp_out: int
    remote_fraction_lost: float | None
    rtt_ms: float | None

    def as_log(self) -> dict[str, float | int | None]:
        """Fields for the ``media.summary`` log line."""
        return {
            "leg": self.leg_id,
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "lost": self.lost,
            "jitter_ms": self.jitter_ms,
            "late": self.late,
            "concealed": self.concealed,
            "foreign_dropped": self.foreign_dropped,
            "malformed": self.malformed,
            "digits": self.digits,
            "rtcp_in": self.rtcp_in,
            "rtcp_out": self.rtcp_out,
            "remote_fraction_lost": self.remote_fraction_lost,
            "rtt_ms": self.rtt_ms,
        }


@dataclass(eq=False)
class EngineStats:
    """Tick counters and the lateness distribution of the engine's clock."""

    ticks: int = 0
    overruns: int = 0
    packets_in: int = 0
    packets_out: int = 0
    packets_expected: int = 0  # one per sending leg per tick
    foreign_dropped: int = 0
    tick_errors: int = 0  # ticks that raised (logged as engine.tick_failed)
    skipped: int = 0  # ticks dropped after an overrun, never run (their packets were not sent)
    max_lateness_ms: float = 0.0
    histogram: NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(LATENESS_BINS, dtype=np.int64)
    )

    def record_lateness(self, lateness_s: float) -> None:
        """Account one tick that started ``lateness_s`` after its deadline."""
        ms = max(0.0, lateness_s * 1000.0)
        self.max_lateness_ms = max(self.max_lateness_ms, ms)
        self.histogram[min(int(ms / LATENESS_BIN_MS), LATENESS_BINS - 1)] += 1

    def percentile_ms(self, q: float) -> float:
        """Upper edge of the histogram bin holding the ``q``-th percentile (0 < q ≤ 100)."""
        total = int(self.histogram.sum())
        if total == 0:
            return 0.0
        rank = np.searchsorted(np.cumsum(self.histogram), q / 100.0 * total)
        return min(float(rank + 1) * LATENESS_BIN_MS, self.max_lateness_ms)

    @property
    def p50_ms(self) -> float:
        """Median tick lateness."""
        return self.percentile_ms(50.0)

    @property
    def p99_ms(self) -> float:
        """99th percentile of tick lateness."""
        return self.percentile_ms(99.0)
