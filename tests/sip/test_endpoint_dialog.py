"""In-dialog behaviour of SipEndpoint: re-INVITE both ways and glare, OPTIONS, INFO DTMF,
481/500 cases, peer gone (RFC 3261 §12.2, §14, §15; RFC 6086)."""

from __future__ import annotations

import pytest

from sip.errors import DialogError
from sip.events import (
    CallEnded,
    DtmfInfo,
    IncomingInvite,
    MessageRejected,
    ReInviteAnswered,
    ReInviteReceived,
    RequestCompleted,
)
from sip.message import Request, Response, parse_message
from tests.sip.harness import B_ADDR, make_pair, raw_request
from tests.sip.test_endpoint import ANSWER, _connect

HOLD = b"v=0\r\na=sendonly\r\n"
HELD = b"v=0\r\na=recvonly\r\n"
RESUME = b"v=0\r\na=sendrecv\r\n"
PEER = ("127.0.0.9", 5099)


def _answer(pair_b_response: list[Response], status: int) -> Response:
    found = [r for r in pair_b_response if r.status == status]
    assert len(found) == 1, [r.status for r in pair_b_response]
    return found[0]


def _responses(outs: list[bytes]) -> list[Response]:
    messages = [parse_message(d) for d in outs]
    assert all(isinstance(m, Response) for m in messages)
    return [m for m in messages if isinstance(m, Response)]


def test_reinvite_hold_and_resume_from_caller() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    for offer, answer in ((HOLD, HELD), (RESUME, RESUME)):
        pair.a.reinvite(a_dialog, offer, pair.now)
        pair.pump()
        received = pair.take("b")
        assert len(received) == 1
        event = received[0]
        assert isinstance(event, ReInviteReceived)
        assert event.dialog_id == b_dialog
        assert event.request.body == offer
        pair.b.answer_reinvite(event.reinvite_id, 200, answer, pair.now)
        pair.pump()
        answered = pair.take("a")
        assert len(answered) == 1
        result = answered[0]
        assert isinstance(result, ReInviteAnswered)
        assert (result.dialog_id, result.status) == (a_dialog, 200)
        assert result.response is not None
        assert result.response.body == answer
        assert pair.take("b") == []  # the ACK of a re-INVITE confirms nothing new
    assert len(pair.sent("a>b", "ACK")) == 3
    pair.run(60.0)
    # Both ACKs arrived, so no 2xx was ever retransmitted and the call is intact.
    assert len(pair.sent("b>a", "SIP/2.0 200")) == 3
    assert pair.take("a") == pair.take("b") == []


def test_reinvite_hold_from_callee_and_refusal() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    pair.b.reinvite(b_dialog, HOLD, pair.now)
    pair.pump()
    event = pair.take("a")[0]
    assert isinstance(event, ReInviteReceived)
    assert event.dialog_id == a_dialog
    pair.a.answer_reinvite(event.reinvite_id, 488, b"", pair.now)
    pair.pump()
    result = pair.take("b")[0]
    assert isinstance(result, ReInviteAnswered)
    assert result.status == 488
    # The dialog survives a refused re-INVITE (§14.1) and can try again.
    pair.b.reinvite(b_dialog, RESUME, pair.now)
    pair.pump()
    event = pair.take("a")[0]
    assert isinstance(event, ReInviteReceived)
    pair.a.answer_reinvite(event.reinvite_id, 200, RESUME, pair.now)
    pair.pump()
    result = pair.take("b")[0]
    assert isinstance(result, ReInviteAnswered)
    assert result.status == 200


def test_reinvite_glare_gets_491_on_both_sides() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    pair.a.reinvite(a_dialog, HOLD, pair.now)
    pair.b.reinvite(b_dialog, HOLD, pair.now)
    pair.pump()
    statuses = {
        name: [e.status for e in pair.take(name) if isinstance(e, ReInviteAnswered)]
        for name in ("a", "b")
    }
    assert statuses == {"a": [491], "b": [491]}
    pair.a.reinvite(a_dialog, HOLD, pair.now)  # after glare either side may retry
    with pytest.raises(DialogError, match="already in progress"):
        pair.a.reinvite(a_dialog, HOLD, pair.now)


