"""Header value grammar: name-addr, Via, CSeq, lists and parameters (RFC 3261 §20, §25.1)."""

from __future__ import annotations

import pytest

from sip.errors import ParseError
from sip.headers import CSeq, NameAddr, Via, canonical_name, parse_params, split_list
from sip.uri import AbsoluteUri, SipUri


def test_compact_and_odd_case_names_map_to_canonical() -> None:
    assert canonical_name("v") == ("via", "Via")
    assert canonical_name("MaX-fOrWaRdS") == ("max-forwards", "Max-Forwards")
    assert canonical_name("o") == ("event", "Event")
    assert canonical_name("r") == ("refer-to", "Refer-To")
    assert canonical_name("b") == ("referred-by", "Referred-By")
    assert canonical_name("X-Custom") == ("x-custom", "X-Custom")
    with pytest.raises(ParseError, match="invalid header name"):
        canonical_name("Bad Name")


def test_split_list_respects_quotes_and_brackets() -> None:
    value = '"Doe, John" <sip:a@b;x=1,2>;q=0.5 , <sip:c@d>'
    assert split_list(value) == ['"Doe, John" <sip:a@b;x=1,2>;q=0.5', "<sip:c@d>"]
    assert split_list("INVITE, ACK ,BYE") == ["INVITE", "ACK", "BYE"]


def test_params_allow_lws_and_quoted_values() -> None:
    assert parse_params(' tag = abc ; lr ; x="a;b"') == (
        ("tag", "abc"),
        ("lr", None),
        ("x", '"a;b"'),
    )
    with pytest.raises(ParseError, match="parameter name"):
        parse_params("a;;b")


def test_name_addr_golden_forms() -> None:
    quoted = NameAddr.parse('"J Rosenberg \\\\\\""  <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert quoted.display_name == 'J Rosenberg \\"'
    assert quoted.tag == "98asjd8"
    assert isinstance(quoted.uri, SipUri) and quoted.uri.user == "jdrosen"
    tokens = NameAddr.parse("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe")
    assert tokens.display_name == "A. Bell"
    no_lws = NameAddr.parse('"caller"<sip:caller@example.com>;tag=323')
    assert no_lws.display_name == "caller"
    spec = NameAddr.parse("sip:+1972@gw1.example.net;unknownparam")
    assert spec.display_name is None
    assert spec.params == (("unknownparam", None),)
    assert isinstance(spec.uri, SipUri) and spec.uri.params == ()
    opaque = NameAddr.parse("<http://www.example.com>;tag=3234233")
    assert opaque.uri == AbsoluteUri("http", "//www.example.com")


def test_name_addr_serialization_quotes_and_escapes() -> None:
    addr = NameAddr(SipUri("sip", "bob", "example.com", None), 'say "hi"\x07', (("tag", "1"),))
    text = str(addr)
    assert text == '"say \\"hi\\"\\\x07" <sip:bob@example.com>;tag=1'
    assert NameAddr.parse(text) == addr


def test_with_tag_replaces_or_appends() -> None:
    addr = NameAddr.parse("<sip:a@b>;x=1")
    assert addr.with_tag("t1").params == (("x", "1"), ("tag", "t1"))
    assert addr.with_tag("t1").with_tag("t2").tag == "t2"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('"Mr. J. User <sip:j.user@example.com>', "unterminated quoted"),
        ("Watson, Thomas <sip:t.watson@example.org>", "must be quoted"),
        ('"Watson" < sip:t.watson@example.org >', "scheme"),
        ("sip:user@example.com?Route=%3Csip:x%3E", "enclosed in <>"),
        ("<sip:a@b", "unterminated <URI>"),
        ("<sip:a@b> junk", "junk after"),
        ('"x" sip:a@b', "without <URI>"),
    ],
)
def test_bad_name_addrs(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment) as info:
        NameAddr.parse(text)
    assert info.value.status == 400


def test_via_golden_with_lws_and_rport() -> None:
    via = Via.parse(
        "SIP  / 2.0  / tcp     spindle.example.com:5070   ;  branch  =   z9hG4bK9  ;rport"
    )
    assert (via.transport, via.host, via.port) == ("TCP", "spindle.example.com", 5070)
    assert via.branch == "z9hG4bK9"
    assert via.rport is True
    assert str(via) == "SIP/2.0/TCP spindle.example.com:5070;branch=z9hG4bK9;rport"


def test_via_ipv6_received_with_and_without_brackets() -> None:
    bare = Via.parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
    bracketed = Via.parse("SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255]")
    assert bare.host == "2001:db8::9:1" and bare.port is None
    assert bare.received == bracketed.received == "2001:db8::9:255"
    assert bracketed.port == 6050
    assert str(bracketed) == "SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255]"


def test_via_with_received_follows_rfc3581() -> None:
    plain = Via.parse("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1")
    assert plain.with_received("192.0.2.1", 5060) == plain
    assert plain.with_received("198.51.100.7", 4000).received == "198.51.100.7"
    assert plain.with_received("198.51.100.7", 4000).rport is None
    rport = Via.parse("SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bK1")
    stamped = rport.with_received("192.0.2.1", 4000)
    assert stamped.rport == 4000
    assert stamped.received == "192.0.2.1"
    assert str(stamped) == "SIP/2.0/UDP 192.0.2.1;rport=4000;branch=z9hG4bK1;received=192.0.2.1"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("SIP/7.0/UDP host", "SIP/2.0/transport"),
        ("SIP/2.0/UDP", "without transport"),
        ("SIP/2.0/UDP host;;", "parameter name"),
        ("SIP/2.0/UDP host:0x50", "port"),
        ("SIP/2.0/UDP host;rport=99999", "port"),
    ],
)
def test_bad_vias(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment):
        Via.parse(text)


def test_cseq_golden_and_limits() -> None:
    assert CSeq.parse("0009 INVITE") == CSeq(9, "INVITE")
    assert str(CSeq(2**31 - 1, "BYE")) == "2147483647 BYE"
    assert CSeq.parse("2147483647 BYE").seq == 2**31 - 1
    with pytest.raises(ParseError, match="exceeds"):
        CSeq.parse("2147483648 BYE")
    with pytest.raises(ParseError, match="exceeds"):
        CSeq.parse("36893488147419103232 REGISTER")
    with pytest.raises(ParseError, match="invalid CSeq"):
        CSeq.parse("12")
    with pytest.raises(ParseError, match="number"):
        CSeq.parse("-1 INVITE")
