"""SDP parse/serialize (RFC 4566 §5) with golden vectors, error messages and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import SdpError
from sip.sdp import (
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
)

VECTORS = Path(__file__).parent / "vectors_sdp"
ALL_VECTORS = sorted(VECTORS.glob("*.sdp"))


def _sdp(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")


def _offer(*media_lines: str, head: tuple[str, ...] = HEAD) -> SessionDescription:
    return SessionDescription.parse(_sdp(*head, *media_lines))


# ------------------------------------------------------------------ golden vectors


@pytest.mark.parametrize("path", ALL_VECTORS, ids=lambda p: p.name)
def test_golden_vectors_round_trip_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    parsed = SessionDescription.parse(data)
    assert bytes(parsed) == data
    assert SessionDescription.parse(bytes(parsed)) == parsed


def test_rfc4566_example_fields() -> None:
    sd = SessionDescription.parse((VECTORS / "rfc4566_example.sdp").read_bytes())
    assert sd.origin == Origin("jdoe", 2890844526, 2890842807, "10.47.16.5")
    assert sd.session_name == "SDP Seminar"
    assert sd.connection == Connection("224.2.17.12/127")
    assert sd.connection.host == "224.2.17.12"
    assert sd.times == (Timing(2873397496, 2873404696),)
    assert sd.extra[0] == ("i", "A Seminar on the session description protocol")
    assert [k for k, _ in sd.extra] == ["i", "u", "e"]
    assert sd.direction_for(0) is Direction.RECVONLY  # session-level attribute applies to all
    assert [m.media for m in sd.media] == ["audio", "video"]
    assert sd.media[0].codecs() == (Codec("PCMU", 0, 8000),)  # static type, no rtpmap
    assert sd.media[1].codecs() == (Codec("h263-1998", 99, 90000),)


def test_pjsua_offer_fields() -> None:
    # captured from pjsua2 2.15.1 (the project's reference phone) calling a UDP socket
    sd = SessionDescription.parse((VECTORS / "offer_pjsua.sdp").read_bytes())
    audio = sd.media[0]
    assert sd.bandwidths == (Bandwidth("AS", 84),)
    assert audio.bandwidths == (Bandwidth("TIAS", 64000),)
    assert audio.connection == Connection("192.0.2.2")
    assert audio.direction is Direction.SENDRECV
    names = [(c.name, c.clock_rate) for c in audio.codecs()]
    assert names[:4] == [("speex", 16000), ("speex", 8000), ("speex", 32000), ("iLBC", 8000)]
    assert audio.codecs()[3].fmtp == "mode=30"
    assert Attribute("ssrc", "2062016966 cname:0b8a02ad05657a08") in audio.attributes


def test_bare_lf_line_endings_are_accepted() -> None:
    crlf = (VECTORS / "offer_pjsua.sdp").read_bytes()
    assert SessionDescription.parse(crlf.replace(b"\r\n", b"\n")) == SessionDescription.parse(crlf)


def test_media_level_connection_overrides_session_level() -> None:
    sd = _offer(
        "m=audio 1000 RTP/AVP 0", "c=IN IP4 192.0.2.99", "m=audio 2000 RTP/AVP 0",
    )  # fmt: skip
    assert sd.connection_for(0).host == "192.0.2.99"
    assert sd.connection_for(1).host == "192.0.2.1"


def test_dynamic_payload_type_without_rtpmap_is_not_a_codec() -> None:
    sd = _offer("m=audio 1000 RTP/AVP 96 8")
    assert sd.media[0].codecs() == (Codec("PCMA", 8, 8000),)


# ------------------------------------------------------------------ malformed input

MALFORMED: list[tuple[bytes, str]] = [
    (b"", "SDP body is empty"),
    (b"\xff\xfe", "not UTF-8"),
    (b"v=0\r\n" * 20_000, "exceeds"),
    (_sdp("o=- 1 1 IN IP4 a", "v=0"), "line 1: SDP must start with v="),
    (_sdp("v=1", *HEAD[1:]), "line 1: only SDP version 0 exists"),
    (_sdp("v=0", "s=-", "t=0 0"), "the required o= line is missing"),
    (_sdp(*HEAD[:2], "c=IN IP4 192.0.2.1", "s=-", "t=0 0"), "line 4: 's=' is out of order"),
    (_sdp(*HEAD[:4]), "the required t= line is missing"),
    (_sdp("v=0", "o=- 1 1 IN IP4", "s=-", "t=0 0"), "line 2: o= needs 6 fields"),
    (_sdp("v=0", "o=- x 1 IN IP4 a", "s=-", "t=0 0"), "o= session id must be a decimal"),
    (_sdp("v=0", "o=- 1 1 ATM NSAP a", "s=-", "t=0 0"), "network type 'ATM' is not IN"),
    (_sdp("v=0", "o=- 1 1 IN IPX a", "s=-", "t=0 0"), "address type 'IPX' is not IP4 or IP6"),
    (_sdp("v=0", "o=- 1 1 IN IP6 ::zz", "s=-", "t=0 0"), "o= address is neither an IP6"),
    (_sdp(*HEAD[:3], "c=IN IP4 300.1.1.1", "t=0 0"), "c= address is neither an IP4"),
    (_sdp(*HEAD[:3], "c=IN IP4 -bad-.example", "t=0 0"), "c= address is neither an IP4"),
    (_sdp(*HEAD[:3], "c=IN IP4 224.2.1.1/x", "t=0 0"), "c= address suffix"),
    (_sdp(*HEAD[:3], "c=IN  IP4 192.0.2.1", "t=0 0"), "c= needs 3 fields separated by single"),
    (_sdp(*HEAD, "c=IN IP4 192.0.2.2"), "line 6: 'c=' is out of order"),
    (_sdp(*HEAD[:4], "c=IN IP4 192.0.2.2", "t=0 0"), "line 5: 'c=' may appear only once"),
    (_sdp(*HEAD, "x=1"), "line 6: expected '<type>=<value>' with a known type letter"),
    (_sdp(*HEAD, "a"), "expected '<type>=<value>'"),
    (_sdp(*HEAD, "", "a=sendrecv"), "line 6: expected '<type>=<value>'"),
    (_sdp(*HEAD, "a=x\ry"), "control character inside a line"),
    (_sdp(*HEAD[:4], "t=0"), "t= needs 2 fields"),
    (_sdp(*HEAD[:4], "r=7d 1h 0 25h"), "r= must follow a t= line"),
    (_sdp(*HEAD, "b=AS:1"), "line 6: 'b=' is out of order"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "b=AS"), "b= needs '<bwtype>:<bandwidth>'"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "b=AS:lots"), "b= must be a decimal number"),
    (_sdp(*HEAD, "a=bad name"), "a= name is not a token"),
    (_sdp(*HEAD, "a=sendrecv", "a=inactive"), "more than one direction attribute"),
    (_sdp(*HEAD, "a=sendonly:yes"), "sendonly takes no value"),
    (_sdp(*HEAD[:3], "t=0 0", "m=audio 1 RTP/AVP 0"), "m= line 1 has no c= line"),
    (_sdp(*HEAD[:4], "m=audio 1 RTP/AVP 0"), "m= before the required t= line"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP"), "m= needs '<media> <port> <proto> <fmt> ...'"),
    (_sdp(*HEAD, "m=audio 70000 RTP/AVP 0"), "m= port must be a decimal number up to 65535"),
    (_sdp(*HEAD, "m=audio 1/0 RTP/AVP 0"), "m= port count must be at least 1"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 128"), "RTP payload type must be a decimal number up to 127"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP PCMU"), "RTP payload type must be a decimal"),
    (_sdp(*HEAD, "m=audio 1 RTP//AVP 0"), "m= proto is not a token list"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "t=0 0"), "'t=' is not allowed in this section"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=rtpmap:0 PCMU"), "rtpmap needs '<payload type>"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=rtpmap:0 PCMU/0"), "clock rate and channels must"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=rtpmap:x PCMU/8000"), "RTP payload type must be"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=fmtp:101"), "fmtp needs '<format> <parameters>'"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=ptime:0"), "ptime must be positive"),
    (_sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=ptime:20.5"), "ptime must be a decimal number"),
    (
        _sdp(*HEAD, "m=audio 1 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMA/8000"),
        "m= line 1 maps a payload type twice with a=rtpmap",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_sdp_names_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(data)
    assert message in str(info.value)
    assert info.value.status == 400


def test_error_message_quotes_the_line_shortened() -> None:
    long_value = "9" * 200
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(_sdp(*HEAD, f"m=audio {long_value} RTP/AVP 0"))
    assert "SDP line 6: m= port" in str(info.value)
    assert "'m=audio 9999" in str(info.value)
    assert len(str(info.value)) < 200


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_sdp_error(data: bytes) -> None:
    try:
        SessionDescription.parse(data)
    except SdpError:
        return


@given(
    st.sampled_from(ALL_VECTORS),
    st.integers(min_value=0, max_value=2000),
    st.binary(min_size=0, max_size=4),
)
def test_mutated_vectors_raise_only_sdp_error(path: Path, at: int, junk: bytes) -> None:
    data = path.read_bytes()
    at %= len(data)
    mutated = data[:at] + junk + data[at + 1 :]
    try:
        parsed = SessionDescription.parse(mutated)
    except SdpError:
        return
    assert SessionDescription.parse(bytes(parsed)) == parsed


# ------------------------------------------------------------------ generated round trip

_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-.", min_size=1, max_size=8)
_ip4 = st.ip_addresses(v=4).map(str)
_ip6 = st.ip_addresses(v=6).map(str)
_connections = st.one_of(
    st.builds(Connection, _ip4, st.just("IP4")), st.builds(Connection, _ip6, st.just("IP6"))
)
_attributes = st.builds(
    Attribute,
    _tokens.filter(lambda n: n not in {d.value for d in Direction} | {"rtpmap", "fmtp", "ptime"}),
    st.none() | st.text(alphabet="abc 0123:/=;-", max_size=10),
)
_media = st.builds(
    MediaDescription,
    st.sampled_from(["audio", "video", "application"]),
    st.integers(0, 65535),
    st.sampled_from(["RTP/AVP", "RTP/SAVP", "RTP/AVPF"]),
    st.lists(st.integers(0, 127).map(str), min_size=1, max_size=6).map(tuple),
    st.none() | st.integers(1, 4),
    st.none() | _connections,
    st.lists(st.builds(Bandwidth, st.sampled_from(["AS", "CT", "TIAS"]), st.integers(0, 10**6)),
             max_size=2).map(tuple),
    st.lists(_attributes, max_size=4).map(tuple),
    st.lists(st.tuples(st.sampled_from("ik"), st.text("xyz /", max_size=5)),
             max_size=1).map(tuple),
)  # fmt: skip
_sessions = st.builds(
    SessionDescription,
    st.builds(Origin, _tokens, st.integers(0, 2**63), st.integers(0, 2**63), _ip4),
    st.text(alphabet="ab c-", max_size=8),
    _connections,
    st.lists(st.builds(Timing, st.integers(0, 2**32), st.integers(0, 2**32),
                       st.lists(st.just("7d 1h 0 25h"), max_size=1).map(tuple)),
             min_size=1, max_size=2).map(tuple),
    st.lists(_media, max_size=3).map(tuple),
    st.lists(_attributes, max_size=3).map(tuple),
)  # fmt: skip


@given(_sessions)
def test_serialize_then_parse_is_identity(sd: SessionDescription) -> None:
    assert SessionDescription.parse(bytes(sd)) == sd


def test_direction_reverse_is_an_involution() -> None:
    assert {d: d.reverse() for d in Direction} == {
        Direction.SENDRECV: Direction.SENDRECV,
        Direction.SENDONLY: Direction.RECVONLY,
        Direction.RECVONLY: Direction.SENDONLY,
        Direction.INACTIVE: Direction.INACTIVE,
    }
    assert all(d.reverse().reverse() is d for d in Direction)