def test_reinvite_without_ack_ends_the_call() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    pair.lose("a>b", "ACK")
    pair.a.reinvite(a_dialog, HOLD, pair.now)
    pair.pump()
    event = pair.take("b")[0]
    assert isinstance(event, ReInviteReceived)
    pair.b.answer_reinvite(event.reinvite_id, 200, HELD, pair.now)
    pair.run(40.0)
    assert CallEnded(b_dialog, "ack_timeout") in pair.take("b")
    assert CallEnded(a_dialog, "remote_bye") in pair.take("a")


def test_options_in_and_out_of_dialog() -> None:
    pair = make_pair()
    out = pair.inject("b", raw_request("OPTIONS", uri="sip:127.0.0.2:5062"), PEER)
    ok = _answer(_responses([o.data for o in out]), 200)
    assert ok.headers.get_all("Allow") == ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"]
    assert ok.headers.get("Accept") == "application/sdp"
    assert "Supported" in ok.headers
    assert ok.to.tag is not None
    a_dialog, _ = _connect(pair)
    pair.a.request(a_dialog, "OPTIONS", pair.now)
    pair.pump()
    assert pair.take("a") == [RequestCompleted(a_dialog, "OPTIONS", 200)]


def test_info_dtmf_relay_becomes_a_digit() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    relay = (("Content-Type", "application/dtmf-relay"),)
    pair.a.request(a_dialog, "INFO", pair.now, headers=relay, body=b"Signal=5\r\nDuration=160\r\n")
    pair.a.request(a_dialog, "INFO", pair.now, headers=relay, body=b"Signal=#\r\nDuration=100\r\n")
    other = (("Content-Type", "application/media_control+xml"),)
    pair.a.request(a_dialog, "INFO", pair.now, headers=other, body=b"<media_control/>")
    pair.pump()
    assert pair.take("b") == [DtmfInfo(b_dialog, "5", 160), DtmfInfo(b_dialog, "#", 100)]
    assert pair.take("a") == [RequestCompleted(a_dialog, "INFO", 200)] * 3


def test_requests_with_unknown_to_tag_get_481() -> None:
    pair = make_pair()
    for method in ("BYE", "INFO", "OPTIONS", "INVITE"):
        data = raw_request(method, to_tag="nosuch", branch=f"z9hG4bK{method}")
        answers = _responses([o.data for o in pair.inject("b", data, PEER)])
        assert [r.status for r in answers] == [481], method
    # ACK never gets an answer (§17), whatever it matches.
    assert pair.inject("b", raw_request("ACK", to_tag="nosuch", branch="z9hG4bKack"), PEER) == []
    # BYE and INFO outside any dialog (no To tag) cannot be served either.
    for method in ("BYE", "INFO"):
        data = raw_request(method, branch=f"z9hG4bKno{method}", call_id=f"{method}@x")
        assert [r.status for r in _responses([o.data for o in pair.inject("b", data, PEER)])] == [
            481
        ]
    rejected = [e for e in pair.take("b") if isinstance(e, MessageRejected)]
    assert [e.status for e in rejected] == [481] * 6


def test_cancel_matching_nothing_gets_481() -> None:
    pair = make_pair()
    out = pair.inject("b", raw_request("CANCEL", branch="z9hG4bKlonely"), PEER)
    assert [r.status for r in _responses([o.data for o in out])] == [481]


def test_cancel_after_answer_has_no_effect() -> None:
    pair = make_pair()
    invite = raw_request(
        "INVITE",
        branch="z9hG4bKinv1",
        body=b"v=0\r\n",
        headers=(("Content-Type", "application/sdp"),),
    )
    pair.inject("b", invite, PEER)
    incoming = pair.take("b")[0]
    assert isinstance(incoming, IncomingInvite)
    pair.b.answer(incoming.invite_id, ANSWER, pair.now)
    pair.b.datagrams_to_send(pair.now)
    out = pair.inject("b", raw_request("CANCEL", branch="z9hG4bKinv1"), PEER)
    assert [r.status for r in _responses([o.data for o in out])] == [200]  # §9.2
    assert pair.take("b") == []


def test_out_of_order_cseq_gets_500() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    pair.a.request(a_dialog, "OPTIONS", pair.now)
    pair.pump()
    stale = raw_request(
        "INFO",
        call_id=b_dialog.call_id,
        from_tag=b_dialog.remote_tag,
        to_tag=b_dialog.local_tag,
        cseq=1,
        branch="z9hG4bKold",
    )
    answers = _responses([o.data for o in pair.inject("b", stale, PEER)])
    assert [r.status for r in answers] == [500]  # §12.2.2: lower than the last (2)


