"""Building the requests a UAC sends (RFC 3261 §8.1.1, §9.1, §12.2.1.1, §13.2.2.4, §17.1.1.3).

Theory of operation: pure functions from what we know (our address, the dialog, the INVITE we
sent, the response we got) to a ``Request``.  The endpoint decides *when* to send; this module
only knows *what* each request must contain:

* a new INVITE (§8.1.1): Request-URI = target, To = target without tag, From with our tag,
  fresh Call-ID, CSeq 1, our Via with a magic-cookie branch and ``rport`` (RFC 3581), Contact;
* an in-dialog request (§12.2.1.1): Request-URI = remote target (or the first route when it is
  a strict router, i.e. lacks ``lr``), the route set as Route, tags, the next local CSeq;
* the ACK for a 2xx (§13.2.2.4): a new transaction (new branch), same CSeq number as the
  INVITE, same Route set, same credentials; body-less here because we never offer late;
* the ACK for a non-2xx (§17.1.1.3): same branch, Request-URI, From, Call-ID and CSeq number
  as the INVITE, To from the response (with its tag), Route from the INVITE;
* a CANCEL (§9.1): same Request-URI, Call-ID, From, To, top Via and Route as the INVITE, CSeq
  number of the INVITE with method CANCEL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sip.dialog import Dialog
from sip.headers import Headers, NameAddr
from sip.message import Request, Response
from sip.uri import AbsoluteUri, SipUri, format_host

MAX_FORWARDS = "70"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"


@dataclass(frozen=True)
class Local:
    """Our own address as it appears in Via and Contact."""

    host: str
    port: int
    user_agent: str
    contact_user: str = "conf"

    def via(self, transport: str, branch: str) -> str:
        """Our Via value; ``rport`` asks the peer to answer to our source port (RFC 3581)."""
        return f"SIP/2.0/{transport} {format_host(self.host)}:{self.port};branch={branch};rport"

    def contact(self, transport: str) -> str:
        """Our Contact: where the peer sends in-dialog requests (§8.1.1.8)."""
        suffix = "" if transport == "UDP" else f";transport={transport.lower()}"
        return f"<sip:{self.contact_user}@{format_host(self.host)}:{self.port}{suffix}>"


def _common(
    local: Local,
    *,
    transport: str,
    branch: str,
    from_: NameAddr,
    to: NameAddr,
    call_id: str,
    cseq: str,
) -> Headers:
    headers = Headers()
    headers.add("Via", local.via(transport, branch))
    headers.add("Max-Forwards", MAX_FORWARDS)
    headers.add("From", str(from_))
    headers.add("To", str(to))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", cseq)
    return headers


def _finish(
    headers: Headers, extra: Iterable[tuple[str, str]], body: bytes, content_type: str
) -> None:
    for name, value in extra:
        headers.add(name, value)
    if body and "Content-Type" not in headers:
        headers.add("Content-Type", content_type)


def build_invite(
    local: Local,
    *,
    target: SipUri,
    from_: NameAddr,
    call_id: str,
    branch: str,
    transport: str,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """A dialog-creating INVITE (§8.1.1, §13.2.1); ``from_`` must carry our tag."""
    h = _common(
        local,
        transport=transport,
        branch=branch,
        from_=from_,
        to=NameAddr(target),
        call_id=call_id,
        cseq="1 INVITE",
    )
    h.add("Contact", local.contact(transport))
    h.add("Allow", ALLOW)
    h.add("User-Agent", local.user_agent)
    _finish(h, headers, body, "application/sdp")
    return Request("INVITE", target, h, body)


def request_uri_and_routes(dialog: Dialog) -> tuple[SipUri | AbsoluteUri, list[str]]:
    """§12.2.1.1: loose routing keeps the remote target; a strict first hop replaces it."""
    if not dialog.route_set:
        return dialog.remote_target, []
    first = NameAddr.parse(dialog.route_set[0])
    if isinstance(first.uri, SipUri) and first.uri.has_param("lr"):
        return dialog.remote_target, list(dialog.route_set)
    return first.uri, [*dialog.route_set[1:], f"<{dialog.remote_target}>"]


def build_in_dialog(
    local: Local,
    dialog: Dialog,
    method: str,
    *,
    cseq: int,
    branch: str,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    content_type: str = "application/sdp",
) -> Request:
    """A request inside ``dialog`` (§12.2.1.1); the caller chose the CSeq."""
    uri, routes = request_uri_and_routes(dialog)
    h = _common(
        local,
        transport=dialog.transport,
        branch=branch,
        from_=dialog.local,
        to=dialog.remote,
        call_id=dialog.id.call_id,
        cseq=f"{cseq} {method}",
    )
    for route in routes:
        h.add("Route", route)
    if method == "INVITE":
        h.add("Contact", local.contact(dialog.transport))
        h.add("Allow", ALLOW)
    if method != "ACK":
        h.add("User-Agent", local.user_agent)
    _finish(h, headers, body, content_type)
    return Request(method, uri, h, body)


def build_ack_for_2xx(local: Local, dialog: Dialog, invite_cseq: int, branch: str) -> Request:
    """§13.2.2.4: the ACK for a 2xx is its own transaction, CSeq number of the INVITE."""
    return build_in_dialog(local, dialog, "ACK", cseq=invite_cseq, branch=branch)


def build_ack_for_reinvite(local: Local, reinvite: Request, branch: str) -> Request:
    """§13.2.2.4 for a re-INVITE: everything the ACK needs is in the request itself (it was
    built from the dialog), so the ACK can be sent even after the dialog ended."""
    h = Headers()
    h.add("Via", local.via(reinvite.top_via.transport, branch))
    _copy(reinvite.headers, h, "Max-Forwards", "From", "To", "Call-ID")
    h.add("CSeq", f"{reinvite.cseq.seq} ACK")
    _copy(reinvite.headers, h, "Route")
    return Request("ACK", reinvite.uri, h)


def _copy(src: Headers, dst: Headers, *names: str) -> None:
    for name in names:
        for value in src.lines(name):
            dst.add(name, value)


def build_ack_for_error(invite: Request, response: Response) -> Request:
    """§17.1.1.3: the transaction's own ACK for a 300–699."""
    h = Headers()
    h.add("Via", str(invite.top_via))
    _copy(invite.headers, h, "Max-Forwards", "From")
    h.add("To", str(response.to))
    h.add("Call-ID", invite.call_id)
    h.add("CSeq", f"{invite.cseq.seq} ACK")
    _copy(invite.headers, h, "Route")
    return Request("ACK", invite.uri, h)


def build_cancel(invite: Request) -> Request:
    """§9.1: CANCEL shares the INVITE's branch so that it reaches the same transaction."""
    h = Headers()
    h.add("Via", str(invite.top_via))
    _copy(invite.headers, h, "Max-Forwards", "From", "To", "Call-ID")
    h.add("CSeq", f"{invite.cseq.seq} CANCEL")
    _copy(invite.headers, h, "Route")
    return Request("CANCEL", invite.uri, h)
