"""RTP, RTCP and RFC 4733 parsers against hostile datagrams: linear time, only MediaParseError.

A datagram is at most 64 KB; whatever a stranger packs into one is parsed or refused with
``MediaParseError`` in time linear in its size, and what RTCP accepts builds back.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media import rtcp, rtp
from media.dtmf import DtmfReceiver, TelephoneEvent
from media.errors import MediaParseError
from tests.timing import assert_linear, costs

RR = bytes.fromhex("80c90001 00000001")


def _outcome(parse: Callable[[bytes], object], data: bytes) -> object:
    try:
        return parse(data)
    except MediaParseError as exc:
        return exc


def _header(b0: int, pt: int, body: bytes) -> bytes:
    return bytes((b0, pt)) + (len(body) // 4).to_bytes(2, "big") + body


def _sdes_items(n: int) -> bytes:
    """One SDES chunk of ~n octets of empty non-CNAME items, then its null item."""
    body = (1).to_bytes(4, "big") + b"\x02\x00" * (n // 2) + b"\x00"
    return _header(0x81, 202, body + bytes(-len(body) % 4))


def _rtp_extension(n: int) -> bytes:
    words = n // 4
    head = bytes((0xBF, 0)) + bytes(10) + bytes(60)  # 15 CSRCs, extension, padding
    return head + b"\xbe\xde" + words.to_bytes(2, "big") + bytes(4 * words) + b"\x00\x01"


def _bye_reason(n: int) -> bytes:
    """31 sources and a 255-octet reason of 0xFF, then junk up to n octets."""
    return RR + _header(0x9F, 203, bytes(124) + b"\xff" * (n - 132) + bytes(4))


def _padded_unknown(n: int) -> bytes:
    return RR + _header(0xA0, 204, bytes(n - 1) + b"\xff")


PARSE_RTCP, PARSE_RTP = rtcp.parse_compound, rtp.parse
SHAPES: list[tuple[str, Callable[[bytes], object], Callable[[int], bytes]]] = [
    ("RTCP empty unknown packets", PARSE_RTCP, lambda n: RR + b"\x80\xcc\x00\x00" * (n // 4)),
    ("RTCP SDES items", PARSE_RTCP, lambda n: RR + _sdes_items(n)),
    ("RTCP BYE reason", PARSE_RTCP, _bye_reason),
    ("RTCP padding", PARSE_RTCP, _padded_unknown),
    ("RTCP truncated", PARSE_RTCP, lambda n: RR + b"\x80\xcc\xff\xff" + bytes(n)),
    ("RTP extension", PARSE_RTP, _rtp_extension),
    ("RTP payload", PARSE_RTP, lambda n: b"\x80\x00" + bytes(10) + bytes(n)),
    ("RTP padding", PARSE_RTP, lambda n: b"\xa0\x00" + bytes(10) + bytes(n) + b"\xff"),
    ("RFC 4733 payload", TelephoneEvent.parse, bytes),
]


@pytest.mark.parametrize(("parse", "make"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_hostile_datagrams_cost_time_linear_in_their_size(
    parse: Callable[[bytes], object], make: Callable[[int], bytes]
) -> None:
    small, large = make(15_000), make(60_000)
    assert 60_000 <= len(large) <= 65_535
    assert_linear(lambda: _outcome(parse, small), lambda: _outcome(parse, large))


def test_a_compound_of_15000_packets_builds_back_quickly() -> None:
    """The most objects a datagram can parse into (4-byte packets) build back in < 50 ms.

    Only the bound is asserted: building is one pass (``test_rtcp``'s round trips), and with
    30,000 objects alive its time depends on the caches shared with other work more than on
    the count.
    """
    packets = rtcp.parse_compound(RR + b"\x80\xcc\x00\x00" * 15_000)
    assert costs(lambda: rtcp.build_compound(packets))[0] < 0.050


@given(st.binary(max_size=64), st.booleans(), st.integers(0, 2**32 - 1))
def test_dtmf_receiver_refuses_any_payload_with_a_parse_error_only(
    payload: bytes, marker: bool, timestamp: int
) -> None:
    receiver = DtmfReceiver()
    try:
        digits = receiver.feed(timestamp, marker, payload, now=0.0)
    except MediaParseError:
        return
    assert len(payload) == 4 and len(digits) <= 1
