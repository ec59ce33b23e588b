"""RTCP (RFC 3550 §6): SR, RR, SDES CNAME and BYE packets, compound packets, report timing.

Theory of operation
-------------------
Every RTCP packet starts with a 4-byte header: version 2, padding bit, a 5-bit count (report
blocks, SDES chunks or BYE sources) and the packet type, then the length in 32-bit words minus
one. ``parse_compound`` walks a datagram packet by packet, checks every length before slicing,
requires the first packet to be SR or RR (§6.1) and padding only on the last one, and returns
typed packets; types it does not model (APP, feedback, XR) come back as ``RtcpUnknown``.
``bytes()`` of each type builds it; ``build_compound`` concatenates them. Whatever
``parse_compound`` accepts, ``build_compound`` builds back into packets that parse the same:
SDES CNAMEs and BYE reasons are decoded with ``surrogateescape`` (like the SIP layer), so
octets that are not UTF-8 come back unchanged and within the 255-octet limit of their length
octet (§6.5, §6.6); an unknown packet whose padding left a body that is not word-aligned is
padded again (§6.1).

Reports are made from and read into ``media.stats``: ``report_block`` turns a leg's
``ReceiveStats`` into a reception report (A.3 fraction and cumulative loss, extended highest
sequence, A.8 jitter, LSR/DLSR), and ``apply_report`` files a peer's block about our SSRC into
our ``SendStats`` (their loss and jitter, and the round-trip time). NTP times are passed in: the
core has no clock.

``RtcpScheduler`` gives the next send time: the §6.3 deterministic interval (5 s minimum for a
two-party call, the first one halved, §6.3.5), scaled by a random factor in [0.5, 1.5] passed in
as a number in [0, 1), and divided by e − 3/2 (§6.3.1, the timer-reconsideration compensation).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from media.errors import MediaConfigError, MediaParseError
from media.stats import ReceiveStats, SendStats

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
SDES_CNAME = 1
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)

_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IBBHIIII")  # ssrc, fraction, cumulative (24 bits as 8+16), ...
_SR_INFO = struct.Struct("!IQIII")
_WORD = struct.Struct("!I")


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (§4) of a Unix time in seconds."""
    whole = math.floor(seconds)
    return ((whole + NTP_EPOCH_OFFSET) & 0xFFFF_FFFF) << 32 | int((seconds - whole) * 2**32)


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp, as LSR and round-trip times use."""
    return (ntp >> 16) & 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (§6.4.1), 24 bytes on the wire."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number received
    jitter: int
    lsr: int
    dlsr: int

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, frac, hi, lo, ext, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = (hi << 16) | lo
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, frac, cumulative, ext, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        cum = self.cumulative_lost & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc, self.fraction_lost, cum >> 16, cum & 0xFFFF,
            self.highest_seq, self.jitter, self.lsr, self.dlsr,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (§6.4.1): sender info plus reception reports."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = _SR_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        return _packet(PT_SR, len(self.reports), body + b"".join(map(bytes, self.reports)))


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (§6.4.2): reception reports from a participant that does not send."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = _WORD.pack(self.ssrc) + b"".join(map(bytes, self.reports))
        return _packet(PT_RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (§6.5) reduced to what we use: one CNAME per chunk (other items are skipped).

    A CNAME's octets that are not UTF-8 are kept as lone surrogates (``surrogateescape``).
    """

    chunks: tuple[tuple[int, str], ...]

    def __bytes__(self) -> bytes:
        body = b"".join(_sdes_chunk(ssrc, cname) for ssrc, cname in self.chunks)
        return _packet(PT_SDES, len(self.chunks), body)


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (§6.6): the sources leaving, with an optional reason of at most 255 octets.

    Octets of the reason that are not UTF-8 are kept as lone surrogates (``surrogateescape``).
    """

    ssrcs: tuple[int, ...]
    reason: str = ""

    def __bytes__(self) -> bytes:
        body = b"".join(_WORD.pack(s) for s in self.ssrcs)
        if self.reason:
            text = _text_octets(self.reason, "BYE reason")
            body += bytes((len(text),)) + text
            body += bytes(-len(body) % 4)
        return _packet(PT_BYE, len(self.ssrcs), body)


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """A packet type not modelled here (APP, RTPFB, PSFB, XR …), kept as its body."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        """The packet; a body that is not word-aligned (what is left of a padded packet once
        its padding is stripped) gets §6.1 padding again, so it must end a compound."""
        pad = -len(self.body) % 4
        if not pad:
            return _packet(self.packet_type, self.count, self.body)
        body = self.body + bytes(pad - 1) + bytes((pad,))
        return _packet(self.packet_type, self.count, body, padded=True)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpUnknown


def _packet(pt: int, count: int, body: bytes, *, padded: bool = False) -> bytes:
    if count > 31 or len(body) % 4:
        raise MediaConfigError(f"RTCP packet {pt}: count {count} > 31 or body not word-aligned")
    return _HEADER.pack(0x80 | (0x20 if padded else 0) | count, pt, len(body) // 4) + body


def _text_octets(text: str, what: str) -> bytes:
    """The octets of a text field behind a length octet: 255 at most (§6.5, §6.6)."""
    try:
        octets = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise MediaConfigError(f"{what} holds a lone surrogate that stands for no octet") from None
    if len(octets) > 255:
        raise MediaConfigError(f"{what} of {len(octets)} bytes exceeds 255")
    return octets


def _sdes_chunk(ssrc: int, cname: str) -> bytes:
    text = _text_octets(cname, "SDES CNAME")
    chunk = _WORD.pack(ssrc) + bytes((SDES_CNAME, len(text))) + text + b"\0"
    return chunk + bytes(-len(chunk) % 4)


def build_compound(packets: Sequence[RtcpPacket]) -> bytes:
    """A compound packet; the first must be SR or RR (§6.1)."""
    if not packets or not isinstance(packets[0], SenderReport | ReceiverReport):
        raise MediaConfigError("an RTCP compound packet must start with SR or RR")
    wire = [bytes(p) for p in packets]
    if any(data[0] & 0x20 for data in wire[:-1]):
        raise MediaConfigError(
            "RTCP padding is only allowed on the last packet of a compound (§6.1): "
            "an unknown packet with a body that is not word-aligned must come last"
        )
    return b"".join(wire)


# --------------------------------------------------------------------------- parsing


def _parse_sr(count: int, body: bytes) -> SenderReport:
    _need(body, 24 + 24 * count, f"SR with {count} report blocks")
    ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
    blocks = tuple(ReportBlock.parse(body, 24 + 24 * i) for i in range(count))
    return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks)


def _parse_rr(count: int, body: bytes) -> ReceiverReport:
    _need(body, 4 + 24 * count, f"RR with {count} report blocks")
    blocks = tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count))
    return ReceiverReport(_WORD.unpack_from(body)[0], blocks)


def _parse_sdes(count: int, body: bytes) -> SourceDescription:
    chunks = []
    pos = 0
    for _ in range(count):
        _need(body, pos + 4, "SDES chunk SSRC")
        ssrc = _WORD.unpack_from(body, pos)[0]
        pos += 4
        cname = ""
        while True:
            _need(body, pos + 1, "SDES item type")
            item = body[pos]
            if item == 0:
                pos = (pos + 4) & ~3  # the null item, padded to the next word
                _need(body, pos, "SDES chunk padding")
                break
            _need(body, pos + 2, "SDES item header")
            _need(body, pos + 2 + body[pos + 1], "SDES item")
            text = body[pos + 2 : pos + 2 + body[pos + 1]]
            if item == SDES_CNAME:
                cname = text.decode("utf-8", errors="surrogateescape")
            pos += 2 + len(text)
        chunks.append((ssrc, cname))
    return SourceDescription(tuple(chunks))


def _parse_bye(count: int, body: bytes) -> Bye:
    _need(body, 4 * count, f"BYE with {count} sources")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    reason = ""
    if len(body) > 4 * count:
        size = body[4 * count]
        _need(body, 4 * count + 1 + size, "BYE reason")
        reason = body[4 * count + 1 : 4 * count + 1 + size].decode("utf-8", "surrogateescape")
    return Bye(ssrcs, reason)


def _need(body: bytes, size: int, what: str) -> None:
    if size > len(body):
        raise MediaParseError(f"RTCP {what} needs {size} bytes, packet body has {len(body)}")


_PARSERS: dict[int, Callable[[int, bytes], RtcpPacket]] = {
    PT_SR: _parse_sr,
    PT_RR: _parse_rr,
    PT_SDES: _parse_sdes,
    PT_BYE: _parse_bye,
}


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram (§6.1); raise ``MediaParseError`` on any defect."""
    out: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise MediaParseError(
                f"RTCP header needs 4 bytes at offset {pos}, datagram has {len(data)}"
            )
        b0, pt, words = _HEADER.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise MediaParseError(f"RTCP version {b0 >> 6} at offset {pos} (expected 2)")
        end = pos + 4 + 4 * words
        if end > len(data):
            left = len(data) - pos
            raise MediaParseError(
                f"RTCP packet at offset {pos} claims {end - pos} bytes, datagram has {left}"
            )
        body = data[pos + 4 : end]
        if b0 & 0x20:
            body = _strip_padding(body, last=end == len(data))
        if not out and pt not in (PT_SR, PT_RR):
            raise MediaParseError(f"RTCP compound packet starts with type {pt}, not SR or RR")
        parser = _PARSERS.get(pt)
        out.append(parser(b0 & 0x1F, body) if parser else RtcpUnknown(pt, b0 & 0x1F, body))
        pos = end
    if not out:
        raise MediaParseError("RTCP datagram is empty")
    return out


