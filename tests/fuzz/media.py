"""Fuzz target ``media``: RTP, RTCP and RFC 4733 bytes through ``media.rtp``, ``media.rtcp`` and
``media.dtmf``.

What it drives
--------------
The input is read three ways, as the engine reads what arrives on a leg's ports:

* one RTP packet: ``RtpPacket.parse`` documents ``MediaParseError``; what parses must serialise
  and parse back to the same packet, and ``parse_batch`` (the engine's vectorised parser, rows
  of ``ROW_LEN`` octets with stale bytes after the packet) must accept exactly the same packets
  with the same header fields and payload — its docstring promises it;
* one RTCP compound packet: ``parse_compound`` documents ``MediaParseError``; what parses must
  build back with ``build_compound`` (no exception: the packets came from a peer, they are not
  "impossible parameters") into a datagram that parses to the same packets, and each SR/RR is
  filed with ``apply_report`` as the engine does;
* a stream of telephone-event packets for one ``DtmfReceiver``: records of ``RECORD`` octets
  ``timestamp(4) flags(1) payload(4)``; flags bit 0 is the RTP marker, bits 1–3 how many 50 ms
  the clock moves before the packet, bit 4 cuts the payload to 3 octets (``feed`` documents
  ``MediaParseError`` for a wrong length); ``poll`` runs after each packet and at the end.  Each
  payload of 4 octets is also parsed alone (``TelephoneEvent.parse``) and must serialise back
  (the R bit aside, which §2.3 says to ignore).

Seeds: every hex vector of ``tests/media/vectors/*.toml`` and the DTMF sequences there, turned
into records.
"""

from __future__ import annotations

import struct
import tomllib
from collections.abc import Iterator
from contextlib import suppress

import numpy as np

from media.dtmf import DtmfReceiver, TelephoneEvent
from media.errors import MediaParseError
from media.rtcp import apply_report, build_compound, parse_compound
from media.rtp import RtpPacket, parse_batch
from media.stats import SendStats
from tests.fuzz.common import NOW, ROOT, InvariantError, hex_values, own_seeds

ROW_LEN = 2048  # conf_server/engine/core.RxBatch rows
STALE = 0xA5  # what fills a batch row after the packet: the engine reuses its buffer
RECORD = struct.Struct("!IB4s")
OUR_SSRC = 0x1234_5678
VECTORS = ROOT / "tests" / "media" / "vectors"


def one_input(data: bytes) -> None:
    _rtp(data)
    _rtcp(data)
    _dtmf(data)


def _rtp(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except MediaParseError:
        packet = None
    if packet is not None:
        wire = bytes(packet)
        if RtpPacket.parse(wire) != packet:
            raise InvariantError("rtp-round-trip", f"{packet} -> {wire[:64].hex()}")
    if len(data) <= ROW_LEN:
        _batch_agrees(data, packet)


def _batch_agrees(data: bytes, packet: RtpPacket | None) -> None:
    buf = np.full((1, ROW_LEN), STALE, dtype=np.uint8)
    buf[0, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    batch = parse_batch(buf, np.array([len(data)], dtype=np.int32))
    if bool(batch.valid[0]) != (packet is not None):
        raise InvariantError(
            "rtp-batch-validity", f"batch valid={bool(batch.valid[0])}, scalar {packet}"
        )
    if packet is None:
        return
    start = int(batch.payload_offset[0])
    got = (
        int(batch.payload_type[0]), bool(batch.marker[0]), int(batch.sequence[0]),
        int(batch.timestamp[0]), int(batch.ssrc[0]),
        buf[0, start : start + int(batch.payload_len[0])].tobytes(),
    )  # fmt: skip
    want = (
        packet.payload_type, packet.marker, packet.sequence, packet.timestamp, packet.ssrc,
        packet.payload,
    )  # fmt: skip
    if got != want:
        raise InvariantError("rtp-batch-fields", f"batch {got[:5]} vs scalar {want[:5]}")


def _rtcp(data: bytes) -> None:
    try:
        packets = parse_compound(data)
    except MediaParseError:
        return
    wire = build_compound(packets)
    try:
        again = parse_compound(wire)
    except MediaParseError as err:
        raise InvariantError("rtcp-reparse", f"{wire[:64].hex()}: {err}") from err
    if again != packets:
        raise InvariantError("rtcp-round-trip", f"{packets} -> {again}")
    stats = SendStats()
    for packet in packets:
        apply_report(stats, OUR_SSRC, packet, now_ntp=0xE3B6_A5C0_8000_0000)


def _dtmf(data: bytes) -> None:
    receiver = DtmfReceiver()
    now = NOW
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        timestamp, flags, payload = RECORD.unpack_from(data, offset)
        now += 0.05 * ((flags >> 1) & 0x07)
        if flags & 0x10:
            payload = payload[:3]
        else:
            _event_round_trip(payload)
        with suppress(MediaParseError):  # documented for a payload that is not 4 octets
            receiver.feed(timestamp, bool(flags & 0x01), payload, now)
        receiver.poll(now)
    receiver.poll(now + 1.0)


def _event_round_trip(payload: bytes) -> None:
    event = TelephoneEvent.parse(payload)
    canonical = payload[:1] + bytes((payload[1] & 0xBF,)) + payload[2:]  # R bit cleared
    if bytes(event) != canonical:
        raise InvariantError("telephone-event-round-trip", f"{payload.hex()} -> {event}")


def seeds() -> Iterator[bytes]:
    for path in sorted(VECTORS.glob("*.toml")):
        vectors = tomllib.loads(path.read_text())
        yield from hex_values(vectors)
        for sequence in vectors.get("sequence", []):
            yield _records(sequence["packets"])
    yield from own_seeds("media")


def _records(packets: list[list[object]]) -> bytes:
    """A DTMF vector sequence ``[timestamp, marker, payload hex, at seconds]`` as records."""
    out = []
    previous = 0.0
    for ts, marker, payload, at in packets:
        assert isinstance(ts, int) and isinstance(payload, str) and isinstance(at, float)
        steps = min(7, round((at - previous) / 0.05))
        previous = at
        out.append(RECORD.pack(ts, int(bool(marker)) | steps << 1, bytes.fromhex(payload)))
    return b"".join(out)
