"""RTP data packets (RFC 3550 §5.1, §5.3.1, appendix A.1) with scalar and batch forms.

Theory of operation
-------------------
``RtpPacket`` is the wire type: ``RtpPacket.parse(data)`` (or the module-level ``parse``) checks
the version, every length (CSRC list, header extension, padding count) before slicing and raises
``MediaParseError`` naming what is wrong; ``bytes(pkt)`` serialises it again.

Sequence numbers wrap at 2**16 and timestamps at 2**32; ``seq_delta``/``ts_delta`` give the
signed distance between two of them (positive when the first is ahead).

``SequenceTracker`` is the receiver's per-source bookkeeping of appendix A.1 (probation of
``MIN_SEQUENTIAL`` packets, ``MAX_DROPOUT``/``MAX_MISORDER``, wrap cycles, a restart after two
sequential packets far from the expected sequence) extended with a bitmap of recent sequence
numbers so duplicates and late (reordered) packets are told apart and counted. A new SSRC starts
a new source.

``RtpStream`` is the sender's state: SSRC, next sequence number, timestamp and the marker bit that
flags the first packet and the first packet of each talkspurt after silence (RFC 3551 §4.1).

The engine handles a whole 20 ms tick at once: ``parse_batch`` reads the headers of K received
rows of a preallocated ``(K, MAXLEN)`` buffer with numpy (CSRC, extension and padding offsets
included, vectorised) and ``build_headers`` writes M fixed headers in one go. ``parse_batch``
accepts exactly the packets the scalar ``parse`` accepts.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from media.errors import MediaConfigError, MediaParseError

RTP_VERSION = 2
HEADER_LEN = 12
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
# With rtcp-mux these RTP payload types would collide with RTCP SR..APP (RFC 5761 §4); A.1 asks
# receivers to reject at least SR and RR, and every one of them is an RTCP packet in disguise.
RTCP_COLLIDING_PT = range(72, 77)

_FIXED = struct.Struct("!BBHII")
_EXT_HEAD = struct.Struct("!HH")


def seq_delta(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 16-bit sequence numbers, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 32-bit timestamps, in [-2**31, 2**31 - 1]."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1): 16-bit profile word and a multiple of 4 bytes."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise MediaConfigError(f"RTP extension profile {self.profile} is not 16-bit")
        if len(self.data) % 4 or len(self.data) > 0xFFFF * 4:
            raise MediaConfigError(
                f"RTP extension data of {len(self.data)} bytes is not a multiple of 4 below 2**18"
            )


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding bytes, counting the count byte."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0
    version: int = field(default=RTP_VERSION, init=False)

    def __post_init__(self) -> None:
        _check_range("payload type", self.payload_type, 0x7F)
        _check_range("sequence number", self.sequence, 0xFFFF)
        _check_range("timestamp", self.timestamp, 0xFFFF_FFFF)
        _check_range("SSRC", self.ssrc, 0xFFFF_FFFF)
        _check_range("padding", self.padding, 0xFF)
        if len(self.csrcs) > 15:
            raise MediaConfigError(f"RTP allows 15 CSRCs, got {len(self.csrcs)}")
        for csrc in self.csrcs:
            _check_range("CSRC", csrc, 0xFFFF_FFFF)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raise ``MediaParseError`` for anything malformed."""
        size = len(data)
        if size < HEADER_LEN:
            raise MediaParseError(
                f"RTP packet of {size} bytes is shorter than the {HEADER_LEN}-byte fixed header"
            )
        b0, b1, seq, ts, ssrc = _FIXED.unpack_from(data)
        _check_first_bytes(b0, b1)
        offset = HEADER_LEN + 4 * (b0 & 0x0F)
        if offset > size:
            raise MediaParseError(
                f"RTP CSRC count {b0 & 0x0F} needs {offset} header bytes, packet has {size}"
            )
        csrcs = struct.unpack_from(f"!{b0 & 0x0F}I", data, HEADER_LEN)
        extension = None
        if b0 & 0x10:
            extension, offset = _parse_extension(data, offset)
        end = size
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0:
                raise MediaParseError("RTP padding count 0 is invalid: it counts its own byte")
            if padding > size - offset:
                after = size - offset
                raise MediaParseError(
                    f"RTP padding count {padding} exceeds the {after} bytes after the header"
                )
            end = size - padding
        return cls(
            payload_type=b1 & 0x7F,
            sequence=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(b1 & 0x80),
            csrcs=csrcs,
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        b0 = (RTP_VERSION << 6) | len(self.csrcs)
        b0 |= 0x20 if self.padding else 0
        b0 |= 0x10 if self.extension is not None else 0
        b1 = self.payload_type | (0x80 if self.marker else 0)
        parts = [_FIXED.pack(b0, b1, self.sequence, self.timestamp, self.ssrc)]
        parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXT_HEAD.pack(ext.profile, len(ext.data) // 4) + ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def parse(data: bytes) -> RtpPacket:
    """Parse one RTP packet (same as ``RtpPacket.parse``)."""
    return RtpPacket.parse(data)


def _check_range(what: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise MediaConfigError(f"RTP {what} {value} is outside 0..{top}")


def _check_first_bytes(b0: int, b1: int) -> None:
    if b0 >> 6 != RTP_VERSION:
        raise MediaParseError(f"RTP version {b0 >> 6} (expected {RTP_VERSION})")
    if (b1 & 0x7F) in RTCP_COLLIDING_PT:
        raise MediaParseError(
            f"RTP payload type {b1 & 0x7F} collides with RTCP (an RTCP packet, RFC 5761 §4)"
        )


def _parse_extension(data: bytes, offset: int) -> tuple[RtpExtension, int]:
    size = len(data)
    if offset + 4 > size:
        raise MediaParseError(
            f"RTP header extension needs 4 bytes at offset {offset}, packet has {size}"
        )
    profile, words = _EXT_HEAD.unpack_from(data, offset)
    end = offset + 4 + 4 * words
    if end > size:
        raise MediaParseError(
            f"RTP header extension of {words} words needs {end} bytes, packet has {size}"
        )
    return RtpExtension(profile, bytes(data[offset + 4 : end])), end


# --------------------------------------------------------------------------- receiver (A.1)


class SeqVerdict(enum.Enum):
    """What ``SequenceTracker.update`` concluded about one packet."""

    PROBATION = "probation"  # new source, not yet MIN_SEQUENTIAL packets in a row
    IN_ORDER = "in_order"  # ahead of every packet so far (gaps are losses until filled)
    LATE = "late"  # behind the highest sequence, not seen before: reordered
    DUPLICATE = "duplicate"  # seen before
    JUMP = "jump"  # far from the expected sequence: dropped unless the next one confirms
    RESTART = "restart"  # the source restarted its sequence (or changed SSRC): counters reset


_WINDOW = 256  # > MAX_MISORDER: every packet that can be late falls inside the bitmap


@dataclass(slots=True)
class SequenceTracker:
    """Appendix A.1 ``update_seq`` per source, with duplicate and late counting.

    ``received`` follows A.1 (it includes late packets but not duplicates, which are counted
    apart); ``expected`` is ``extended_max - base + 1``.
    """

    ssrc: int | None = None
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    bad_seq: int = SEQ_MOD + 1
    probation: int = MIN_SEQUENTIAL
    received: int = 0
    duplicates: int = 0
    late: int = 0
    restarts: int = 0
    _seen: int = 0  # bit i set: extended_max - i was received

    @property
    def extended_max(self) -> int:
        """The extended highest sequence number received (cycles + max_seq)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected from the base sequence to the highest received."""
        return 0 if self.probation else self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Packets expected but never received (never negative)."""
        return max(0, self.expected - self.received)

    def update(self, ssrc: int, seq: int) -> SeqVerdict:
        """Account for one packet; return what it was (see ``SeqVerdict``)."""
        if ssrc != self.ssrc:
            self._new_source(ssrc, seq)
        if self.probation:
            return self._probation(seq)
        udelta = (seq - self.max_seq) & 0xFFFF
        if 0 < udelta < MAX_DROPOUT:
            return self._advance(seq, udelta)
        if udelta == 0 or udelta > SEQ_MOD - MAX_MISORDER:
            return self._behind((SEQ_MOD - udelta) & 0xFFFF)
        return self._jump(seq)

    def _new_source(self, ssrc: int, seq: int) -> None:
        if self.ssrc is not None:
            self.restarts += 1
        self.ssrc = ssrc
        self.probation = MIN_SEQUENTIAL
        self.max_seq = (seq - 1) & 0xFFFF

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.duplicates = 0
        self.late = 0
        self._seen = 1

    def _probation(self, seq: int) -> SeqVerdict:
        if seq == (self.max_seq + 1) & 0xFFFF:
            self.probation -= 1
            self.max_seq = seq
            if self.probation == 0:
                # A.1 counts only this packet; the earlier ones were checked, not counted.
                self._init_seq(seq)
                self.received = 1
                return SeqVerdict.RESTART
            return SeqVerdict.PROBATION
        self.probation = MIN_SEQUENTIAL - 1
        self.max_seq = seq
        return SeqVerdict.PROBATION

    def _advance(self, seq: int, udelta: int) -> SeqVerdict:
        if seq < self.max_seq:
            self.cycles += SEQ_MOD
        self.max_seq = seq
        self._seen = ((self._seen << udelta) | 1) & ((1 << _WINDOW) - 1)
        self.received += 1
        return SeqVerdict.IN_ORDER

    def _behind(self, back: int) -> SeqVerdict:
        bit = 1 << back
        if self._seen & bit:
            self.duplicates += 1
            return SeqVerdict.DUPLICATE
        self._seen |= bit
        self.received += 1
        self.late += 1
        return SeqVerdict.LATE

    def _jump(self, seq: int) -> SeqVerdict:
        if seq == self.bad_seq:
            # Two sequential packets after a big jump: the source restarted (A.1).
            self._init_seq(seq)
            self.received = 1
            self.restarts += 1
            return SeqVerdict.RESTART
        self.bad_seq = (seq + 1) & 0xFFFF
        return SeqVerdict.JUMP


# --------------------------------------------------------------------------- sender


@dataclass(slots=True)
class RtpStream:
    """Sender state of one outgoing stream (RFC 3550 §5.1, RFC 3551 §4.1 marker use)."""

    ssrc: int
    payload_type: int
    sequence: int
    timestamp: int
    _marker: bool = True  # the first packet of the stream starts a talkspurt
    packets: int = 0
    octets: int = 0

    @classmethod
    def from_random(cls, randbits: Callable[[int], int], payload_type: int) -> RtpStream:
        """A stream with random SSRC, initial sequence and timestamp (§5.1 asks for random)."""
        return cls(randbits(32), payload_type, randbits(16), randbits(32))

    def next_packet(self, payload: bytes, samples: int) -> RtpPacket:
        """The next packet carrying ``payload`` of ``samples`` samples; advances the state."""
        pkt = RtpPacket(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, payload, self._marker
        )
        self.advance(samples, sent_bytes=len(payload))
        return pkt

    def advance(self, samples: int, sent_bytes: int) -> None:
        """Account for a packet sent elsewhere (the engine's batch path) with these values."""
        self._marker = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFF_FFFF
        self.packets += 1
        self.octets += sent_bytes

    def event_packet(
        self, payload_type: int, timestamp: int, marker: bool, payload: bytes
    ) -> RtpPacket:
        """A named-event packet (RFC 4733 §2.5.1) at the event's fixed start ``timestamp``.

        It takes the stream's next sequence number but leaves the audio timestamp alone: all
        packets of one event share its start timestamp.
        """
        pkt = RtpPacket(payload_type, self.sequence, timestamp, self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packets += 1
        self.octets += len(payload)
        return pkt

    @property
    def marker(self) -> bool:
        """Whether the next packet carries the marker bit."""
        return self._marker

    def skip(self, samples: int) -> None:
        """Silence: ``samples`` pass without a packet; the next packet starts a talkspurt."""
        self.timestamp = (self.timestamp + samples) & 0xFFFF_FFFF
        self._marker = True


# --------------------------------------------------------------------------- batch forms


@dataclass(frozen=True, slots=True)
class RtpBatch:
    """Header fields of K received rows; rows where ``valid`` is False hold garbage fields."""

    valid: NDArray[np.bool_]
    version: NDArray[np.uint8]
    payload_type: NDArray[np.uint8]
    marker: NDArray[np.bool_]
    sequence: NDArray[np.uint16]
    timestamp: NDArray[np.uint32]
    ssrc: NDArray[np.uint32]
    payload_offset: NDArray[np.int32]
    payload_len: NDArray[np.int32]


def _gather_u16(
    buf: NDArray[np.uint8], rows: NDArray[np.intp], at: NDArray[np.int32]
) -> NDArray[np.int32]:
    """Big-endian 16-bit words at per-row column ``at`` (clamped to stay inside the row)."""
    col = np.clip(at, 0, buf.shape[1] - 2)
    return (buf[rows, col].astype(np.int32) << 8) | buf[rows, col + 1]


def parse_batch(buf: NDArray[np.uint8], lengths: NDArray[np.int32]) -> RtpBatch:
    """Parse the headers of every row of ``buf`` (K, MAXLEN) holding ``lengths[k]`` bytes.

    Accepts exactly what ``parse`` accepts; the payload of row k is
    ``buf[k, payload_offset[k] : payload_offset[k] + payload_len[k]]``.
    """
    if buf.ndim != 2 or buf.shape[1] < HEADER_LEN or lengths.shape != (buf.shape[0],):
        raise MediaConfigError(f"parse_batch needs (K, ≥12) rows and K lengths, got {buf.shape}")
    lens = lengths.astype(np.int32)
    rows = np.arange(buf.shape[0])
    b0, b1 = buf[:, 0], buf[:, 1]
    words = np.ascontiguousarray(buf[:, 4:12]).view(">u4").astype(np.uint32)
    pt = b1 & 0x7F
    valid = (lens >= HEADER_LEN) & (lens <= buf.shape[1]) & (b0 >> 6 == RTP_VERSION)
    valid &= (pt < RTCP_COLLIDING_PT.start) | (pt >= RTCP_COLLIDING_PT.stop)
    offset = HEADER_LEN + 4 * (b0 & 0x0F).astype(np.int32)
    valid &= offset <= lens
    has_ext = (b0 & 0x10) != 0
    valid &= ~has_ext | (offset + 4 <= lens)
    ext_end = offset + 4 + 4 * _gather_u16(buf, rows, offset + 2)
    offset = np.where(has_ext, ext_end, offset).astype(np.int32)
    valid &= offset <= lens
    pad = np.where((b0 & 0x20) != 0, buf[rows, np.clip(lens - 1, 0, buf.shape[1] - 1)], 0)
    valid &= ((b0 & 0x20) == 0) | (pad >= 1)
    payload_len = (lens - offset - pad).astype(np.int32)
    valid &= payload_len >= 0
    return RtpBatch(
        valid=valid,
        version=(b0 >> 6).astype(np.uint8),
        payload_type=pt.astype(np.uint8),
        marker=(b1 & 0x80) != 0,
        sequence=((buf[:, 2].astype(np.uint16) << 8) | buf[:, 3]).astype(np.uint16),
        timestamp=words[:, 0],
        ssrc=words[:, 1],
        payload_offset=offset,
        payload_len=payload_len,
    )


def build_headers(
    pt: int | NDArray[np.uint8],
    seq: NDArray[np.uint16],
    ts: NDArray[np.uint32],
    ssrc: NDArray[np.uint32],
    marker: NDArray[np.bool_],
) -> NDArray[np.uint8]:
    """M fixed 12-byte headers (version 2, no CSRC/extension/padding) as an (M, 12) array."""
    m = seq.shape[0]
    out = np.empty((m, HEADER_LEN), dtype=np.uint8)
    out[:, 0] = RTP_VERSION << 6
    out[:, 1] = (np.asarray(pt, dtype=np.uint8) & 0x7F) | (marker.astype(np.uint8) << 7)
    out[:, 2:4] = np.asarray(seq, dtype=np.uint16).astype(">u2").view(np.uint8).reshape(m, 2)
    out[:, 4:8] = np.asarray(ts, dtype=np.uint32).astype(">u4").view(np.uint8).reshape(m, 4)
    out[:, 8:12] = np.asarray(ssrc, dtype=np.uint32).astype(">u4").view(np.uint8).reshape(m, 4)
    return out
