"""SipEndpoint protection and response routing: full tables (503 + Retry-After), scanners,
banned sources, oversize datagrams; §18.2.2 / RFC 3581 destinations; TCP timers (§17)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from sip.events import CallAnswered, IncomingInvite, MessageRejected, RequestDropped
from sip.message import Response, parse_message
from sip.protection import Guard, GuardConfig
from sip.uri import SipUri
from tests.sip.harness import A_ADDR, B_ADDR, make_endpoint, make_pair, raw_request

PEER = ("198.51.100.7", 40000)
SDP_HEADERS = (("Content-Type", "application/sdp"),)


def _statuses(outs: list[bytes]) -> list[int]:
    statuses = []
    for data in outs:
        message = parse_message(data)
        assert isinstance(message, Response)
        statuses.append(message.status)
    return statuses


def _options(n: int) -> bytes:
    return raw_request("OPTIONS", branch=f"z9hG4bKopt{n}", call_id=f"opt{n}@x")


def test_full_transaction_table_answers_503_statelessly() -> None:
    pair = make_pair(max_transactions=2)
    assert _statuses([o.data for o in pair.inject("b", _options(1), PEER)]) == [200]
    assert _statuses([o.data for o in pair.inject("b", _options(2), PEER)]) == [200]
    out = pair.inject("b", _options(3), PEER)
    assert _statuses([o.data for o in out]) == [503]
    busy = parse_message(out[0].data)
    assert busy.headers.get("Retry-After") == "5"
    assert MessageRejected(PEER, 503, "transaction table full") in pair.take("b")
    # A retransmission of a known request is still served from its transaction.
    assert _statuses([o.data for o in pair.inject("b", _options(1), PEER)]) == [200]
    # Once timer J frees the entries, new requests are served again.
    pair.b.handle_timer(40.0)
    pair.now = 40.0
    assert _statuses([o.data for o in pair.inject("b", _options(4), PEER)]) == [200]


def test_full_dialog_table_answers_503_to_new_calls() -> None:
    pair = make_pair(max_dialogs=1)
    first = raw_request(
        "INVITE", branch="z9hG4bKc1", call_id="c1@x", body=b"v=0\r\n", headers=SDP_HEADERS
    )
    second = raw_request(
        "INVITE", branch="z9hG4bKc2", call_id="c2@x", body=b"v=0\r\n", headers=SDP_HEADERS
    )
    assert _statuses([o.data for o in pair.inject("b", first, PEER)]) == [100]
    out = pair.inject("b", second, PEER)
    assert _statuses([o.data for o in out]) == [503]
    assert parse_message(out[0].data).headers.get("Retry-After") == "5"
    assert len([e for e in pair.take("b") if isinstance(e, IncomingInvite)]) == 1


def test_scanner_user_agent_is_dropped_silently() -> None:
    pair = make_pair(guard=Guard())
    probe = raw_request("OPTIONS", headers=(("User-Agent", "friendly-scanner"),))
    assert pair.inject("b", probe, PEER) == []
    assert pair.take("b") == [RequestDropped(PEER, "scanner")]


def test_flooding_source_is_banned_but_trusted_ones_are_not() -> None:
    guard = Guard(GuardConfig(window=2.0, limit=4, ban=300.0))
    pair = make_pair(guard=guard)
    answered = [len(pair.inject("b", _options(n), PEER)) for n in range(8)]
    assert answered == [1, 1, 1, 1, 0, 0, 0, 0]
    assert RequestDropped(PEER, "banned") in pair.take("b")
    loopback = ("127.0.0.9", 5099)
    assert all(len(pair.inject("b", _options(100 + n), loopback)) == 1 for n in range(8))


def test_oversize_datagram_is_answered_513_when_its_via_is_readable() -> None:
    pair = make_pair()
    huge = raw_request("OPTIONS", headers=(("X-Pad", "x" * 70_000),))
    (out,) = pair.inject("b", huge, PEER)
    answer = Response.parse(out.data)
    assert (answer.status, answer.reason) == (513, "Message Too Large")
    assert answer.top_via.received == PEER[0]
    assert len(out.data) < 1_000  # the oversized header is not echoed
    reason = f"message of {len(huge)} octets exceeds 16384"
    assert pair.take("b") == [MessageRejected(PEER, 513, reason)]


def test_oversize_datagram_without_a_readable_via_is_dropped() -> None:
    pair = make_pair()
    head = b"OPTIONS sip:100@127.0.0.2 SIP/2.0\r\nX-Pad: " + b"x" * 20_000 + b"\r\n"
    huge = head + raw_request("OPTIONS").split(b"\r\n", 1)[1]
    assert pair.inject("b", huge, PEER) == []
    (dropped,) = pair.take("b")
    assert isinstance(dropped, RequestDropped)
    assert dropped.reason.startswith("oversize: message of")


def test_keepalive_crlf_is_ignored() -> None:
    pair = make_pair()
    assert pair.inject("b", b"\r\n\r\n", PEER) == []
    assert pair.take("b") == []


def test_force_rport_answers_to_the_source_and_stamps_the_via() -> None:
    pair = make_pair()
    data = raw_request("OPTIONS", via_host="192.0.2.5:5070")
    out = pair.inject("b", data, PEER)
    assert [o.addr for o in out] == [PEER]
    ok = parse_message(out[0].data)
    assert ok.top_via.received == PEER[0]
    assert ok.top_via.rport is None  # not asked for: not filled


def _routed(via: str) -> list[tuple[str, int]]:
    ep = make_endpoint(B_ADDR, "b", force_rport=False)
    data = raw_request("OPTIONS").replace(b"127.0.0.9:5099;branch=z9hG4bKraw1", via.encode())
    ep.receive_datagram(data, PEER, 0.0)
    return [o.addr for o in ep.datagrams_to_send(0.0)]


def test_rfc3261_response_routing_without_force_rport() -> None:
    # §18.2.2: received address, sent-by port (default 5060).
    assert _routed("192.0.2.5;branch=z9hG4bKr1") == [(PEER[0], 5060)]
    assert _routed("192.0.2.5:5070;branch=z9hG4bKr2") == [(PEER[0], 5070)]
    # RFC 3581: rport asks for the source port.
    assert _routed("192.0.2.5:5070;branch=z9hG4bKr3;rport") == [PEER]
    # maddr overrides, and a broadcast destination is never used (RFC 4475 bcast).
    assert _routed("192.0.2.5;maddr=203.0.113.9;branch=z9hG4bKr4") == [("203.0.113.9", 5060)]
    assert _routed("192.0.2.5;maddr=255.255.255.255;branch=z9hG4bKr5") == []


def test_rport_is_filled_with_the_source_port() -> None:
    ep = make_endpoint(B_ADDR, "b")
    data = raw_request("OPTIONS").replace(b"branch=z9hG4bKraw1", b"branch=z9hG4bKraw1;rport")
    ep.receive_datagram(data, PEER, 0.0)
    ok = parse_message(ep.datagrams_to_send(0.0)[0].data)
    assert ok.top_via.rport == PEER[1]
    assert ok.top_via.received == PEER[0]


def test_tcp_uses_no_retransmissions_and_zero_linger_timers() -> None:
    ep = make_endpoint(B_ADDR, "b")
    invite = raw_request("INVITE", branch="z9hG4bKtcp", body=b"v=0\r\n", headers=SDP_HEADERS)
    ep.receive_datagram(invite, PEER, 0.0, "TCP")
    event = ep.next_event()
    assert isinstance(event, IncomingInvite)
    assert event.transport == "TCP"
    ep.send_response(event.invite_id, 486, 0.0)
    sent = ep.datagrams_to_send(0.0)
    assert [(o.addr, o.transport) for o in sent] == [(PEER, "TCP"), (PEER, "TCP")]
    for t in (1.0, 2.0, 8.0, 16.0):
        ep.handle_timer(t)
    assert ep.datagrams_to_send(16.0) == []  # no timer G over TCP
    ack = raw_request("ACK", branch="z9hG4bKtcp", to_tag="any")
    ep.receive_datagram(ack, PEER, 17.0, "TCP")
    assert ep.get_timer() == 17.0  # timer I is zero over TCP
    ep.handle_timer(17.0)
    assert ep.get_timer() is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_break_the_endpoint(data: bytes) -> None:
    ep = make_endpoint(B_ADDR, "b")
    ep.receive_datagram(data, A_ADDR, 0.0)
    ep.receive_datagram(b"SIP/2.0 200 OK\r\n" + data, A_ADDR, 0.0)
    ep.receive_datagram(b"INVITE sip:x@y SIP/2.0\r\n" + data, A_ADDR, 0.0)
    for out in ep.datagrams_to_send(0.0):
        assert isinstance(parse_message(out.data), Response)
    ep.handle_timer(100.0)


def test_unparseable_request_over_tcp_is_answered_on_the_connection() -> None:
    ep = make_endpoint(B_ADDR, "b")
    bad = raw_request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
    ep.receive_datagram(bad, PEER, 0.0, "TCP")
    out = ep.datagrams_to_send(0.0)
    assert [(o.addr, o.transport) for o in out] == [(PEER, "TCP")]
    assert _statuses([o.data for o in out]) == [400]


def test_malformed_2xx_is_dropped_before_it_changes_state() -> None:
    pair = make_pair()
    target = SipUri("sip", "100", B_ADDR[0], B_ADDR[1])
    handle = pair.a.invite(target, b"v=0\r\n", 0.0, from_uri=SipUri("sip", "a", "127.0.0.1", None))
    pair.pump()
    invite = next(e for e in pair.take("b") if isinstance(e, IncomingInvite))
    assert isinstance(invite, IncomingInvite)
    # The first 200 on the wire gets an unparseable Contact; the retransmission is intact.
    pair.mangle[len(pair.wire)] = lambda d: d.replace(b"Contact: <sip:", b"Contact: <bad sip:")
    pair.b.answer(invite.invite_id, b"v=0\r\n", pair.now)
    pair.run(2.0)
    answered = [e for e in pair.take("a") if isinstance(e, CallAnswered)]
    assert [e.handle for e in answered] == [handle]
    assert [s.at for s in pair.sent("a>b", "ACK")] == [0.5]


_MUTATIONS = st.sampled_from(["truncate", "flip", "drop-line", "garbage"])


def _mutate(kind: str, pos: int) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        at = pos % max(len(data), 1)
        if kind == "truncate":
            return data[:at]
        if kind == "flip":
            return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]
        if kind == "drop-line":
            lines = data.split(b"\r\n")
            del lines[at % len(lines)]
            return b"\r\n".join(lines)
        return data[:at] + b'\x00;,<>"@' + data[at:]

    return apply


@settings(max_examples=150, deadline=None)
@given(index=st.integers(min_value=0, max_value=8), kind=_MUTATIONS, pos=st.integers(0, 2000))
def test_a_call_with_one_mangled_message_never_raises(index: int, kind: str, pos: int) -> None:
    pair = make_pair()
    pair.mangle[index] = _mutate(kind, pos)
    target = SipUri("sip", "100", B_ADDR[0], B_ADDR[1])
    pair.a.invite(target, b"v=0\r\n", 0.0, from_uri=SipUri("sip", "a", "127.0.0.1", None))
    pair.pump()
    for event in pair.take("b"):
        if isinstance(event, IncomingInvite):
            pair.b.answer(event.invite_id, b"v=0\r\n", pair.now)
    pair.run(1.0)
    for event in pair.take("a"):
        if isinstance(event, CallAnswered):
            pair.a.hangup(event.dialog_id, pair.now)
    pair.run(200.0)
    # Whatever happened, every transaction and dialog wound down.
    assert pair.a.get_timer() is None
    assert pair.b.get_timer() is None


def test_garbage_from_a_flooding_source_is_not_answered() -> None:
    pair = make_pair(guard=Guard(GuardConfig(window=2.0, limit=3)))
    bad = raw_request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
    answered = [len(pair.inject("b", bad, PEER)) for _ in range(6)]
    assert answered == [1, 1, 1, 0, 0, 0]
    assert RequestDropped(PEER, "banned") in pair.take("b")
