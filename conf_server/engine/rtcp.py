"""RTCP for the media tick: sender reports with report blocks, and peers' reports read back.

References: RFC 3550 §6.4 (SR and its report blocks: fraction lost over the interval,
cumulative lost, extended highest sequence, jitter, LSR/DLSR), A.3 (expected − received),
§6.2 and A.7 (report interval randomised over [0.5, 1.5] × the nominal interval), §6.5 (CNAME).

Theory of operation. :class:`RtcpBook` keeps the per-slot state RTCP needs beyond the core's
arrays: the middle 32 bits of the last SR heard from the peer (for LSR/DLSR) and the
expected/received figures of the previous report (for the interval's fraction lost). The core
calls :meth:`RtcpBook.due` once per tick; it builds a compound SR+SDES for every slot whose
report time has come, from the jitter bank's counters, and schedules the next one. Reports
received from a peer go through :meth:`RtcpBook.received`, which files SRs and reports about
our SSRC into the slot's ``SendStats``. It is split from ``conf_server.engine.core`` only to keep
both modules short; it reads the core's arrays and owns no clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from media.errors import MediaParseError
from media.jitter import Counter
from media.rtcp import (
    ReportBlock,
    SenderReport,
    SourceDescription,
    apply_report,
    build_compound,
    ntp_from_unix,
    ntp_middle32,
    parse_compound,
)

if TYPE_CHECKING:
    from conf_server.engine.core import MediaCore

RTCP_INTERVAL = 5.0
FRAME = 160


class RtcpBook:
    """Per-slot RTCP state of one :class:`MediaCore` (see module docstring)."""

    def __init__(self, wall_offset: float) -> None:
        self.wall_offset = wall_offset  # wallclock = now + offset, for NTP timestamps
        self.last_sr: dict[int, tuple[int, float]] = {}  # slot -> (LSR, arrival)
        self.rr_prior: dict[int, tuple[int, int]] = {}  # slot -> (expected, received)

    def forget(self, slot: int) -> None:
        """The slot's leg left: its reports' history goes with it."""
        self.last_sr.pop(slot, None)
        self.rr_prior.pop(slot, None)

    def due(self, core: MediaCore, now: float) -> list[tuple[int, bytes]]:
        """Compound reports for every slot whose report time has come, and their next time."""
        due = np.flatnonzero(core.next_rtcp <= now)
        if not len(due):
            return []
        out = []
        ntp = ntp_from_unix(now + self.wall_offset)
        lost = core.lost()
        for slot in due.tolist():
            out.append((slot, self._report(core, slot, now, ntp, int(lost[slot]))))
            core.rtcp_out[slot] += 1
            core.next_rtcp[slot] = now + RTCP_INTERVAL * (0.5 + float(core.random()))
        return out

    def _report(self, core: MediaCore, slot: int, now: float, ntp: int, lost: int) -> bytes:
        blocks = self._report_blocks(core, slot, now, lost)
        sent = int(core.packets_out[slot])
        sr = SenderReport(
            ssrc=int(core.tx_ssrc[slot]),
            ntp_timestamp=ntp,
            rtp_timestamp=int(core.tx_ts[slot]),
            packet_count=sent & 0xFFFF_FFFF,
            octet_count=sent * FRAME & 0xFFFF_FFFF,
            reports=blocks,
        )
        cname = SourceDescription(((int(core.tx_ssrc[slot]), "conf-server"),))
        return build_compound([sr, cname])

    def _report_blocks(
        self, core: MediaCore, slot: int, now: float, lost: int
    ) -> tuple[ReportBlock, ...]:
        jitter = core.jitter
        ssrc = int(jitter.ssrc[slot])
        if ssrc < 0:
            return ()
        expected = int(jitter.max_seq[slot] - jitter.base_seq[slot] + 1)
        received = int(jitter.counters[Counter.RECEIVED, slot])
        prior_e, prior_r = self.rr_prior.get(slot, (0, 0))
        self.rr_prior[slot] = (expected, received)
        interval_e, interval_lost = expected - prior_e, expected - prior_e - (received - prior_r)
        fraction = (
            0
            if interval_e <= 0 or interval_lost <= 0
            else min(255, (interval_lost << 8) // interval_e)
        )
        lsr, arrival = self.last_sr.get(slot, (0, now))
        return (
            ReportBlock(
                ssrc=ssrc,
                fraction_lost=fraction,
                cumulative_lost=max(-0x800000, min(0x7FFFFF, lost)),
                highest_seq=int(jitter.max_seq[slot]) & 0xFFFF_FFFF,
                jitter=int(jitter.jitter[slot]),
                lsr=lsr,
                dlsr=0 if not lsr else min(0xFFFF_FFFF, int((now - arrival) * 65536)),
            ),
        )

    def received(self, core: MediaCore, slot: int, data: bytes, now: float) -> None:
        """A compound packet from the slot's peer: file SRs (for LSR) and reports on us."""
        stats = core.send_stats.get(slot)
        if core.legs[slot] is None or stats is None:
            return
        try:
            packets = parse_compound(data)
        except MediaParseError:
            core.malformed[slot] += 1
            return
        core.rtcp_in[slot] += 1
        now_ntp = ntp_from_unix(now + self.wall_offset)
        for packet in packets:
            if isinstance(packet, SenderReport):
                self.last_sr[slot] = (ntp_middle32(packet.ntp_timestamp), now)
            apply_report(stats, int(core.tx_ssrc[slot]), packet, now_ntp)
