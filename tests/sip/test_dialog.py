"""Dialog state × input, 2xx retransmission schedule, CSeq rules and the requests built inside a
dialog (RFC 3261 §9.1, §12, §13.2.2.4, §13.3.1.4, §17.1.1.3)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.dialog import (
    Dialog,
    DialogAction,
    DialogInput,
    DialogState,
    Retransmit,
    Role,
    uac_route_set,
    uas_route_set,
)
from sip.errors import DialogError
from sip.events import DialogId
from sip.headers import NameAddr
from sip.message import Request, Response, parse_message
from sip.timers import TimerConfig
from sip.uac import (
    Local,
    build_ack_for_2xx,
    build_ack_for_error,
    build_ack_for_reinvite,
    build_cancel,
    build_in_dialog,
    build_invite,
    request_uri_and_routes,
)
from sip.uri import SipUri

S = DialogState
D = DialogInput
A = DialogAction

# Written from §12–§15, independently of the module's table.
EXPECTED: dict[tuple[DialogState, DialogInput], tuple[DialogState, tuple[DialogAction, ...]]] = {
    (S.ACCEPTED, D.ACK): (S.CONFIRMED, (A.CONFIRM,)),
    (S.ACCEPTED, D.ACK_TIMEOUT): (S.TERMINATED, (A.SEND_BYE, A.ENDED)),
    (S.ACCEPTED, D.BYE_RECEIVED): (S.TERMINATED, (A.ENDED,)),
    (S.ACCEPTED, D.HANGUP): (S.BYE_AFTER_ACK, ()),
    (S.ACCEPTED, D.PEER_GONE): (S.TERMINATED, (A.ENDED,)),
    (S.BYE_AFTER_ACK, D.ACK): (S.TERMINATED, (A.SEND_BYE, A.ENDED)),
    (S.BYE_AFTER_ACK, D.ACK_TIMEOUT): (S.TERMINATED, (A.SEND_BYE, A.ENDED)),
    (S.BYE_AFTER_ACK, D.BYE_RECEIVED): (S.TERMINATED, (A.ENDED,)),
    (S.BYE_AFTER_ACK, D.HANGUP): (S.BYE_AFTER_ACK, ()),
    (S.CONFIRMED, D.ACK): (S.CONFIRMED, ()),
    (S.CONFIRMED, D.ACK_TIMEOUT): (S.TERMINATED, (A.SEND_BYE, A.ENDED)),
    (S.CONFIRMED, D.BYE_RECEIVED): (S.TERMINATED, (A.ENDED,)),
    (S.CONFIRMED, D.HANGUP): (S.TERMINATED, (A.SEND_BYE, A.ENDED)),
    (S.CONFIRMED, D.PEER_GONE): (S.TERMINATED, (A.ENDED,)),
}

LOCAL = Local("192.0.2.10", 5060, "test-ua")


def _dialog(state: DialogState = S.CONFIRMED, routes: list[str] | None = None) -> Dialog:
    return Dialog(
        id=DialogId("cid@x", "ours", "theirs"),
        role=Role.UAS,
        local=NameAddr.parse("<sip:100@192.0.2.10>;tag=ours"),
        remote=NameAddr.parse('"Alice" <sip:alice@198.51.100.1>;tag=theirs'),
        remote_target=SipUri.parse("sip:alice@198.51.100.1:5070"),
        route_set=routes or [],
        local_seq=10,
        remote_seq=5,
        addr=("198.51.100.1", 5070),
        transport="UDP",
        state=state,
    )


@pytest.mark.parametrize(
    ("state", "inp"),
    list(itertools.product(DialogState, DialogInput)),
    ids=[f"{s.value}-{i.value}" for s, i in itertools.product(DialogState, DialogInput)],
)
def test_dialog_state_by_input(state: DialogState, inp: DialogInput) -> None:
    dialog = _dialog(state)
    dialog.retransmit = Retransmit(b"200", None, 1, 0.5, 0.5, 32.0)
    if (state, inp) not in EXPECTED:
        with pytest.raises(DialogError, match="illegal"):
            dialog.feed(inp)
        return
    next_state, actions = EXPECTED[(state, inp)]
    assert dialog.feed(inp) == actions
    assert dialog.state is next_state
    if next_state is S.TERMINATED:
        # The pending 2xx retransmission dies with the dialog.
        assert dialog.next_deadline() is None


def test_2xx_retransmission_doubles_to_t2_and_gives_up_at_64_t1() -> None:
    timers = TimerConfig()
    rt = Retransmit.start(b"200", dest=None, cseq=1, now=10.0, timers=timers, reliable=False)
    times = []
    while rt.next_at < rt.give_up_at:
        times.append(rt.next_at - 10.0)
        rt.advance(rt.next_at, timers)
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert rt.give_up_at == 42.0
    tcp = Retransmit.start(b"200", dest=None, cseq=1, now=0.0, timers=timers, reliable=True)
    assert tcp.next_at == float("inf")
    assert tcp.give_up_at == 32.0  # the ACK wait applies over TCP too


def test_remote_cseq_must_not_go_backwards() -> None:
    dialog = _dialog()
    assert dialog.accept_remote_cseq(6, "INFO")
    assert not dialog.accept_remote_cseq(5, "BYE")
    assert dialog.accept_remote_cseq(6, "ACK")  # ACK and CANCEL reuse a CSeq
    assert dialog.next_cseq() == 11
    assert dialog.next_cseq() == 12


@given(st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=30))
def test_remote_cseq_accepts_exactly_the_non_decreasing_ones(seqs: list[int]) -> None:
    dialog = _dialog()
    dialog.remote_seq = None
    highest: int | None = None
    for seq in seqs:
        accepted = dialog.accept_remote_cseq(seq, "INFO")
        assert accepted == (highest is None or seq >= highest)
        if accepted:
            highest = seq


def test_route_sets_keep_uas_order_and_reverse_for_uac() -> None:
    rr = ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert uas_route_set(rr) == rr
    assert uac_route_set(rr) == ["<sip:p2;lr>", "<sip:p1;lr>"]


def test_loose_and_strict_routing() -> None:
    loose = _dialog(routes=["<sip:p1.example.test;lr>"])
    uri, routes = request_uri_and_routes(loose)
    assert str(uri) == "sip:alice@198.51.100.1:5070"
    assert routes == ["<sip:p1.example.test;lr>"]
    strict = _dialog(routes=["<sip:p1.example.test>", "<sip:p2.example.test;lr>"])
    uri, routes = request_uri_and_routes(strict)
    # §12.2.1.1: a strict first hop becomes the Request-URI, the target goes last.
    assert str(uri) == "sip:p1.example.test"
    assert routes == ["<sip:p2.example.test;lr>", "<sip:alice@198.51.100.1:5070>"]


def test_in_dialog_request_fields() -> None:
    dialog = _dialog(routes=["<sip:p1.example.test;lr>"])
    req = build_in_dialog(LOCAL, dialog, "BYE", cseq=11, branch="z9hG4bKbye1")
    again = parse_message(bytes(req))
    assert isinstance(again, Request)
    assert again.method == "BYE"
    assert str(again.uri) == "sip:alice@198.51.100.1:5070"
    assert again.from_.tag == "ours"
    assert again.to.tag == "theirs"
    assert again.to.display_name == "Alice"
    assert str(again.cseq) == "11 BYE"
    assert again.top_via.branch == "z9hG4bKbye1"
    assert again.top_via.rport is True
    assert again.headers.get_all("Route") == ["<sip:p1.example.test;lr>"]
    assert again.max_forwards == 70


def test_ack_for_2xx_is_a_new_transaction_with_the_invite_cseq() -> None:
    dialog = _dialog()
    ack = build_ack_for_2xx(LOCAL, dialog, invite_cseq=7, branch="z9hG4bKack")
    assert str(ack.cseq) == "7 ACK"
    assert ack.top_via.branch == "z9hG4bKack"
    assert "Contact" not in ack.headers


def _sent_invite() -> Request:
    return build_invite(
        LOCAL,
        target=SipUri.parse("sip:bob@198.51.100.2"),
        from_=NameAddr.parse("<sip:conf@192.0.2.10>;tag=ft"),
        call_id="inv@192.0.2.10",
        branch="z9hG4bKinv",
        transport="UDP",
        body=b"v=0\r\n",
        headers=(("X-Room", "42"),),
    )


def test_invite_fields() -> None:
    invite = parse_message(bytes(_sent_invite()))
    assert isinstance(invite, Request)
    assert invite.to.tag is None
    assert invite.from_.tag == "ft"
    assert str(invite.cseq) == "1 INVITE"
    assert invite.content_type == "application/sdp"
    assert invite.headers.get("X-Room") == "42"
    assert invite.headers.get("Contact") == "<sip:conf@192.0.2.10:5060>"
    assert invite.body == b"v=0\r\n"


def test_ack_for_error_and_cancel_copy_the_invite() -> None:
    invite = _sent_invite()
    busy = parse_message(
        b"SIP/2.0 486 Busy Here\r\n"
        + f"Via: {invite.top_via}\r\n".encode()
        + b"From: <sip:conf@192.0.2.10>;tag=ft\r\n"
        + b"To: <sip:bob@198.51.100.2>;tag=bt\r\n"
        + b"Call-ID: inv@192.0.2.10\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(busy, Response)
    ack = build_ack_for_error(invite, busy)
    assert (ack.method, str(ack.uri)) == ("ACK", "sip:bob@198.51.100.2")
    assert ack.top_via.branch == "z9hG4bKinv"  # §17.1.1.3: same branch as the INVITE
    assert ack.to.tag == "bt"
    assert str(ack.cseq) == "1 ACK"
    cancel = build_cancel(invite)
    assert cancel.top_via.branch == "z9hG4bKinv"  # §9.1: same branch, so it meets the INVITE
    assert cancel.to.tag is None
    assert str(cancel.cseq) == "1 CANCEL"
    assert cancel.body == b""


def test_ack_for_reinvite_is_built_from_the_request_alone() -> None:
    dialog = _dialog(routes=["<sip:p1.example.test;lr>"])
    reinvite = build_in_dialog(LOCAL, dialog, "INVITE", cseq=12, branch="z9hG4bKre", body=b"v=0")
    ack = build_ack_for_reinvite(LOCAL, reinvite, "z9hG4bKack2")
    assert (ack.method, str(ack.uri)) == ("ACK", str(reinvite.uri))
    assert str(ack.cseq) == "12 ACK"
    assert ack.top_via.branch == "z9hG4bKack2"
    assert ack.to.tag == "theirs"
    assert ack.headers.get_all("Route") == ["<sip:p1.example.test;lr>"]
