"""Fuzz target ``sip_udp``: SIP datagrams into ``SipEndpoint`` and the message parser.

What it drives
--------------
One input is up to ``MAX_DATAGRAMS`` UDP datagrams separated by ``SEPARATOR`` (an input without
it is one datagram, so every torture message is a seed as it is).  Each datagram goes

1. through ``sip.message.parse_message``, ``validate_request`` and, when those raise
   ``ParseError`` (their documented error), ``error_response_for`` — which documents no error at
   all: it answers ``bytes`` or ``None``;
2. into a fresh ``SipEndpoint(EndpointConfig(), ids)`` with ``receive_datagram(data, PEER, now)``,
   which documents no error either (it answers or drops what it cannot parse), then everything
   queued is drained with ``datagrams_to_send`` and ``next_event``.

:class:`FakeRuntime` plays the runtime's part as ``conf_server/runtime/calls.py`` does: an
``IncomingInvite`` is answered 200 with an SDP answer from ``sip.offer_answer`` (400 for bad
SDP, 488 when nothing is common), a ``ReInviteReceived`` the same way, so ACK, BYE, INFO and
re-INVITE reach a real dialog.  An INVITE to ``sip:ring@…`` is answered 180 at once and finally
only after the next datagram, as with ``[sip] ring_time`` or a slow number lookup, so a CANCEL or
a stray ACK can meet an INVITE still waiting for its answer.  Before the datagrams the endpoint
also places one call of its own to ``PEER`` so that responses (1xx, 2xx, errors) find a client
transaction.  After the last datagram the clock jumps from timer to timer (retransmissions,
Timer B/H/J, the ACK timeout's BYE) for up to ``MAX_TIMER_STEPS`` firings.

The endpoint gets ``SequentialIds`` instead of the runtime's ``SecretIds``: tags, branches and
Call-IDs must be the same on every run, or a crash would not replay, and the fuzzer could never
match our branch in a response.  The ids are the same length, so nothing else changes.

Seeds: the RFC 4475/5118 torture messages, the ``tests/sip`` vectors and scripted dialogs built
by :func:`seeds` (INVITE → ACK → INFO → re-INVITE → BYE; CANCEL; responses to our INVITE).
"""

from __future__ import annotations

from collections.abc import Iterator

from sip.endpoint import EndpointConfig, SipEndpoint
from sip.errors import NegotiationError, ParseError
from sip.events import IncomingInvite, InviteCancelled, InviteId, ReInviteReceived
from sip.ids import SequentialIds
from sip.message import Request, error_response_for, parse_message, validate_request
from sip.offer_answer import answer_offer
from sip.sdp import SessionDescription
from sip.uri import SipUri
from tests.fuzz.common import NOW, PEER, own_seeds, sip_messages

SEPARATOR = b"\x00\xff--next datagram--\xff\x00"
MAX_DATAGRAMS = 8
MAX_TIMER_STEPS = 32
STEP = 0.05  # seconds between two datagrams of one input
LOCAL_RTP = ("192.0.2.1", 40_000)  # where our SDP answers point
RING_USER = "ring"  # INVITEs to sip:ring@… ring until the next datagram (CANCEL can reach them)


