"""``SipEndpoint``: the sans-IO SIP user agent of conf-server (RFC 3261 §8, §9, §12–§18;
RFC 3581; RFC 6026).

Theory of operation: the runtime owns sockets and the clock; the endpoint owns every SIP rule.
The runtime feeds it what arrives and carries out what it asks::

    ep = SipEndpoint(EndpointConfig(host="192.0.2.10", port=5060), SecretIds(), Guard())
    ep.receive_datagram(data, (ip, port), now, "UDP")     # a datagram or one framed TCP message
    for out in ep.datagrams_to_send(now): sock.sendto(out.data, out.addr)   # TCP: its connection
    while (event := ep.next_event()) is not None: ...     # sip.events dataclasses
    deadline = ep.get_timer()                             # absolute, or None
    ep.handle_timer(now)                                  # when the clock reaches it

Calls in (UAS): an INVITE is answered 100 Trying at once and surfaces as ``IncomingInvite``;
the runtime then calls ``send_response`` (180, 404, 488 …) or ``answer`` (200 + SDP, returns the
``DialogId``).  ``CallConfirmed`` follows the ACK; if none comes within 64·T1 the core sends BYE
and reports ``CallEnded(reason="ack_timeout")``.  A CANCEL before the answer yields
``InviteCancelled`` (200 and 487 already sent).  In a dialog: BYE → ``CallEnded("remote_bye")``;
re-INVITE → ``ReInviteReceived`` answered with ``answer_reinvite``; INFO dtmf-relay →
``DtmfInfo``; OPTIONS is answered by the core.

Calls out (UAC): ``invite`` returns a ``CallHandle``; ``ProvisionalReceived``, ``CallAnswered``
or ``CallFailed`` follow.  ``hangup`` takes a ``DialogId`` (BYE) or a ``CallHandle`` (CANCEL);
``reinvite`` and ``request`` act inside a dialog (``ReInviteAnswered``, ``RequestCompleted``).

Protection: ``config.limits`` (sip/limits.py) bounds what is parsed: a message over
``max_message`` octets is answered 513 Message Too Large when its first octets hold a readable
Via, else dropped (``RequestDropped`` "oversize"); new requests pass the ``Guard``
(scanner User-Agents and per-source rate, dropped silently with ``RequestDropped``); full tables
answer 503 + Retry-After statelessly.  Every refusal of ours is reported as ``MessageRejected``.
"""

from __future__ import annotations

import heapq

from sip.endpoint_base import ClientEntry, EndpointConfig, ServerEntry, TimerOwner
from sip.endpoint_uac import UacSide
from sip.endpoint_uas import UasSide
from sip.errors import ParseError
from sip.events import Address, Event, Outgoing
from sip.message import Response, parse_message

__all__ = ["EndpointConfig", "SipEndpoint"]


class SipEndpoint(UasSide, UacSide):
    """The façade of DESIGN.md §3; see the module docstring for the protocol."""

    def receive_datagram(
        self, data: bytes, addr: Address, now: float, transport: str = "UDP"
    ) -> None:
        """Process one datagram (UDP) or one framed message (TCP) from ``addr``."""
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive (RFC 5626 §3.5.1): nothing to answer over UDP
        try:
            message = parse_message(data, self.config.limits)
        except ParseError as err:
            self._unparseable(data, err, addr, now, transport.upper())
            return
        if isinstance(message, Response):
            self._on_response(message, now)
            return
        self._on_request(message, data, addr, now, transport.upper())

    def refuse(
        self, data: bytes, error: ParseError, addr: Address, now: float, transport: str = "TCP"
    ) -> None:
        """Answer a message the transport could not frame (a TCP message over the size limit):
        ``error``'s status from whatever ``data`` (its first octets) lets us read, or a drop."""
        self._unparseable(data, error, addr, now, transport.upper())

    def datagrams_to_send(self, now: float) -> list[Outgoing]:
        """Everything queued for sending since the last call."""
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """Absolute deadline of the earliest timer, or None when nothing is scheduled."""
        self._pop_stale()
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        while self._heap and self._heap[0][0] <= now:
            deadline, _, owner = heapq.heappop(self._heap)
            if not self._current(owner, deadline):
                continue  # stale: the owner moved its deadline or is gone
            owner.armed = None
            self._fire(owner, now)

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def _fire(self, owner: TimerOwner, now: float) -> None:
        if isinstance(owner, ServerEntry):
            self._fire_server(owner, now)
        elif isinstance(owner, ClientEntry):
            self._fire_client(owner, now)
        else:
            self._fire_dialog(owner, now)

    def _fire_server(self, entry: ServerEntry, now: float) -> None:
        # Server transactions only retransmit or expire; nothing goes up to the TU (§17.2).
        for timer in entry.tx.due(now):
            entry.tx.feed(timer, now)
            self._drain(entry.tx, entry.dest, entry.transport)
        self._after_server(entry)
