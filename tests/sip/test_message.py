"""Message parse/serialize, validation and response building (RFC 3261 §7, §8.2, §18.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sip.errors import ParseError
from sip.headers import CSeq, Via
from sip.message import (
    Headers,
    Request,
    Response,
    error_response_for,
    make_response,
    parse_message,
    validate_request,
)
from sip.uri import SipUri

VECTORS = Path(__file__).parent / "vectors"


def _invite() -> bytes:
    return (VECTORS / "invite_sdp.sip").read_bytes()


def test_golden_invite_fields() -> None:
    req = Request.parse(_invite())
    assert req.method == "INVITE"
    assert req.uri == SipUri("sip", "+15551230000", "conf.example.com", None)
    assert req.call_id == "a84b4c76e66710@pc33.example.com"
    assert req.cseq == CSeq(314159, "INVITE")
    assert req.from_.display_name == "Alice Example"
    assert req.from_.tag == "1928301774"
    assert req.to.tag is None
    assert req.top_via.branch == "z9hG4bK776asdhds"
    assert req.top_via.rport is True
    assert [v.host for v in req.vias] == ["192.0.2.10"]
    assert req.max_forwards == 70
    assert req.content_type == "application/sdp"
    assert req.headers.get_all("Allow") == ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"]
    assert req.body.startswith(b"v=0\r\n") and req.body.endswith(b"a=sendrecv\r\n")
    validate_request(req)


def test_golden_vectors_round_trip_byte_exact() -> None:
    for path in sorted(VECTORS.glob("*.sip")):
        data = path.read_bytes()
        assert bytes(parse_message(data)) == data, path.name


def test_golden_response_with_ipv6_vias() -> None:
    resp = Response.parse((VECTORS / "ringing_ipv6.sip").read_bytes())
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert [(v.transport, v.host, v.port) for v in resp.vias] == [
        ("UDP", "2001:db8::9:1", 6050),
        ("TCP", "192.0.2.1", None),
    ]
    assert resp.top_via.received == "2001:db8::9:255"
    assert resp.to.tag == "9817--94"


def test_folding_compact_names_and_unknown_headers() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1,\r\n SIP/2.0/TCP g\r\n"
        b"f: <sip:c@d>;tag=1\r\nt: sip:a@b\r\ni: x@y\r\nCSeq: 1\r\n\tOPTIONS\r\n"
        b"X-Thing  :  some\r\n  value\r\nl: 0\r\n\r\n"
    )
    req = Request.parse(data)
    assert [v.host for v in req.vias] == ["h", "g"]
    assert req.headers.get("X-THING") == "some value"
    assert req.cseq == CSeq(1, "OPTIONS")
    assert [name for name, _ in req.headers][:2] == ["Via", "From"]
    validate_request(req)


def test_body_framing_by_content_length() -> None:
    base = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcTRAILING"
    assert Request.parse(base).body == b"abc"
    no_length = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nrest\x00of it"
    assert Request.parse(no_length).body == b"rest\x00of it"


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc", 400, "exceeds"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nx", 400, "more than one"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: ten\r\n\r\n", 400, "Content-Length"),
        (b"OPTIONS sip:a@b SIP/3.0\r\n\r\n", 505, "not supported"),
        (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", 400, "version"),
        (b"OPTIONS  sip:a@b SIP/2.0\r\n\r\n", 400, "request line"),
        (b"OPTIONS sip:a@b SIP/2.0 \r\n\r\n", 400, "request line"),
        (b"OPT IONS\r\n\r\n", 400, "request line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n", 400, "without colon"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nA: b\rc\r\n\r\n", 400, "bare CR"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nA: b", 400, "not terminated"),
        (b"SIP/2.0 4294967301 Big\r\n\r\n", 400, "status code"),
        (b"SIP/2.0 99 Small\r\n\r\n", 400, "status code"),
        (b"X" * 65536, 513, "exceeds"),
    ],
)
def test_parse_errors_carry_status(data: bytes, status: int, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment) as info:
        parse_message(data)
    assert info.value.status == status


def _req(*lines: str, method: str = "OPTIONS") -> Request:
    base = [
        f"{method} sip:a@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
        "From: <sip:b@example.com>;tag=f",
        "To: <sip:a@example.com>",
        "Call-ID: c1",
        f"CSeq: 1 {method}",
    ]
    return Request.parse(("\r\n".join([*base, *lines]) + "\r\n\r\n").encode())


def test_validate_accepts_minimal_request() -> None:
    validate_request(_req("Max-Forwards: 0", "Contact: *"))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("To: <sip:x@y>",), "more than one To"),
        (("Max-Forwards: 256",), "Max-Forwards"),
        (("Max-Forwards: 1a",), "Max-Forwards"),
        (("Content-Type: nonsense",), "Content-Type"),
        (("Contact: sip:a@b?x=y",), "enclosed"),
        (("Route: <sip:a@b",), "unterminated"),
    ],
)
def test_validate_rejects(extra: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment) as info:
        validate_request(_req(*extra))
    assert info.value.status == 400


def test_validate_cseq_method_mismatch_only_for_known_methods() -> None:
    mismatch = Request.parse(bytes(_req()).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"))
    with pytest.raises(ParseError, match="does not match"):
        validate_request(mismatch)
    unknown = _req(method="NEWMETHOD")
    unknown.headers.set("CSeq", "1 INVITE")
    validate_request(unknown)


def test_validate_missing_headers() -> None:
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        req = _req()
        req.headers.remove(name)
        with pytest.raises(ParseError, match=f"missing {name}"):
            validate_request(req)


def test_make_response_copies_dialog_headers_and_adds_tag() -> None:
    req = Request.parse(_invite())
    req.headers.add("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bK2")
    resp = make_response(req, 486, to_tag="srv1", headers=[("Retry-After", "30")])
    assert (resp.status, resp.reason) == (486, "Busy Here")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.to.tag == "srv1"
    assert resp.from_ == req.from_
    assert resp.call_id == req.call_id
    assert resp.cseq == req.cseq
    assert resp.headers.get("Retry-After") == "30"
    assert make_response(req, 299).reason == "OK"
    tagged = make_response(
        Request.parse(bytes(resp).replace(b"SIP/2.0 486 Busy Here", b"BYE sip:x@y SIP/2.0")),
        200,
        to_tag="other",
    )
    assert tagged.to.tag == "srv1"


def test_serialize_sets_content_length() -> None:
    req = _req()
    req.body = b"hello"
    data = bytes(req)
    assert b"\r\nContent-Length: 5\r\n\r\nhello" in data
    assert Request.parse(data).body == b"hello"


def test_headers_multimap_operations() -> None:
    h = Headers([("v", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("Subject", "x")])
    assert "VIA" in h and 3 not in h
    assert h.get("Via") == "SIP/2.0/UDP a"
    assert h.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    h.add("Via", "SIP/2.0/UDP c")
    assert len(h.get_all("Via")) == 3
    h.set("via", "SIP/2.0/UDP d")
    assert list(h) == [("Via", "SIP/2.0/UDP d"), ("Subject", "x")]
    copy = h.copy()
    copy.remove("Subject")
    assert "Subject" in h and "Subject" not in copy
    with pytest.raises(ValueError, match="CR or LF"):
        h.add("Subject", "a\r\nInjected: 1")


def test_cached_views_follow_mutation() -> None:
    req = _req()
    assert req.top_via.branch == "z9hG4bK1"
    req.headers.set("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew")
    assert req.top_via.branch == "z9hG4bKnew"
    assert req.vias == [Via("UDP", "192.0.2.9", None, (("branch", "z9hG4bKnew"),))]


def test_error_response_for_unparseable_request() -> None:
    data = bytes(_req()).replace(b"Content-Length: 0", b"Content-Length: 99")
    with pytest.raises(ParseError) as info:
        parse_message(data)
    answer = error_response_for(data, info.value, to_tag="t9")
    assert answer is not None
    resp = Response.parse(answer)
    assert resp.status == 400
    assert resp.top_via.branch == "z9hG4bK1"
    assert resp.to.tag == "t9"
    assert resp.cseq == CSeq(1, "OPTIONS")


def test_error_response_for_never_answers_responses_acks_or_viafree() -> None:
    error = ParseError("x")
    assert error_response_for(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", error) is None
    ack = bytes(_req(method="ACK"))
    assert error_response_for(ack, error) is None
    no_via = b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n"
    assert error_response_for(no_via, error) is None
    assert error_response_for(b"\xff\xfe\r\n", error) is None
