"""RTCP packets: golden compounds, error messages, round trips, reports from and into stats."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import rtcp
from media.errors import MediaConfigError, MediaParseError
from media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpScheduler,
    RtcpUnknown,
    SenderReport,
    SourceDescription,
)
from media.stats import ReceiveStats, SendStats

VECTORS = tomllib.loads((Path(__file__).parent / "vectors" / "rtcp.toml").read_text("utf-8"))


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_golden_sr_and_sdes() -> None:
    vec = VECTORS["compound"][0]
    data = _hex(vec["hex"])
    sr, sdes = rtcp.parse_compound(data)
    assert sr == SenderReport(
        vec["sr_ssrc"],
        vec["ntp"],
        vec["rtp_timestamp"],
        vec["packet_count"],
        vec["octet_count"],
        (ReportBlock(*vec["block"]),),
    )
    assert sdes == SourceDescription(((vec["sr_ssrc"], vec["cname"]),))
    assert rtcp.build_compound([sr, sdes]) == data


def test_golden_rr_and_bye() -> None:
    vec = VECTORS["compound"][1]
    data = _hex(vec["hex"])
    rr, bye = rtcp.parse_compound(data)
    assert rr == ReceiverReport(vec["rr_ssrc"], (ReportBlock(*vec["block"]),))
    assert bye == Bye(tuple(vec["bye"]), vec["reason"])
    assert rtcp.build_compound([rr, bye]) == data


@pytest.mark.parametrize("vec", VECTORS["error"], ids=lambda v: v["message"])
def test_golden_errors(vec: dict[str, str]) -> None:
    with pytest.raises(MediaParseError) as info:
        rtcp.parse_compound(_hex(vec["hex"]))
    assert str(info.value) == vec["message"]


def test_empty_datagram_and_unknown_types() -> None:
    with pytest.raises(MediaParseError, match="RTCP datagram is empty"):
        rtcp.parse_compound(b"")
    app = RtcpUnknown(204, 3, b"name" + b"\x01\x02\x03\x04")
    packets = rtcp.parse_compound(bytes(ReceiverReport(1)) + bytes(app))
    assert packets == [ReceiverReport(1), app]


def test_build_rejects_bad_compounds() -> None:
    with pytest.raises(MediaConfigError, match="must start with SR or RR"):
        rtcp.build_compound([Bye((1,))])
    with pytest.raises(MediaConfigError, match="CNAME of 300 bytes"):
        bytes(SourceDescription(((1, "x" * 300),)))


u32 = st.integers(0, 0xFFFF_FFFF)
blocks = st.builds(
    ReportBlock, u32, st.integers(0, 255), st.integers(-(2**23), 2**23 - 1), u32, u32, u32, u32
)
block_lists = st.lists(blocks, max_size=31).map(tuple)
text = st.text(max_size=40).filter(lambda t: len(t.encode()) <= 255)
reports = st.builds(SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, block_lists) | (
    st.builds(ReceiverReport, u32, block_lists)
)
others = (
    st.builds(SourceDescription, st.lists(st.tuples(u32, text), max_size=5).map(tuple))
    | st.builds(Bye, st.lists(u32, max_size=5).map(tuple), text)
    | st.builds(
        RtcpUnknown,
        st.integers(204, 207),
        st.integers(0, 31),
        st.binary(max_size=16).map(lambda b: b * 4),
    )
)


@given(reports, st.lists(others, max_size=4))
def test_parse_of_build_is_identity(first: Any, rest: list[Any]) -> None:
    packets = [first, *rest]
    assert rtcp.parse_compound(rtcp.build_compound(packets)) == packets


# ------------------------------------------------------------------ parse → build → parse

# Long ones too: 86+ octets that are not UTF-8 broke the build (the vectors below).
_octets = st.binary(max_size=255) | st.binary(min_size=86, max_size=255)
_Body = tuple[int, int, bytes]  # packet type, count, body


@st.composite
def _reports(draw: st.DrawFn) -> _Body:
    """SR or RR with a few report blocks and perhaps extension octets (§6.4.1)."""
    pt, count = draw(st.sampled_from([200, 201])), draw(st.integers(0, 3))
    size = (24 if pt == 200 else 4) + 24 * count
    return pt, count, draw(st.binary(min_size=size, max_size=size + 12))


@st.composite
def _sdes(draw: st.DrawFn) -> _Body:
    """SDES chunks of arbitrary items (CNAME or not, any octets), each null-terminated."""
    items = st.lists(st.tuples(st.just(1) | st.integers(2, 255), _octets), max_size=3)
    chunks = draw(st.lists(st.tuples(u32, items), max_size=4))
    body = b""
    for ssrc, chunk_items in chunks:
        chunk = ssrc.to_bytes(4, "big")
        chunk += b"".join(bytes((kind, len(text))) + text for kind, text in chunk_items) + b"\0"
        body += chunk + bytes(-len(chunk) % 4)
    return 202, len(chunks), body


@st.composite
def _byes(draw: st.DrawFn) -> _Body:
    ssrcs = draw(st.lists(u32, max_size=4))
    reason = draw(st.none() | _octets)
    body = b"".join(s.to_bytes(4, "big") for s in ssrcs)
    if reason is not None:
        body += bytes((len(reason),)) + reason
    return 203, len(ssrcs), body


_anything = st.tuples(st.integers(0, 255), st.integers(0, 31), st.binary(max_size=80))


@st.composite
def _datagrams(draw: st.DrawFn) -> bytes:
    """Compounds that often parse: SR/RR first, then anything, perhaps padded at the end."""
    parts = [draw(_reports() | _anything)]
    parts += draw(st.lists(_reports() | _sdes() | _byes() | _anything, max_size=3))
    out = b""
    for i, (pt, count, raw) in enumerate(parts):
        body = raw + bytes(-len(raw) % 4)
        padded = i == len(parts) - 1 and draw(st.booleans())
        if padded:  # RFC 3550 §6.1: the last octet counts the octets to strip, itself included
            body += bytes(4)
            body = body[:-1] + bytes((draw(st.integers(1, min(len(body), 255))),))
        b0 = 0x80 | (0x20 if padded else 0) | count
        out += bytes((b0, pt)) + (len(body) // 4).to_bytes(2, "big") + body
    return out


@settings(max_examples=500)
@given(st.binary(max_size=200) | _datagrams())
def test_whatever_parses_builds_back_to_the_same_packets(data: bytes) -> None:
    """Any bytes: if ``parse_compound`` accepts them, ``build_compound`` can rebuild them."""
    try:
        packets = rtcp.parse_compound(data)
    except MediaParseError:
        return
    assert rtcp.parse_compound(rtcp.build_compound(packets)) == packets


# Found by fuzzing: each of these parsed, but could not be built again or came back changed.
APP_PADDED = "80c90001 00000001  a3cc0002 41424344 45000003"
CNAME_86_OCTETS = "80c90001 00000001  81ca0018 00000002 0156" + "ff" * 86 + "00000000"
BYE_REASON_100_OCTETS = "80c90001 00000001  81cb001b 00000003 64" + "fe" * 100 + "000000"


def test_unknown_packet_with_padding_builds_with_padding_again() -> None:
    data = _hex(APP_PADDED)
    packets = rtcp.parse_compound(data)
    assert packets == [ReceiverReport(1), RtcpUnknown(204, 3, b"ABCDE")]
    assert rtcp.build_compound(packets) == data  # RFC 3550 §6.1: P bit, last octet counts 3


def test_cname_of_86_non_utf8_octets_round_trips_losslessly() -> None:
    data = _hex(CNAME_86_OCTETS)
    rr, sdes = rtcp.parse_compound(data)
    assert sdes == SourceDescription(((2, "\udcff" * 86),))  # the octets, surrogate-escaped
    assert rtcp.build_compound([rr, sdes]) == data


def test_bye_reason_of_100_non_utf8_octets_comes_back_whole() -> None:
    data = _hex(BYE_REASON_100_OCTETS)
    rr, bye = rtcp.parse_compound(data)
    assert bye == Bye((3,), "\udcfe" * 100)
    assert rtcp.build_compound([rr, bye]) == data


def test_build_refuses_what_it_cannot_put_on_the_wire() -> None:
    with pytest.raises(MediaConfigError, match="only allowed on the last packet"):
        rtcp.build_compound([ReceiverReport(1), RtcpUnknown(204, 0, b"abc"), Bye((1,))])
    with pytest.raises(MediaConfigError, match="BYE reason of 256 bytes exceeds 255"):
        bytes(Bye((1,), "x" * 256))
    with pytest.raises(MediaConfigError, match="SDES CNAME holds a lone surrogate"):
        bytes(SourceDescription(((1, "\ud800"),)))
    with pytest.raises(MediaConfigError, match="BYE reason holds a lone surrogate"):
        bytes(Bye((1,), "\ud800"))


@given(st.binary(max_size=120))
def test_random_bytes_raise_only_parse_errors(data: bytes) -> None:
    try:
        rtcp.parse_compound(data)
    except MediaParseError:
        return


@given(st.binary(max_size=60))
def test_random_bodies_behind_a_valid_header_raise_only_parse_errors(body: bytes) -> None:
    body = body + bytes(-len(body) % 4)
    for pt in (200, 201, 202, 203):
        for count in (0, 1, 2, 31):
            data = (
                bytes(ReceiverReport(1))
                + bytes([0x80 | count, pt])
                + (len(body) // 4).to_bytes(2, "big")
                + body
            )
            try:
                rtcp.parse_compound(data)
            except MediaParseError:
                continue


def test_ntp_conversion() -> None:
    assert rtcp.ntp_from_unix(0.0) == 2_208_988_800 << 32
    assert rtcp.ntp_from_unix(1.5) == (2_208_988_801 << 32) | 0x8000_0000
    assert rtcp.ntp_middle32(0x0123_4567_89AB_CDEF) == 0x4567_89AB


def test_report_round_trip_gives_loss_jitter_and_rtt() -> None:
    # Leg B receives our stream (with one loss) and our SR; its RR comes back to us.
    rx = ReceiveStats()
    for i, seq in enumerate([10, 11, 12, 14]):
        rx.on_packet(0xA, seq, 160 * seq, 160, arrival=100.0 + 0.02 * seq + (0.01 if i == 3 else 0))
    our_ntp_at_sr = rtcp.ntp_from_unix(1_700_000_000.0)
    rx.on_sender_report(our_ntp_at_sr, arrival=101.0)
    block = rtcp.report_block(rx, now=101.25)  # B answers 250 ms after the SR
    assert block.ssrc == 0xA
    assert block.highest_seq == 14
    assert block.cumulative_lost == 1
    assert block.fraction_lost == 256 // 4  # 1 of the 4 expected since the base (11..14)
    assert block.lsr == rtcp.ntp_middle32(our_ntp_at_sr)
    assert block.dlsr == 65536 // 4
    rr = rtcp.parse_compound(bytes(ReceiverReport(0xB, (block,))))[0]
    send = SendStats()
    # It reaches us 400 ms after we sent the SR: RTT = 400 − 250 = 150 ms.
    assert rtcp.apply_report(send, 0xA, rr, rtcp.ntp_from_unix(1_700_000_000.4))
    assert send.rtt == pytest.approx(0.150, abs=1e-4)
    assert send.remote_fraction_lost == 0.25
    assert send.remote_cumulative_lost == 1
    assert send.remote_jitter == block.jitter > 0
    assert not rtcp.apply_report(send, 0xC, rr, 0)
    assert not rtcp.apply_report(send, 0xA, Bye((0xB,)), 0)


def test_report_block_needs_a_stream() -> None:
    with pytest.raises(MediaConfigError, match="not been received"):
        rtcp.report_block(ReceiveStats(), now=0.0)


def test_scheduler_intervals() -> None:
    s = RtcpScheduler(min_interval=5.0)
    assert not s.due(0.0)
    first = s.start(10.0, rand=0.5)
    assert first == pytest.approx(10.0 + 2.5 / (2.718281828 - 1.5), rel=1e-6)
    assert not s.due(first - 0.001)
    assert s.due(first)
    lo = s.sent(20.0, rand=0.0)
    hi = s.sent(20.0, rand=0.999999)
    assert lo == pytest.approx(20.0 + 2.5 / 1.2182818, rel=1e-6)
    assert hi == pytest.approx(20.0 + 7.5 / 1.2182818, rel=1e-5)
    with pytest.raises(MediaConfigError, match="outside"):
        s.sent(0.0, rand=1.0)
