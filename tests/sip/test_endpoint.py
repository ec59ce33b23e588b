"""SipEndpoint pair scenarios: calls, BYE both ways, CANCEL, retransmissions, lost ACK
(RFC 3261 §9, §13, §15, §17; RFC 6026), driven with the in-memory harness and explicit time."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import DialogError
from sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallHandle,
    DialogId,
    Event,
    IncomingInvite,
    InviteCancelled,
    ProvisionalReceived,
)
from sip.message import Request, Response, parse_message
from sip.uri import SipUri
from tests.sip.harness import A_ADDR, B_ADDR, Pair, make_pair

OFFER = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\n"
ANSWER = b"v=0\r\no=b 1 1 IN IP4 127.0.0.2\r\n"
TARGET = SipUri("sip", "100", B_ADDR[0], B_ADDR[1])
CALLER = SipUri("sip", "alice", A_ADDR[0], A_ADDR[1])


def _only(events: list[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def _dial(pair: Pair) -> tuple[CallHandle, IncomingInvite]:
    handle = pair.a.invite(TARGET, OFFER, pair.now, from_uri=CALLER)
    pair.pump()
    incoming = _only(pair.take("b"), IncomingInvite)
    assert len(incoming) == 1
    invite = incoming[0]
    assert isinstance(invite, IncomingInvite)
    return handle, invite


def _connect(pair: Pair) -> tuple[DialogId, DialogId]:
    """A calls B, B answers; returns (a's dialog id, b's dialog id) once confirmed."""
    _, invite = _dial(pair)
    b_dialog = pair.b.answer(invite.invite_id, ANSWER, pair.now)
    pair.pump()
    answered = _only(pair.take("a"), CallAnswered)
    assert len(answered) == 1
    assert isinstance(answered[0], CallAnswered)
    assert pair.take("b") == [CallConfirmed(b_dialog)]
    return answered[0].dialog_id, b_dialog


def test_basic_call_and_bye_from_caller() -> None:
    pair = make_pair()
    handle, invite = _dial(pair)
    assert invite.request.body == OFFER
    assert invite.addr == A_ADDR
    assert [s.first_line for s in pair.wire] == [
        f"INVITE {TARGET} SIP/2.0",
        "SIP/2.0 100 Trying",
    ]
    b_dialog = pair.b.answer(invite.invite_id, ANSWER, pair.now)
    pair.pump()
    a_events = pair.take("a")
    answered = _only(a_events, CallAnswered)[0]
    assert isinstance(answered, CallAnswered)
    assert answered.handle == handle
    assert answered.response.body == ANSWER
    a_dialog = answered.dialog_id
    # The dialog ids mirror each other (§12: local and remote tags swap).
    assert (a_dialog.call_id, a_dialog.local_tag, a_dialog.remote_tag) == (
        b_dialog.call_id,
        b_dialog.remote_tag,
        b_dialog.local_tag,
    )
    assert pair.take("b") == [CallConfirmed(b_dialog)]
    pair.a.hangup(a_dialog, pair.now)
    pair.pump()
    assert pair.take("a") == [CallEnded(a_dialog, "local_bye")]
    assert pair.take("b") == [CallEnded(b_dialog, "remote_bye")]
    assert len(pair.sent("b>a", "SIP/2.0 200")) == 2  # the 2xx to INVITE and to BYE
    ok = parse_message(pair.sent("b>a", "SIP/2.0 200")[0].data)
    assert isinstance(ok, Response)
    assert ok.headers.get("Contact") is not None
    assert ok.to.tag == b_dialog.local_tag
    pair.run(100.0)  # every transaction winds down; nothing else is sent
    assert pair.take("a") == pair.take("b") == []
    assert pair.a.get_timer() is None
    assert pair.b.get_timer() is None


def test_bye_from_callee() -> None:
    pair = make_pair()
    a_dialog, b_dialog = _connect(pair)
    pair.b.hangup(b_dialog, pair.now)
    pair.pump()
    assert pair.take("b") == [CallEnded(b_dialog, "local_bye")]
    assert pair.take("a") == [CallEnded(a_dialog, "remote_bye")]
    bye = parse_message(pair.sent("b>a", "BYE")[0].data)
    assert isinstance(bye, Request)
    # §12.2.1.1: the callee's BYE goes to the caller's Contact with tags swapped.
    assert str(bye.uri) == f"sip:conf@{A_ADDR[0]}:{A_ADDR[1]}"
    assert bye.from_.tag == b_dialog.local_tag
    assert bye.to.tag == b_dialog.remote_tag


def test_in_dialog_requests_use_increasing_cseq() -> None:
    pair = make_pair()
    a_dialog, _ = _connect(pair)
    pair.a.request(a_dialog, "OPTIONS", pair.now)
    pair.pump()
    pair.a.hangup(a_dialog, pair.now)
    pair.pump()
    cseqs = []
    for prefix in ("INVITE", "OPTIONS", "BYE"):
        msg = parse_message(pair.sent("a>b", prefix)[0].data)
        cseqs.append(msg.cseq.seq)
    assert cseqs == [1, 2, 3]


def test_cancel_before_answer() -> None:
    pair = make_pair()
    handle, invite = _dial(pair)
    pair.b.send_response(invite.invite_id, 180, pair.now)
    pair.pump()
    ringing = _only(pair.take("a"), ProvisionalReceived)
    assert [e.status for e in ringing if isinstance(e, ProvisionalReceived)] == [100, 180]
    pair.a.hangup(handle, pair.now)
    pair.pump()
    assert pair.take("b") == [InviteCancelled(invite.invite_id)]
    assert pair.take("a") == [CallFailed(handle, 487, "Request Terminated")]
    assert len(pair.sent("b>a", "SIP/2.0 487")) == 1
    cancel_ok = [s for s in pair.sent("b>a", "SIP/2.0 200") if b"CANCEL" in s.data]
    assert len(cancel_ok) == 1
    assert len(pair.sent("a>b", "ACK")) == 1  # the INVITE transaction ACKs the 487
    with pytest.raises(DialogError, match="no longer waiting"):
        pair.b.answer(invite.invite_id, ANSWER, pair.now)
    pair.run(100.0)
    assert len(pair.sent("b>a", "SIP/2.0 487")) == 1  # the ACK stopped timer G


def test_cancel_waits_for_a_provisional() -> None:
    pair = make_pair()
    pair.lose("b>a", "SIP/2.0 100")
    handle = pair.a.invite(TARGET, OFFER, pair.now, from_uri=CALLER)
    pair.pump()
    pair.a.hangup(handle, pair.now)
    pair.pump()
    assert pair.sent("a>b", "CANCEL") == []  # §9.1: not before a 1xx
    invite = _only(pair.take("b"), IncomingInvite)[0]
    assert isinstance(invite, IncomingInvite)
    pair.b.send_response(invite.invite_id, 180, pair.now)
    pair.pump()
    assert len(pair.sent("a>b", "CANCEL")) == 1
    assert InviteCancelled(invite.invite_id) in pair.take("b")


def test_answer_crossing_cancel_is_acked_and_released() -> None:
    pair = make_pair()
    pair.lose("b>a", "SIP/2.0 100")
    handle = pair.a.invite(TARGET, OFFER, pair.now, from_uri=CALLER)
    pair.pump()
    invite = _only(pair.take("b"), IncomingInvite)[0]
    assert isinstance(invite, IncomingInvite)
    pair.a.hangup(handle, pair.now)  # no 1xx seen yet: the CANCEL waits
    b_dialog = pair.b.answer(invite.invite_id, ANSWER, pair.now)
    pair.pump()
    assert pair.take("a") == [CallFailed(handle, 487, "Request Terminated")]
    assert len(pair.sent("a>b", "ACK")) == 1
    assert len(pair.sent("a>b", "BYE")) == 1
    assert pair.take("b") == [CallConfirmed(b_dialog), CallEnded(b_dialog, "remote_bye")]


def test_retransmitted_invite_is_one_call() -> None:
    pair = make_pair()
    pair.duplicate("a>b", "INVITE")
    pair.lose("b>a", "SIP/2.0 100", times=2)  # the answers to both copies
    pair.a.invite(TARGET, OFFER, pair.now, from_uri=CALLER)
    pair.run(2.0)  # timer A retransmits once the 100 was lost
    assert len(pair.sent("a>b", "INVITE")) == 2
    assert len(_only(pair.take("b"), IncomingInvite)) == 1
    # Every copy is answered with the last response, 100 Trying.
    assert len(pair.sent("b>a", "SIP/2.0 100")) == 3


def test_lost_ack_retransmits_2xx_then_byes() -> None:
    pair = make_pair()
    pair.lose("a>b", "ACK")
    _, invite = _dial(pair)
    b_dialog = pair.b.answer(invite.invite_id, ANSWER, pair.now)
    pair.run(40.0)
    oks = [s for s in pair.sent("b>a", "SIP/2.0 200") if b"INVITE" in s.data.split(b"CSeq:")[1]]
    times = [s.at for s in oks]
    # §13.3.1.4: T1, doubling, capped at T2 (4 s), until 64·T1 = 32 s.
    assert times[:8] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]
    assert times[-1] == 31.5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) == 4.0
    byes = pair.sent("b>a", "BYE")
    assert len(byes) == 1
    assert byes[0].at == 32.0
    assert CallEnded(b_dialog, "ack_timeout") in pair.take("b")
    a_events = pair.take("a")
    assert any(isinstance(e, CallEnded) and e.reason == "remote_bye" for e in a_events)
    # The caller re-ACKed every retransmitted 2xx it received (RFC 6026 Accepted state).
    assert len(pair.sent("a>b", "ACK")) == len(oks)


def test_hangup_before_ack_waits_for_the_ack() -> None:
    pair = make_pair()
    pair.lose("a>b", "ACK", times=1)
    _, invite = _dial(pair)
    b_dialog = pair.b.answer(invite.invite_id, ANSWER, pair.now)
    pair.pump()
    pair.b.hangup(b_dialog, pair.now)
    pair.pump()
    assert pair.sent("b>a", "BYE") == []  # §15: no BYE before the ACK
    pair.run(1.0)  # the 2xx is retransmitted at 0.5 s, the ACK gets through this time
    byes = pair.sent("b>a", "BYE")
    assert [s.at for s in byes] == [0.5]
    assert pair.take("b") == [CallEnded(b_dialog, "local_bye")]


def test_rejected_invite_is_acked_by_the_transaction() -> None:
    pair = make_pair()
    handle, invite = _dial(pair)
    pair.b.send_response(invite.invite_id, 486, pair.now)
    pair.run(50.0)
    assert pair.take("a") == [
        ProvisionalReceived(handle, 100, _provisional(pair)),
        CallFailed(handle, 486, "Busy Here"),
    ]
    ack = parse_message(pair.sent("a>b", "ACK")[0].data)
    invite_msg = parse_message(pair.sent("a>b", "INVITE")[0].data)
    # §17.1.1.3: same branch as the INVITE, To with the tag of the 486.
    assert ack.top_via.branch == invite_msg.top_via.branch
    assert ack.to.tag is not None
    assert pair.take("b") == []


def _provisional(pair: Pair) -> Response:
    msg = parse_message(pair.sent("b>a", "SIP/2.0 100")[0].data)
    assert isinstance(msg, Response)
    return msg


def test_invite_nobody_answers_times_out_with_408() -> None:
    pair = make_pair()
    pair.lose("a>b", "INVITE")
    handle = pair.a.invite(TARGET, OFFER, pair.now, from_uri=CALLER)
    pair.run(40.0)
    assert pair.take("a") == [CallFailed(handle, 408, "Request Timeout")]
    assert [s.at for s in pair.sent("a>b", "INVITE")] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]


def test_answer_requires_a_pending_invite() -> None:
    pair = make_pair()
    _, invite = _dial(pair)
    pair.b.send_response(invite.invite_id, 404, pair.now)
    with pytest.raises(DialogError):
        pair.b.send_response(invite.invite_id, 180, pair.now)
    with pytest.raises(DialogError, match="use answer"):
        pair.b.send_response(invite.invite_id, 200, pair.now)
    with pytest.raises(DialogError):
        pair.a.hangup(DialogId("nope", "x", "y"), pair.now)


@settings(max_examples=120, deadline=None)
@given(lost=st.sets(st.integers(min_value=0, max_value=30), max_size=6))
def test_any_loss_pattern_winds_down_cleanly(lost: set[int]) -> None:
    """Whatever messages are lost, no exception, events stay coherent, timers run out."""
    pair = make_pair()
    for index in lost:
        pair.mangle[index] = lambda _data: b""  # an empty datagram is ignored: a loss
    handle = pair.a.invite(TARGET, OFFER, pair.now, from_uri=CALLER)
    pair.run(1.0)
    for event in pair.take("b"):
        if isinstance(event, IncomingInvite):
            pair.b.answer(event.invite_id, ANSWER, pair.now)
    pair.run(2.0)
    a_events = pair.take("a")
    answered = [e for e in a_events if isinstance(e, CallAnswered)]
    failed = [e for e in a_events if isinstance(e, CallFailed)]
    assert len(answered) + len(failed) <= 1
    if answered:
        pair.a.hangup(answered[0].dialog_id, pair.now)
    elif not failed:
        pair.a.hangup(handle, pair.now)
    pair.run(300.0)
    assert pair.a.get_timer() is None
    assert pair.b.get_timer() is None
    b_events = pair.take("b")
    assert len(_only(b_events, CallConfirmed)) <= 1
    assert len(_only(b_events, CallEnded)) <= 1
