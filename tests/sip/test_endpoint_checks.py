"""The UAS checks in RFC 3261 §8.2 order, the dtmf-relay format, destinations and ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import ParseError, TransactionError
from sip.ids import MAGIC_COOKIE, SecretIds, SequentialIds, branch, call_id, tag
from sip.message import Response, parse_message
from sip.uas import parse_dtmf_relay, sendable
from tests.sip.harness import B_ADDR, make_endpoint, raw_request

PEER = ("198.51.100.7", 40000)
SDP = ("Content-Type", "application/sdp")


def _answer(data: bytes) -> Response:
    ep = make_endpoint(B_ADDR, "b")
    ep.receive_datagram(data, PEER, 0.0)
    finals = []
    for out in ep.datagrams_to_send(0.0):
        message = parse_message(out.data)
        assert isinstance(message, Response)
        if message.status >= 200:
            finals.append(message)
    assert len(finals) == 1
    return finals[0]


CASES = [
    # (what, request, expected status, header that must be present)
    ("unknown method", raw_request("FOO"), 501, "Allow"),
    ("known but not ours", raw_request("REGISTER"), 405, "Allow"),
    ("method before scheme", raw_request("SUBSCRIBE", uri="mailto:x@y"), 405, "Allow"),
    ("scheme", raw_request("OPTIONS", uri="mailto:x@y"), 416, None),
    (
        "scheme before Require",
        raw_request("OPTIONS", uri="mailto:x@y", headers=(("Require", "100rel"),)),
        416,
        None,
    ),
    (
        "To tag before Require",
        raw_request("INFO", to_tag="t", headers=(("Require", "x"),)),
        481,
        None,
    ),
    (
        "Require",
        raw_request("OPTIONS", headers=(("Require", "100rel, timer"),)),
        420,
        "Unsupported",
    ),
    (
        "Require before content",
        raw_request(
            "INVITE", headers=(("Require", "foo"), ("Content-Type", "text/plain")), body=b"x"
        ),
        420,
        "Unsupported",
    ),
    (
        "content type",
        raw_request("INVITE", headers=(("Content-Type", "text/plain"),), body=b"hello"),
        415,
        "Accept",
    ),
    (
        "content before Accept",
        raw_request(
            "INVITE", headers=(("Content-Type", "text/plain"), ("Accept", "text/x")), body=b"x"
        ),
        415,
        "Accept",
    ),
    (
        "Accept",
        raw_request("INVITE", headers=(SDP, ("Accept", "text/x")), body=b"v=0\r\n"),
        406,
        "Accept",
    ),
]


@pytest.mark.parametrize(("what", "data", "status", "header"), CASES, ids=[c[0] for c in CASES])
def test_checks_in_rfc_order(what: str, data: bytes, status: int, header: str | None) -> None:
    answer = _answer(data)
    assert answer.status == status, what
    if header is not None:
        assert header in answer.headers


def test_unsupported_lists_every_required_token() -> None:
    answer = _answer(raw_request("OPTIONS", headers=(("Require", "100rel, timer"),)))
    assert answer.headers.get_all("Unsupported") == ["100rel", "timer"]


def test_require_is_ignored_on_ack_and_cancel() -> None:
    ep = make_endpoint(B_ADDR, "b")
    ep.receive_datagram(raw_request("ACK", headers=(("Require", "x"),)), PEER, 0.0)
    assert ep.datagrams_to_send(0.0) == []
    cancel = _answer(raw_request("CANCEL", headers=(("Require", "x"),)))
    assert cancel.status == 481  # not 420: CANCEL matches by transaction


def test_invites_accepting_sdp_pass() -> None:
    for accept in ("application/sdp", "application/*", "*/*", "text/x, application/SDP;q=0.5"):
        ep = make_endpoint(B_ADDR, "b")
        data = raw_request("INVITE", headers=(SDP, ("Accept", accept)), body=b"v=0\r\n")
        ep.receive_datagram(data, PEER, 0.0)
        statuses = [parse_message(o.data) for o in ep.datagrams_to_send(0.0)]
        assert [getattr(s, "status", None) for s in statuses] == [100], accept


def test_dtmf_relay_golden_vector() -> None:
    assert parse_dtmf_relay(b"Signal=5\r\nDuration=160\r\n") == ("5", 160)
    assert parse_dtmf_relay(b"Signal= *\nDuration= 250") == ("*", 250)
    assert parse_dtmf_relay(b"signal=10\r\n") == ("*", 250)  # event number form, default length
    assert parse_dtmf_relay(b"Signal=d\r\nDuration=99999999\r\n") == ("D", 250)


def test_dtmf_relay_errors_say_what_is_wrong() -> None:
    with pytest.raises(ParseError, match="no Signal line"):
        parse_dtmf_relay(b"Duration=160\r\n")
    with pytest.raises(ParseError, match="not a DTMF key"):
        parse_dtmf_relay(b"Signal=16\r\n")


@given(st.binary(max_size=200))
def test_dtmf_relay_never_raises_anything_but_parse_error(body: bytes) -> None:
    try:
        digit, duration = parse_dtmf_relay(body)
    except ParseError:
        return
    assert digit in "0123456789*#ABCD"
    assert 0 <= duration <= 60_000


def test_sendable_refuses_broadcast_multicast_and_unspecified() -> None:
    assert not sendable("255.255.255.255")
    assert not sendable("224.0.0.1")
    assert not sendable("0.0.0.0")
    assert not sendable("[ff02::1]")
    assert sendable("192.0.2.1")
    assert sendable("[2001:db8::1]")
    assert sendable("host.example.com")


def test_sequential_ids_are_unique_and_shaped() -> None:
    ids = SequentialIds("x")
    branches = {branch(ids) for _ in range(100)}
    assert len(branches) == 100
    assert all(b.startswith(MAGIC_COOKIE) and len(b) == len(MAGIC_COOKIE) + 16 for b in branches)
    assert len(tag(ids)) == 12
    assert call_id(ids, "[2001:db8::1]").endswith("@[2001:db8::1]")


def test_secret_ids_are_hex_of_the_requested_size() -> None:
    token = SecretIds().token(8)
    assert len(token) == 16
    int(token, 16)
    assert SecretIds().token(8) != token


def test_an_answered_transaction_keeps_absorbing_retransmissions_without_its_request() -> None:
    """After the final response only the sent bytes are kept (§17.2.2: a retransmitted request
    gets the same response again); the parsed request is released for the collector's sake."""
    ep = make_endpoint(B_ADDR, "b")
    request = raw_request("OPTIONS")
    ep.receive_datagram(request, PEER, 0.0)
    first = [out.data for out in ep.datagrams_to_send(0.0)]
    (entry,) = ep._server.values()
    assert entry.parsed is None and entry.tx.last == first[-1]
    with pytest.raises(TransactionError, match="released"):
        _ = entry.request
    ep.receive_datagram(request, PEER, 1.0)  # the peer did not hear us: it retransmits
    assert [out.data for out in ep.datagrams_to_send(1.0)] == [first[-1]]
