"""Properties of the message layer: serialize∘parse is the identity on generated messages and no
input — random, or a mutated torture message — raises anything but ParseError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import ParseError
from sip.headers import CANONICAL, CSeq, NameAddr, Via
from sip.message import (
    Headers,
    Message,
    Request,
    Response,
    error_response_for,
    parse_message,
    validate_request,
)
from sip.uri import AbsoluteUri, SipUri, parse_uri

TORTURE = Path(__file__).resolve().parents[1] / "data" / "sip-torture"
CORPUS = sorted(
    p.read_bytes() for sub in ("rfc4475", "rfc5118-wire") for p in (TORTURE / sub).iterdir()
)

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
UNRESERVED = ALNUM + "-_.!~*'()"
# Any character a header may carry: UTF-8 encodable (no lone surrogates), no CR or LF.
NO_CRLF = st.characters(codec="utf-8", exclude_characters="\r\n")
ESCAPE = st.sampled_from(["%41", "%00", "%3A", "%40", "%25", "%e2"])


def _chars(alphabet: str, min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Strings over ``alphabet`` mixed with %HEX escapes."""
    piece = st.one_of(st.sampled_from(alphabet), ESCAPE)
    return st.lists(piece, min_size=min_size, max_size=max_size).map("".join)


tokens = st.text(ALNUM + "-.!%*_+`'~", min_size=1, max_size=10)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
hosts = st.one_of(
    hostnames,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: a.compressed),
)
users = _chars(UNRESERVED + "&=+$,;?/")
passwords = _chars(UNRESERVED + "&=+$,", min_size=0)
pchars = _chars(UNRESERVED + "[]/:&+$")
uri_params = st.lists(st.tuples(pchars, st.none() | pchars), max_size=3).map(tuple)
uri_headers = st.lists(
    st.tuples(_chars(UNRESERVED + "[]/?:+$"), _chars(UNRESERVED + "[]/?:+$", min_size=0)),
    max_size=2,
).map(tuple)


@st.composite
def sip_uris(draw: st.DrawFn, with_headers: bool = True) -> SipUri:
    if draw(st.integers(0, 9)) == 0:
        number = draw(st.text("0123456789-.()", min_size=1, max_size=12))
        return SipUri("tel", "+" + number, "", None, draw(uri_params))
    user = draw(st.none() | users)
    password = draw(st.none() | passwords) if user is not None else None
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        host=draw(hosts),
        port=draw(st.none() | st.integers(0, 65535)),
        params=draw(uri_params),
        headers=draw(uri_headers) if with_headers else (),
        password=password,
    )


absolute_uris = st.builds(
    AbsoluteUri,
    st.sampled_from(["http", "urn", "im", "soap.beep"]),
    _chars(UNRESERVED + ";/?:@&=+$,"),
)
gen_values = st.one_of(
    tokens,
    hosts.map(lambda h: f"[{h}]" if ":" in h else h),
    st.text(NO_CRLF, max_size=8).map(
        lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
)
header_params = st.lists(st.tuples(tokens, st.none() | gen_values), max_size=3).map(tuple)
display_names = st.none() | st.text(NO_CRLF, max_size=12)
name_addrs = st.builds(NameAddr, st.one_of(sip_uris(), absolute_uris), display_names, header_params)
vias = st.builds(
    Via,
    st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]),
    hosts,
    st.none() | st.integers(0, 65535),
    header_params,
)
cseqs = st.builds(CSeq, st.integers(0, 2**31 - 1), tokens)
free_text = st.text(NO_CRLF, max_size=30).map(lambda t: t.strip(" \t"))
# Known names (compact "v", "l", …) have grammars of their own; extensions are free text.
extension_names = tokens.filter(lambda n: n.lower() not in CANONICAL)


@st.composite
def header_sets(draw: st.DrawFn) -> Headers:
    headers = Headers()
    for via in draw(st.lists(vias, min_size=1, max_size=3)):
        headers.add("Via", str(via))
    headers.add("From", str(draw(name_addrs)))
    headers.add("To", str(draw(name_addrs)))
    headers.add("Call-ID", draw(tokens))
    headers.add("CSeq", str(draw(cseqs)))
    for name, value in draw(st.lists(st.tuples(extension_names, free_text), max_size=5)):
        headers.add(name, value)
    return headers


@st.composite
def messages(draw: st.DrawFn) -> Message:
    headers = draw(header_sets())
    body = draw(st.binary(max_size=200))
    headers.add("Content-Length", str(len(body)))
    if draw(st.booleans()):
        uri = draw(st.one_of(sip_uris(with_headers=False), absolute_uris))
        return Request(draw(tokens), uri, headers, body)
    reason = draw(st.text(NO_CRLF))
    return Response(draw(st.integers(100, 699)), reason, headers, body)


@given(sip_uris())
def test_uri_round_trip(uri: SipUri) -> None:
    assert parse_uri(str(uri)) == uri


@given(name_addrs)
def test_name_addr_round_trip(addr: NameAddr) -> None:
    assert NameAddr.parse(str(addr)) == addr


@given(vias)
def test_via_round_trip(via: Via) -> None:
    assert Via.parse(str(via)) == via


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_serialize_parse_is_identity(message: Message) -> None:
    data = bytes(message)
    parsed = parse_message(data)
    assert parsed == message
    assert bytes(parsed) == data
    assert parsed.vias == [Via.parse(v) for v in message.headers.get_all("Via")]
    assert parsed.cseq == CSeq.parse(message.headers.get("CSeq") or "")
    assert parsed.from_ == NameAddr.parse(message.headers.get("From") or "")


def _exercise(data: bytes) -> None:
    """Everything a caller may do with peer bytes; only ParseError may escape."""
    try:
        message = parse_message(data)
        _ = message.vias, message.top_via, message.to, message.from_, message.cseq
        _ = message.call_id, message.max_forwards, message.content_type
        if isinstance(message, Request):
            validate_request(message)
    except ParseError as exc:
        answer = error_response_for(data, exc)
        if answer is not None:
            assert isinstance(parse_message(answer), Response)


@given(st.binary(max_size=1500))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    _exercise(data)


sip_fragments = st.sampled_from(
    [
        b"INVITE sip:a@b SIP/2.0",
        b"SIP/2.0 200 OK",
        b"Via: SIP/2.0/UDP [::1]:5060;rport;branch=z9hG4bK",
        b"v: SIP/2.0/TCP h;received=[1::2]",
        b'To: "x\\" <sip:a@b>;tag=1',
        b"f: <sip:a@[::1]:99999>",
        b"CSeq: 99999999999999999999 INVITE",
        b"Max-Forwards: 00000000000000000001",
        b"l: 5",
        b"Content-Length: 99999999999999999999999",
        b"Call-ID: x",
        b"Contact: *",
        b" folded",
        b"",
        b"\x00\xff",
    ]
)


@given(st.lists(sip_fragments, max_size=12), st.binary(max_size=20))
def test_sip_like_lines_raise_only_parse_error(lines: list[bytes], tail: bytes) -> None:
    _exercise(b"\r\n".join(lines) + b"\r\n\r\n" + tail)


@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    st.sampled_from(["replace", "insert", "delete"]),
)
def test_mutated_torture_messages_raise_only_parse_error(
    data: bytes, edits: list[tuple[float, int]], mode: str
) -> None:
    buf = bytearray(data)
    for where, value in edits:
        pos = int(where * len(buf))
        if mode == "replace":
            buf[pos] = value
        elif mode == "insert":
            buf.insert(pos, value)
        else:
            del buf[pos]
    _exercise(bytes(buf))