class FakeRuntime:
    """The runtime's side of the endpoint, without sockets: answer what asks to be answered."""

    def __init__(self, transport: str = "UDP") -> None:
        self.endpoint = SipEndpoint(EndpointConfig(), SequentialIds("fz"))
        self.transport = transport
        self.now = NOW
        self.sent: list[bytes] = []
        self.ringing: dict[InviteId, IncomingInvite] = {}  # answered at the next datagram
        target = SipUri.parse(f"sip:peer@{PEER[0]}:{PEER[1]}")
        self.endpoint.invite(target, b"", self.now, from_uri=SipUri.parse("sip:conf@127.0.0.1"))
        self.pump()

    def receive(self, data: bytes) -> None:
        """One datagram (UDP) or one framed message (TCP) from the peer."""
        self.now += STEP
        ringing = list(self.ringing)
        self.endpoint.receive_datagram(data, PEER, self.now, self.transport)
        self.pump()
        for invite_id in ringing:  # rang for one datagram; unless it was CANCELled, answer now
            event = self.ringing.pop(invite_id, None)
            if event is not None:
                self._answer(event)
        self.pump()
        self.fire_due()

    def fire_due(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline is not None and deadline <= self.now:
            self.endpoint.handle_timer(self.now)
            self.pump()

    def run_timers(self) -> None:
        """Jump the clock from deadline to deadline: retransmissions, timeouts, BYE on no ACK."""
        for _ in range(MAX_TIMER_STEPS):
            deadline = self.endpoint.get_timer()
            if deadline is None:
                return
            self.now = max(self.now, deadline)
            self.endpoint.handle_timer(self.now)
            self.pump()

    def pump(self) -> None:
        self.sent += [out.data for out in self.endpoint.datagrams_to_send(self.now)]
        while (event := self.endpoint.next_event()) is not None:
            if isinstance(event, IncomingInvite):
                self._invite(event)
            elif isinstance(event, InviteCancelled):
                self.ringing.pop(event.invite_id, None)
            elif isinstance(event, ReInviteReceived):
                self._reinvite(event)
        self.sent += [out.data for out in self.endpoint.datagrams_to_send(self.now)]

    def _invite(self, event: IncomingInvite) -> None:
        uri = event.request.uri
        if isinstance(uri, SipUri) and uri.user == RING_USER:  # [sip] ring_time: answer later
            self.endpoint.send_response(event.invite_id, 180, self.now)
            self.ringing[event.invite_id] = event
            return
        self._answer(event)

    def _answer(self, event: IncomingInvite) -> None:
        status, answer = _negotiate(event.request)
        if answer is None:
            self.endpoint.send_response(event.invite_id, status, self.now)
        else:
            self.endpoint.answer(event.invite_id, answer, self.now)

    def _reinvite(self, event: ReInviteReceived) -> None:
        status, answer = _negotiate(event.request)
        self.endpoint.answer_reinvite(event.reinvite_id, status, answer or b"", self.now)


def _negotiate(req: Request) -> tuple[int, bytes | None]:
    """What ``calls.py`` answers an offer with: (200, our SDP), (400 | 488, None)."""
    if not req.body:
        return 488, None
    try:
        offer = SessionDescription.parse(req.body)
        answer, _ = answer_offer(offer, *LOCAL_RTP, session_id=1, session_version=1)
    except ParseError:
        return 400, None
    except NegotiationError:
        return 488, None
    return 200, bytes(answer)


def check_parser(data: bytes) -> None:
    """parse → validate; on the documented ParseError the stateless answer must be built."""
    try:
        message = parse_message(data)
        if isinstance(message, Request):
            validate_request(message)
    except ParseError as err:
        error_response_for(data, err, to_tag="fuzz")


def one_input(data: bytes) -> None:
    runtime = FakeRuntime()
    for datagram in data.split(SEPARATOR, MAX_DATAGRAMS - 1):
        check_parser(datagram)
        runtime.receive(datagram)
    runtime.run_timers()


# --------------------------------------------------------------------------- seeds


def seeds() -> Iterator[bytes]:
    yield from sip_messages()
    yield from own_seeds("sip_udp")
    yield from scripted_dialogs()
    yield big_invite()


def big_invite() -> bytes:
    """An INVITE of almost 64 KiB (many Via, Record-Route and unknown headers): the fuzzer
    only grows inputs slowly, and the budget matters most for the largest datagrams."""
    extra = "".join(
        f"Via: SIP/2.0/UDP [2001:db8::{i:x}]:5060;branch=z9hG4bKbig{i}\r\n"
        f"Record-Route: <sip:proxy{i}.example.com;lr>\r\n"
        f"X-Filler-{i}: {'x' * 40}\r\n"
        for i in range(370)
    )
    return _request("INVITE", 1, body=_OFFER, extra=_SDP + extra)


def _local_tag(invite: bytes) -> str:
    """The To tag our endpoint gives the dialog of ``invite`` (ids are sequential)."""
    runtime = FakeRuntime()
    runtime.receive(invite)
    runtime.receive(b"\r\n")  # a keep-alive: lets a ringing INVITE be answered
    for data in runtime.sent:
        message = parse_message(data)
        if not isinstance(message, Request) and message.status == 200:
            return message.to.tag or ""
    raise RuntimeError("the seed INVITE was not answered 200")


def _request(
    method: str, cseq: int, *, to_tag: str = "", body: bytes = b"", extra: str = "",
    user: str = "+15551230000",
) -> bytes:  # fmt: skip
    to = f"<sip:{user}@conf.example.com>" + (f";tag={to_tag}" if to_tag else "")
    same_branch = method in ("ACK", "CANCEL") and not to_tag  # §9.1, §17.1.1.3
    branch = "z9hG4bK776asdhds" if same_branch or cseq == 1 else f"z9hG4bKs{cseq}{method}"
    head = (
        f"{method} sip:{user}@conf.example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        'From: "Alice Example" <sip:alice@example.com>;tag=1928301774\r\n'
        "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@192.0.2.10:5060>\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_OFFER = (
    b"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\n"
)
_SDP = "Content-Type: application/sdp\r\n"
_HOLD = _OFFER.replace(b"a=ptime:20\r\n", b"a=ptime:20\r\na=sendonly\r\n")


def _our_call_responses() -> list[bytes]:
    """Responses to the INVITE our endpoint sends first: 100, 180, 200 with a To tag."""
    runtime = FakeRuntime()
    invite = parse_message(runtime.sent[0])
    assert isinstance(invite, Request)
    lines = [f"Via: {v}" for v in invite.headers.lines("Via")]
    common = "\r\n".join(
        [*lines, f"From: {invite.headers.get('From')}", f"Call-ID: {invite.call_id}",
         f"CSeq: {invite.cseq.seq} INVITE"]
    )  # fmt: skip
    to = invite.headers.get("To") or ""
    out = []
    answers = ((100, "Trying", ""), (180, "Ringing", ";tag=p1"), (200, "OK", ";tag=p1"))
    for status, reason, tag in answers:
        body = _OFFER if status == 200 else b""
        extra = f"Contact: <sip:peer@127.0.0.1:5062>\r\n{_SDP}" if body else ""
        out.append(
            f"SIP/2.0 {status} {reason}\r\n{common}\r\nTo: {to}{tag}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


def scripted_dialogs() -> Iterator[bytes]:
    """Multi-datagram seeds that reach dialogs: the To tag is learnt from a dry run."""
    invite = _request("INVITE", 1, body=_OFFER, extra=_SDP)
    tag = _local_tag(invite)
    ring = _request("INVITE", 1, body=_OFFER, extra=_SDP, user=RING_USER)
    ring_tag = _local_tag(ring)
    info = _request(
        "INFO", 2, to_tag=tag, body=b"Signal=5\r\nDuration=160\r\n",
        extra="Content-Type: application/dtmf-relay\r\n",
    )  # fmt: skip
    reinvite = _request("INVITE", 3, to_tag=tag, body=_HOLD, extra=_SDP)
    scripts = [
        [invite, _request("ACK", 1, to_tag=tag), info, reinvite, _request("ACK", 3, to_tag=tag),
         _request("BYE", 4, to_tag=tag)],
        [invite, _request("CANCEL", 1)],
        [ring, _request("CANCEL", 1, user=RING_USER), _request("ACK", 1, user=RING_USER)],
        [ring, _request("OPTIONS", 2, user=RING_USER),
         _request("ACK", 1, to_tag=ring_tag, user=RING_USER)],
        [invite, _request("BYE", 2, to_tag=tag)],
        [invite, invite, _request("ACK", 1, to_tag=tag), _request("OPTIONS", 2, to_tag=tag)],
        _our_call_responses(),
    ]  # fmt: skip
    for script in scripts:
        yield SEPARATOR.join(script)