def test_peer_answering_481_ends_the_dialog() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    # B forgets the call (say it restarted): its next answer to A is 481.
    pair.b = make_pair().b
    pair.a.request(a_dialog, "OPTIONS", pair.now)
    pair.pump()
    assert pair.take("a") == [
        RequestCompleted(a_dialog, "OPTIONS", 481),
        CallEnded(a_dialog, "dialog_gone"),
    ]
    assert b_dialog.call_id == a_dialog.call_id


def test_peer_silent_times_out_the_dialog() -> None:
    pair = make_pair()
    a_dialog, _ = _connect(pair)
    pair.lose("a>b", "OPTIONS")
    pair.a.request(a_dialog, "OPTIONS", pair.now)
    pair.run(40.0)
    assert pair.take("a") == [
        RequestCompleted(a_dialog, "OPTIONS", 408),
        CallEnded(a_dialog, "timeout"),
    ]


def test_request_refuses_methods_with_their_own_api() -> None:
    pair = make_pair()
    a_dialog, _ = _connect(pair)
    for method in ("INVITE", "BYE", "ACK", "CANCEL"):
        with pytest.raises(DialogError, match="its own call"):
            pair.a.request(a_dialog, method, pair.now)


def test_in_dialog_request_carries_route_set_and_target() -> None:
    pair = make_pair()
    invite = raw_request(
        "INVITE",
        branch="z9hG4bKrr",
        body=b"v=0\r\n",
        headers=(
            ("Content-Type", "application/sdp"),
            ("Record-Route", "<sip:proxy1.example.test;lr>, <sip:proxy2.example.test;lr>"),
        ),
    )
    pair.inject("b", invite, PEER)
    incoming = pair.take("b")[0]
    assert isinstance(incoming, IncomingInvite)
    dialog = pair.b.answer(incoming.invite_id, ANSWER, pair.now)
    ok = _responses([o.data for o in pair.b.datagrams_to_send(pair.now)])[0]
    assert ok.headers.get_all("Record-Route") == [
        "<sip:proxy1.example.test;lr>",
        "<sip:proxy2.example.test;lr>",
    ]
    pair.b.request(dialog, "OPTIONS", pair.now)
    sent = pair.b.datagrams_to_send(pair.now)
    assert [o.addr for o in sent] == [PEER]
    req = parse_message(sent[0].data)
    assert isinstance(req, Request)
    assert str(req.uri) == "sip:caller@127.0.0.9:5099"  # the remote target (Contact)
    assert req.headers.get_all("Route") == [
        "<sip:proxy1.example.test;lr>",
        "<sip:proxy2.example.test;lr>",
    ]
    assert B_ADDR[0] in str(req.top_via)


def test_reinvite_left_unanswered_times_out() -> None:
    pair = make_pair()
    a_dialog, _ = _connect(pair)
    pair.a.reinvite(a_dialog, HOLD, pair.now)
    pair.run(31.0)  # B's runtime never answers; only 100 Trying came back
    assert pair.take("a") == []
    pair.run(40.0)
    assert pair.take("a") == [
        ReInviteAnswered(a_dialog, 408, None),
        CallEnded(a_dialog, "timeout"),
    ]
    assert pair.a.get_timer() is None


def test_reinvite_answered_after_our_bye_is_still_acked() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    pair.a.reinvite(a_dialog, HOLD, pair.now)
    pair.pump()
    event = pair.take("b")[0]
    assert isinstance(event, ReInviteReceived)
    pair.b.answer_reinvite(event.reinvite_id, 200, HELD, pair.now)  # still in B's outbox
    pair.a.hangup(a_dialog, pair.now)  # the BYE crosses the 200
    acks_before = len(pair.sent("a>b", "ACK"))
    pair.run(100.0)
    assert pair.take("a") == [CallEnded(a_dialog, "local_bye")]
    assert pair.take("b") == [CallEnded(b_dialog, "remote_bye")]
    ack = parse_message(pair.sent("a>b", "ACK")[acks_before].data)
    assert isinstance(ack, Request)
    assert str(ack.cseq) == "2 ACK"  # the re-INVITE's CSeq, not the BYE's
    assert pair.a.get_timer() is None
    assert pair.b.get_timer() is None