def _strip_padding(body: bytes, *, last: bool) -> bytes:
    if not last:
        raise MediaParseError("RTCP padding is only allowed on the last packet of a compound")
    if not body or not 0 < body[-1] <= len(body):
        count = body[-1] if body else 0
        raise MediaParseError(f"RTCP padding count {count} is invalid for a {len(body)}-byte body")
    return body[: -body[-1]]


# --------------------------------------------------------------------------- reports ↔ stats


def report_block(stats: ReceiveStats, now: float) -> ReportBlock:
    """Our reception report about a leg's incoming stream (advances the A.3 interval)."""
    if stats.seq.ssrc is None:
        raise MediaConfigError("no report block for a stream that has not been received")
    return ReportBlock(
        ssrc=stats.seq.ssrc,
        fraction_lost=stats.interval_loss(),
        cumulative_lost=stats.cumulative_lost,
        highest_seq=stats.seq.extended_max & 0xFFFF_FFFF,
        jitter=int(stats.jitter),
        lsr=stats.last_sr_ntp32,
        dlsr=stats.dlsr(now),
    )


def apply_report(send: SendStats, our_ssrc: int, packet: RtcpPacket, now_ntp: int) -> bool:
    """File the block of an SR/RR that is about ``our_ssrc``; True when one was found."""
    if not isinstance(packet, SenderReport | ReceiverReport):
        return False
    for block in packet.reports:
        if block.ssrc == our_ssrc:
            send.on_report(
                block.fraction_lost,
                block.cumulative_lost,
                block.jitter,
                lsr=block.lsr,
                dlsr=block.dlsr,
                now_ntp32=ntp_middle32(now_ntp),
            )
            return True
    return False


# --------------------------------------------------------------------------- timing


class RtcpScheduler:
    """When to send the next report (§6.3, with the 5 s minimum of §6.2)."""

    COMPENSATION = math.e - 1.5  # §6.3.1: keeps the mean interval after reconsideration

    def __init__(self, min_interval: float = 5.0) -> None:
        if min_interval <= 0:
            raise MediaConfigError(f"RTCP interval {min_interval} s must be positive")
        self._min = min_interval
        self.next_at: float | None = None

    def start(self, now: float, rand: float) -> float:
        """Schedule the first report: half the minimum interval (§6.3.5 ``initial``)."""
        self.next_at = now + self._interval(self._min / 2, rand)
        return self.next_at

    def sent(self, now: float, rand: float) -> float:
        """A report went out at ``now``: schedule the next one."""
        self.next_at = now + self._interval(self._min, rand)
        return self.next_at

    def due(self, now: float) -> bool:
        """Whether a report should be sent now."""
        return self.next_at is not None and now >= self.next_at

    def _interval(self, base: float, rand: float) -> float:
        if not 0.0 <= rand < 1.0:
            raise MediaConfigError(f"RTCP random factor {rand} is outside [0, 1)")
        return base * (0.5 + rand) / self.COMPENSATION
