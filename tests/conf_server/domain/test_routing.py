"""Which DID an INVITE dialled: Request-URI user, tel URI, To fallback, normalisation."""

from __future__ import annotations

import pytest

from conf_server.domain.routing import dialled_did, dialled_user
from sip.message import Request


def _invite(ruri: str, to: str = "<sip:someone@example.com>") -> Request:
    raw = (
        f"INVITE {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n"
        "From: <sip:caller@example.com>;tag=a\r\n"
        f"To: {to}\r\n"
        "Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    return Request.parse(raw)


@pytest.mark.parametrize(
    ("ruri", "expected"),
    [
        ("sip:+12125550100@conf.example.com", "+12125550100"),
        ("sip:2125550100@127.0.0.1:5060;transport=udp", "+12125550100"),
        ("sip:12125550100@host", "+12125550100"),
        ("sip:+1-212-555-0100@host", "+12125550100"),
        ("sip:+12125550100;npdi;rn=+12125559999@host;user=phone", "+12125550100"),
        ("sip:%2B12125550100@host", "+12125550100"),
        ("tel:+12125550100", "+12125550100"),
        ("sip:+442079460000@host", "+442079460000"),
        ("sip:user@example.com", None),
        ("sip:1@host", None),
    ],
)
def test_request_uri_user_names_the_did(ruri: str, expected: str | None) -> None:
    assert dialled_did(_invite(ruri)) == expected


def test_to_decides_when_the_request_uri_has_no_user() -> None:
    req = _invite("sip:conf.example.com", to="<sip:+12125550100@conf.example.com>")
    assert dialled_user(req) == "+12125550100"
    assert dialled_did(req) == "+12125550100"


def test_default_region_applies_to_national_numbers() -> None:
    assert dialled_did(_invite("sip:02079460000@host"), "GB") == "+442079460000"


def test_no_user_anywhere() -> None:
    assert dialled_user(_invite("sip:host", to="<sip:host>")) is None
    assert dialled_did(_invite("sip:host", to="<sip:host>")) is None
