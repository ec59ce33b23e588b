"""TCP stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1 keep-alives)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import ParseError
from sip.framing import StreamFramer
from sip.message import parse_message

INVITE = (Path(__file__).parent / "vectors" / "invite_sdp.sip").read_bytes()
OPTIONS = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n"


def test_two_messages_in_one_read() -> None:
    framer = StreamFramer()
    assert framer.feed(INVITE + OPTIONS) == [INVITE, OPTIONS]
    assert framer.buffered == 0


def test_message_split_across_reads_keeps_partial_data() -> None:
    framer = StreamFramer()
    assert framer.feed(INVITE[:100]) == []
    assert framer.feed(INVITE[100:-10]) == []
    assert framer.buffered == len(INVITE) - 10
    assert framer.feed(INVITE[-10:] + OPTIONS[:5]) == [INVITE]
    assert framer.feed(OPTIONS[5:]) == [OPTIONS]


@given(st.lists(st.integers(min_value=1, max_value=len(INVITE) * 2), max_size=20))
def test_any_chunking_yields_the_same_messages(cuts: list[int]) -> None:
    stream = INVITE + b"\r\n\r\n" + OPTIONS + INVITE
    framer = StreamFramer()
    out: list[bytes] = []
    pos = 0
    for size in cuts:
        out += framer.feed(stream[pos : pos + size])
        pos += size
    out += framer.feed(stream[pos:])
    assert out == [INVITE, OPTIONS, INVITE]
    assert framer.take_pings() == 1
    assert all(parse_message(m) for m in out)


def test_keepalive_pings_are_skipped_and_counted() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == []
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r\n" + OPTIONS) == [OPTIONS]
    assert framer.take_pings() == 2
    assert framer.take_pings() == 0


@pytest.mark.parametrize(
    ("head", "fragment"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", "without Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n", "invalid Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: abc\r\n\r\n", "invalid Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\n", "more than one"),
    ],
)
def test_unrecoverable_framing_raises(head: bytes, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment):
        StreamFramer().feed(head)


def test_folded_content_length_is_read() -> None:
    message = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length:\r\n 3\r\n\r\nabc"
    assert StreamFramer().feed(message) == [message]


def test_size_limits() -> None:
    framer = StreamFramer(max_message=200)
    with pytest.raises(ParseError, match="header section exceeds") as info:
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"y" * 300)
    assert info.value.status == 513
    with pytest.raises(ParseError, match="exceeds 200"):
        StreamFramer(max_message=200).feed(b"M sip:a@b SIP/2.0\r\nl: 500\r\n\r\n")
