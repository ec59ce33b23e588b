"""SIP/SIPS/tel URI parsing and serialization (RFC 3261 §19.1, RFC 5118)."""

from __future__ import annotations

import pytest

from sip.errors import ParseError
from sip.uri import AbsoluteUri, SipUri, parse_uri


def test_golden_full_uri_fields_and_round_trip() -> None:
    text = "sips:alice:secret@[2001:db8::10]:5061;transport=tcp;lr?Subject=hi&Priority=urgent"
    uri = SipUri.parse(text)
    assert uri == SipUri(
        scheme="sips",
        user="alice",
        host="2001:db8::10",
        port=5061,
        params=(("transport", "tcp"), ("lr", None)),
        headers=(("Subject", "hi"), ("Priority", "urgent")),
        password="secret",
    )
    assert str(uri) == text


def test_params_are_case_insensitive_and_valueless_reads_empty() -> None:
    uri = SipUri.parse("sip:bob@example.com;Transport=UDP;lr")
    assert uri.param("transport") == "UDP"
    assert uri.param("LR") == ""
    assert uri.param("maddr") is None
    assert uri.has_param("lr")
    assert not uri.has_param("maddr")


def test_escaped_user_kept_as_written_and_unescaped_on_demand() -> None:
    uri = SipUri.parse("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips%3Auser%40example.com"
    assert uri.user_unescaped == "sips:user@example.com"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"


def test_escaped_nul_is_not_truncated() -> None:
    uri = SipUri.parse("sip:null-%00-null@example.com")
    assert uri.user == "null-%00-null"
    assert uri.user_unescaped == "null-\x00-null"


def test_user_may_hold_semicolons_and_question_marks() -> None:
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u%40example.net"
    assert uri.host == "example.com"
    assert uri.params == ()


def test_ipv6_port_ambiguity_rfc5118() -> None:
    ambiguous = SipUri.parse("sip:[2001:db8::10:5070]")
    assert (ambiguous.host, ambiguous.port) == ("2001:db8::10:5070", None)
    explicit = SipUri.parse("sip:[2001:db8::10]:5070")
    assert (explicit.host, explicit.port) == ("2001:db8::10", 5070)
    assert str(explicit) == "sip:[2001:db8::10]:5070"


def test_tel_uri() -> None:
    uri = SipUri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert (uri.scheme, uri.user, uri.host, uri.port) == ("tel", "+1-201-555-0123", "", None)
    assert uri.param("phone-context") == "example.com"
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_other_schemes_are_opaque() -> None:
    uri = parse_uri("soap.beep://192.0.2.103:3002")
    assert uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")
    assert str(uri) == "soap.beep://192.0.2.103:3002"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sip:2001:db8::10", "port"),
        ("<sip:user@example.com>", "scheme"),
        ("sip:user@exa mple.com", "host"),
        ("sip:user@[2001:db8::1", "IPv6"),
        ("sip:user@host:99999", "port"),
        ("sip:us er@host", "userinfo"),
        ("sip:user@host;", "parameter"),
        ("sip:user@host?Subject", "header"),
        ("sip:user@host;a=%zz", "parameter"),
        ("http", "scheme"),
        ("sip:", "host"),
    ],
)
def test_bad_uris_raise_400_with_a_precise_message(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment) as info:
        parse_uri(text)
    assert info.value.status == 400


def test_sip_uri_parse_refuses_other_schemes() -> None:
    with pytest.raises(ParseError, match="scheme"):
        SipUri.parse("http://example.com")
