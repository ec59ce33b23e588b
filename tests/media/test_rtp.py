"""RTP wire format, wrap arithmetic, A.1 sequence tracking, sender state and the batch forms."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import rtp
from media.errors import MediaConfigError, MediaParseError
from media.rtp import RtpExtension, RtpPacket, SequenceTracker, SeqVerdict

VECTORS = tomllib.loads((Path(__file__).parent / "vectors" / "rtp.toml").read_text("utf-8"))


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize("vec", VECTORS["packet"], ids=lambda v: v["name"])
def test_golden_packet_fields_and_round_trip(vec: dict[str, Any]) -> None:
    data = _hex(vec["hex"])
    pkt = rtp.parse(data)
    assert pkt.version == 2
    assert pkt.payload_type == vec["payload_type"]
    assert pkt.marker is vec["marker"]
    assert pkt.sequence == vec["sequence"]
    assert pkt.timestamp == vec["timestamp"]
    assert pkt.ssrc == vec["ssrc"]
    assert list(pkt.csrcs) == vec["csrcs"]
    assert pkt.payload == _hex(vec["payload"])
    assert pkt.padding == vec["padding"]
    if "extension_profile" in vec:
        assert pkt.extension == RtpExtension(vec["extension_profile"], _hex(vec["extension_data"]))
    else:
        assert pkt.extension is None
    assert bytes(pkt) == data


@pytest.mark.parametrize("vec", VECTORS["error"], ids=lambda v: v["message"])
def test_golden_error_messages(vec: dict[str, str]) -> None:
    with pytest.raises(MediaParseError) as info:
        RtpPacket.parse(_hex(vec["hex"]))
    assert vec["message"] in str(info.value)


def test_constructor_rejects_out_of_range_fields() -> None:
    with pytest.raises(MediaConfigError, match=r"sequence number 65536 is outside 0\.\.65535"):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(MediaConfigError, match="15 CSRCs, got 16"):
        RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16)))
    with pytest.raises(MediaConfigError, match="not a multiple of 4"):
        RtpExtension(1, b"abc")


# --------------------------------------------------------------------------- properties

u32 = st.integers(0, 0xFFFF_FFFF)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127).filter(lambda pt: pt not in rtp.RTCP_COLLIDING_PT),
    sequence=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(RtpExtension, st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b * 4)),
    padding=st.integers(0, 255),
)


@given(packets)
def test_parse_of_build_is_identity(pkt: RtpPacket) -> None:
    assert rtp.parse(bytes(pkt)) == pkt


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_errors(data: bytes) -> None:
    try:
        pkt = rtp.parse(data)
    except MediaParseError:
        return
    assert len(bytes(pkt)) == len(data)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_seq_delta_inverts_addition(a: int, b: int) -> None:
    d = rtp.seq_delta(a, b)
    assert -32768 <= d <= 32767
    assert (b + d) & 0xFFFF == a


@given(u32, u32)
def test_ts_delta_inverts_addition(a: int, b: int) -> None:
    d = rtp.ts_delta(a, b)
    assert -(2**31) <= d < 2**31
    assert (b + d) & 0xFFFF_FFFF == a


def test_wrap_deltas_at_the_edges() -> None:
    assert rtp.seq_delta(0, 65535) == 1
    assert rtp.seq_delta(65535, 0) == -1
    assert rtp.ts_delta(80, 0xFFFF_FFB0) == 160


# --------------------------------------------------------------------------- batch forms

MAXLEN = 96


def _batch_of(datas: list[bytes]) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], Any]:
    buf = np.zeros((len(datas), MAXLEN), dtype=np.uint8)
    lengths = np.zeros(len(datas), dtype=np.int32)
    for i, data in enumerate(datas):
        buf[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
        lengths[i] = len(data)
    return buf, lengths


def _mutate(data: bytes, cut: int, flip_at: int, flip: int) -> bytes:
    raw = bytearray(data[: max(0, len(data) - cut)])
    if raw:
        raw[flip_at % len(raw)] ^= flip
    return bytes(raw)


mutated = st.builds(
    _mutate,
    packets.map(bytes).filter(lambda b: len(b) <= MAXLEN),
    st.integers(0, 6),
    st.integers(0, 200),
    st.sampled_from([0, 0, 0x0F, 0x10, 0x20, 0x40, 0x80, 0xFF, 0x03]),
)


@settings(max_examples=200)
@given(st.lists(mutated | st.binary(max_size=MAXLEN), min_size=1, max_size=12))
def test_parse_batch_agrees_with_scalar_parse(datas: list[bytes]) -> None:
    batch = rtp.parse_batch(*_batch_of(datas))
    buf, _ = _batch_of(datas)
    for i, data in enumerate(datas):
        try:
            pkt = rtp.parse(data)
        except MediaParseError:
            assert not batch.valid[i], data.hex()
            continue
        assert batch.valid[i], data.hex()
        assert int(batch.payload_type[i]) == pkt.payload_type
        assert bool(batch.marker[i]) is pkt.marker
        assert int(batch.sequence[i]) == pkt.sequence
        assert int(batch.timestamp[i]) == pkt.timestamp
        assert int(batch.ssrc[i]) == pkt.ssrc
        off, n = int(batch.payload_offset[i]), int(batch.payload_len[i])
        assert bytes(buf[i, off : off + n]) == pkt.payload


def test_parse_batch_golden_rows_and_shape_check() -> None:
    datas = [_hex(v["hex"]) for v in VECTORS["packet"]] + [_hex(v["hex"]) for v in VECTORS["error"]]
    batch = rtp.parse_batch(*_batch_of(datas))
    n_ok = len(VECTORS["packet"])
    assert batch.valid.tolist() == [True] * n_ok + [False] * len(VECTORS["error"])
    assert batch.payload_offset[:n_ok].tolist() == [12, 20, 20, 12, 20]
    assert batch.payload_len[:n_ok].tolist() == [4, 2, 3, 4, 2]
    with pytest.raises(MediaConfigError, match="parse_batch needs"):
        rtp.parse_batch(np.zeros((2, 8), dtype=np.uint8), np.zeros(2, dtype=np.int32))


@given(
    st.lists(
        st.tuples(st.integers(0, 127), st.integers(0, 0xFFFF), u32, u32, st.booleans()),
        min_size=1,
        max_size=20,
    )
)
def test_build_headers_matches_scalar_bytes(rows: list[tuple[int, int, int, int, bool]]) -> None:
    pts = np.array([r[0] for r in rows], dtype=np.uint8)
    got = rtp.build_headers(
        pts,
        np.array([r[1] for r in rows], dtype=np.uint16),
        np.array([r[2] for r in rows], dtype=np.uint32),
        np.array([r[3] for r in rows], dtype=np.uint32),
        np.array([r[4] for r in rows], dtype=np.bool_),
    )
    assert got.shape == (len(rows), 12)
    for i, (pt, seq, ts, ssrc, marker) in enumerate(rows):
        assert bytes(got[i]) == bytes(RtpPacket(pt, seq, ts, ssrc, marker=marker))


def test_build_headers_with_scalar_payload_type() -> None:
    got = rtp.build_headers(
        0,
        np.array([1, 2], dtype=np.uint16),
        np.array([160, 320], dtype=np.uint32),
        np.array([7, 7], dtype=np.uint32),
        np.array([True, False]),
    )
    assert bytes(got[0]).hex() == "80800001000000a000000007"
    assert bytes(got[1]).hex() == "800000020000014000000007"


# --------------------------------------------------------------------------- A.1 tracker


def _feed(tracker: SequenceTracker, seqs: list[int], ssrc: int = 9) -> list[SeqVerdict]:
    return [tracker.update(ssrc, s) for s in seqs]


def test_probation_then_in_order_and_a_loss() -> None:
    t = SequenceTracker()
    verdicts = _feed(t, [100, 101, 102, 104])
    assert verdicts == [
        SeqVerdict.PROBATION,
        SeqVerdict.RESTART,
        SeqVerdict.IN_ORDER,
        SeqVerdict.IN_ORDER,
    ]
    assert (t.base_seq, t.extended_max, t.received, t.expected, t.lost) == (101, 104, 3, 4, 1)


def test_probation_restarts_when_not_sequential() -> None:
    t = SequenceTracker()
    assert _feed(t, [10, 50, 51]) == [
        SeqVerdict.PROBATION,
        SeqVerdict.PROBATION,
        SeqVerdict.RESTART,
    ]
    assert t.base_seq == 51


def test_wrap_counts_a_cycle() -> None:
    t = SequenceTracker()
    _feed(t, [65533, 65534, 65535, 0, 1])
    assert t.cycles == 65536
    assert t.extended_max == 65536 + 1
    assert (t.received, t.lost) == (4, 0)


def test_duplicates_and_late_packets_are_told_apart() -> None:
    t = SequenceTracker()
    verdicts = _feed(t, [1, 2, 4, 5, 3, 3, 5])
    assert verdicts[4:] == [SeqVerdict.LATE, SeqVerdict.DUPLICATE, SeqVerdict.DUPLICATE]
    assert (t.late, t.duplicates, t.received, t.lost) == (1, 2, 4, 0)


def test_big_jump_is_dropped_until_confirmed_then_restarts() -> None:
    t = SequenceTracker()
    _feed(t, [1, 2, 3])
    assert t.update(9, 20000) is SeqVerdict.JUMP
    assert t.received == 2
    assert t.update(9, 20001) is SeqVerdict.RESTART
    assert (t.base_seq, t.received, t.restarts) == (20001, 1, 1)


def test_ssrc_change_resets_the_source() -> None:
    t = SequenceTracker()
    _feed(t, [1, 2, 3])
    assert _feed(t, [500, 501], ssrc=10) == [SeqVerdict.PROBATION, SeqVerdict.RESTART]
    assert (t.ssrc, t.base_seq, t.received, t.restarts) == (10, 501, 1, 1)


@given(
    start=st.integers(0, 0xFFFF),
    n=st.integers(3, 300),
    drops=st.sets(st.integers(2, 299)),
    dups=st.sets(st.integers(2, 299)),
    swaps=st.sets(st.integers(2, 298)),
)
def test_tracker_counts_match_the_truth(
    start: int, n: int, drops: set[int], dups: set[int], swaps: set[int]
) -> None:
    order = list(range(n))
    for i in sorted(swaps):
        if i + 1 < n:
            order[i], order[i + 1] = order[i + 1], order[i]
    sent: list[int] = []
    for i in order:
        if i not in drops:
            # A duplicate arrives right behind its original: well within MAX_MISORDER.
            sent += [i, i] if i in dups else [i]
    t = SequenceTracker()
    _feed(t, [(start + i) & 0xFFFF for i in sent])
    # The first packet is spent on probation (A.1); every other unique packet is counted once.
    assert sent[:2] == [0, 1]  # drops, duplicates and swaps start at index 2
    unique = set(sent) - {0}
    assert t.received == len(unique)
    assert t.duplicates == len(sent) - len(set(sent))
    assert t.expected == max(unique)
    assert t.lost == max(unique) - len(unique)


# --------------------------------------------------------------------------- sender


def test_stream_marks_first_packet_and_talkspurts_and_wraps() -> None:
    s = rtp.RtpStream(ssrc=5, payload_type=0, sequence=65535, timestamp=0xFFFF_FFC0)
    first = s.next_packet(b"\xff" * 160, 160)
    second = s.next_packet(b"\xff" * 160, 160)
    assert (first.marker, first.sequence, first.timestamp) == (True, 65535, 0xFFFF_FFC0)
    assert (second.marker, second.sequence, second.timestamp) == (False, 0, 0x60)
    s.skip(160 * 10)
    third = s.next_packet(b"\xff" * 160, 160)
    assert (third.marker, third.sequence, third.timestamp) == (True, 1, 0x60 + 160 * 11)
    assert (s.packets, s.octets, s.marker) == (3, 480, False)


def test_stream_from_random_uses_the_injected_source() -> None:
    values = iter([0xAABBCCDD, 0x1234, 0x55667788])
    s = rtp.RtpStream.from_random(lambda bits: next(values) & ((1 << bits) - 1), 8)
    assert (s.ssrc, s.sequence, s.timestamp, s.payload_type) == (0xAABBCCDD, 0x1234, 0x55667788, 8)
