"""What the SIP core tells the runtime (RFC 3261 §12 dialogs, §13 INVITE, §15 BYE, §9 CANCEL).

Theory of operation: ``SipEndpoint`` is sans-IO (DESIGN.md §3).  Bytes leave it as
``Outgoing`` datagrams and everything the runtime must decide about leaves it as one of the
frozen dataclasses below, taken one at a time with ``next_event()``.  Identifiers are values
the runtime keeps to act later:

* ``InviteId`` names an INVITE we received (the first one of a call, or a re-INVITE) until we
  answer it; ``send_response``/``answer``/``answer_reinvite`` take it.
* ``DialogId`` is the RFC 3261 §12 dialog identifier (Call-ID, local tag, remote tag).
* ``CallHandle`` names a call we placed with ``invite()`` before it has a dialog.

Every event carries the identifier the runtime needs to find its call object; ``request`` and
``response`` fields carry the parsed message (bodies are opaque bytes here: SDP is the
runtime's business).
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.message import Request, Response

Address = tuple[str, int]


@dataclass(frozen=True)
class Outgoing:
    """A message to send: over UDP to ``addr``; over TCP on the connection ``addr`` names."""

    data: bytes
    addr: Address
    transport: str  # "UDP" | "TCP"


@dataclass(frozen=True)
class InviteId:
    """An INVITE we received and must answer (a new call or a re-INVITE)."""

    value: str


@dataclass(frozen=True)
class DialogId:
    """RFC 3261 §12: Call-ID + local tag + remote tag."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True)
class CallHandle:
    """A call we placed (``SipEndpoint.invite``): Call-ID and our From tag."""

    call_id: str
    local_tag: str


@dataclass(frozen=True)
class IncomingInvite:
    """A new INVITE outside any dialog; 100 Trying was already sent.  Answer or reject it."""

    invite_id: InviteId
    request: Request
    addr: Address
    transport: str


@dataclass(frozen=True)
class InviteCancelled:
    """The caller CANCELled before we answered; 487 and the 200 for CANCEL were sent."""

    invite_id: InviteId


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: the dialog is confirmed (RFC 3261 §13.3.1.4)."""

    dialog_id: DialogId


@dataclass(frozen=True)
class CallEnded:
    """The dialog is over.

    ``reason``: ``remote_bye``, ``local_bye``, ``ack_timeout`` (no ACK for our 2xx within
    64·T1, we sent BYE), ``timeout`` (an in-dialog request got no answer, §12.2.1.2),
    ``dialog_gone`` (the peer answered 481).  A call we cancelled that is answered anyway is
    ACKed and released with BYE at once and reported as ``CallFailed(status=487)``: the
    runtime never sees that dialog.
    """

    dialog_id: DialogId
    reason: str


@dataclass(frozen=True)
class ReInviteReceived:
    """An INVITE inside a dialog (hold, resume, codec change); answer with ``answer_reinvite``."""

    reinvite_id: InviteId
    dialog_id: DialogId
    request: Request


@dataclass(frozen=True)
class ReInviteAnswered:
    """The final answer to a re-INVITE we sent (2xx was ACKed already; 491 means glare)."""

    dialog_id: DialogId
    status: int
    response: Response | None


@dataclass(frozen=True)
class DtmfInfo:
    """A digit from INFO with ``application/dtmf-relay`` (``Signal=5``, ``Duration=160``)."""

    dialog_id: DialogId
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class ProvisionalReceived:
    """1xx to an INVITE we sent (180 Ringing, 183 Session Progress with early media …)."""

    handle: CallHandle
    status: int
    response: Response


@dataclass(frozen=True)
class CallAnswered:
    """2xx to an INVITE we sent; the ACK was sent and the dialog exists."""

    handle: CallHandle
    dialog_id: DialogId
    response: Response


@dataclass(frozen=True)
class CallFailed:
    """A final non-2xx to an INVITE we sent, or no answer at all (408, timer B)."""

    handle: CallHandle
    status: int
    reason: str


@dataclass(frozen=True)
class RequestCompleted:
    """The final answer to an in-dialog request sent with ``request()`` (OPTIONS, INFO …)."""

    dialog_id: DialogId
    method: str
    status: int


@dataclass(frozen=True)
class RequestDropped:
    """A request dropped without an answer: ``scanner``, ``banned``, ``oversize`` …"""

    addr: Address
    reason: str


@dataclass(frozen=True)
class MessageRejected:
    """A request we refused with an error status (for the runtime's log line)."""

    addr: Address
    status: int
    reason: str


Event = (
    IncomingInvite
    | InviteCancelled
    | CallConfirmed
    | CallEnded
    | ReInviteReceived
    | ReInviteAnswered
    | DtmfInfo
    | ProvisionalReceived
    | CallAnswered
    | CallFailed
    | RequestCompleted
    | RequestDropped
    | MessageRejected
)
