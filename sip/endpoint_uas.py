"""The UAS side of the endpoint: requests we receive (RFC 3261 §8.2, §9.2, §12.2.2, §13.3, §14.2,
§15.1.2, §17.2.3; RFC 6086 INFO).

Theory of operation: a request that parsed and validated is first matched against the server
transactions (§17.2.3): a retransmission is fed to its transaction, which re-sends the last
response; an ACK that matches nothing is the ACK for a 2xx and goes to its dialog.  A new request
then passes the guard (scanner User-Agent, per-source rate), the table limits (503 +
Retry-After, stateless), the §8.2 checks of ``sip.uas`` and gets a server transaction.  Requests
with a To tag belong to a dialog (481 when there is none, 500 when their CSeq goes backwards);
the others are INVITE (a new call: 100 Trying at once, then ``IncomingInvite``), OPTIONS (200
with our capabilities) or BYE/INFO, which need a dialog (481).  CANCEL finds the INVITE with
the same branch: 200 for the CANCEL and 487 for the INVITE when it is still unanswered, 481
when nothing matches.

The runtime answers INVITEs through ``send_response``, ``answer`` (200 + Contact, the dialog is
created and the core retransmits the 2xx until the ACK) and ``answer_reinvite``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from sip.dialog import Dialog, DialogInput, DialogState, Retransmit, Role, uas_route_set
from sip.endpoint_base import (
    EndpointBase,
    Incoming,
    ServerEntry,
    server_key,
    with_method,
)
from sip.errors import DialogError, ParseError
from sip.events import (
    Address,
    DialogId,
    DtmfInfo,
    IncomingInvite,
    InviteCancelled,
    InviteId,
    MessageRejected,
    ReInviteReceived,
    RequestDropped,
)
from sip.headers import NameAddr
from sip.ids import tag
from sip.message import Request, error_response_for, make_response, validate_request
from sip.timers import is_reliable
from sip.transaction import Notice, TxInput, TxState
from sip.uac import ALLOW
from sip.uas import (
    AFTER_DIALOG_CHECKS,
    BEFORE_DIALOG_CHECKS,
    capability_headers,
    is_dtmf_relay,
    parse_dtmf_relay,
    response_destination,
    run_checks,
    stamp_via,
)
from sip.uri import AbsoluteUri, SipUri

Handler = Callable[["UasSide", ServerEntry, Address, float], None]
DialogHandler = Callable[["UasSide", ServerEntry, Dialog, float], None]


def _contact_uri(req: Request) -> SipUri | AbsoluteUri:
    """The remote target (§12.1.1): the Contact, or From for a 2543 peer that sent none."""
    contacts = req.headers.get_all("Contact")
    if contacts and contacts[0] != "*":
        return NameAddr.parse(contacts[0]).uri
    return req.from_.uri


class UasSide(EndpointBase):
    """Incoming requests and the runtime's answers to them."""

    _OUT_OF_DIALOG: ClassVar[dict[str, Handler]]
    _IN_DIALOG: ClassVar[dict[str, DialogHandler]]

    # -- arrival -----------------------------------------------------------------------------

    def _on_request(
        self, req: Request, data: bytes, source: Address, now: float, transport: str
    ) -> None:
        try:
            validate_request(req, self.config.limits)
            key = server_key(req)
        except ParseError as err:
            self._unparseable(data, err, source, now, transport, parsed=req)
            return
        entry = self._server.get(key)
        if entry is not None:
            self._retransmission(entry, req, now)
            return
        if req.method == "ACK":
            self._on_ack(req, now)
            return
        if not self._admit(req, source, now):
            return
        via = stamp_via(req, source)
        dest = response_destination(via, source, transport, force_rport=self.config.force_rport)
        if len(self._server) >= self.config.max_transactions:
            self._stateless_503(req, dest, transport, source)
            return
        entry = self._new_server(key, req, dest, transport, now)
        self._dispatch(entry, source, now)
        self._after_server(entry)

    def _unparseable(
        self,
        data: bytes,
        err: ParseError,
        source: Address,
        now: float,
        transport: str,
        *,
        parsed: Request | None = None,
    ) -> None:
        """A stateless answer built from what could be recovered (§8.2, §21.4.1).

        It goes back to the packet's source: the Via may be exactly what failed to parse.
        Garbage counts against the source's rate like any new request, so that a flood of
        it is not answered (no reflection).
        """
        if self.guard is not None and not self.guard.allow(source[0], now):
            self._emit(RequestDropped(source, "banned"))
            return
        answer = error_response_for(
            data, err, to_tag=tag(self.ids), source=source, parsed=parsed, limits=self.config.limits
        )
        if answer is None:
            reason = "oversize" if err.status == 513 else "unanswerable"
            self._emit(RequestDropped(source, f"{reason}: {err}"))
            return
        self._send(answer, source, transport)
        self._emit(MessageRejected(source, err.status, str(err)))

    def _stateless_503(
        self, req: Request, dest: Address | None, transport: str, source: Address
    ) -> None:
        retry = ("Retry-After", str(self.config.retry_after))
        resp = make_response(req, 503, to_tag=tag(self.ids), headers=[retry])
        self._send(bytes(resp), dest, transport)
        self._emit(MessageRejected(source, 503, "transaction table full"))

    def _admit(self, req: Request, source: Address, now: float) -> bool:
        if self.guard is None:
            return True
        if self.guard.is_scanner(req.headers.get("User-Agent")):
            self._emit(RequestDropped(source, "scanner"))
            return False
        if not self.guard.allow(source[0], now):
            self._emit(RequestDropped(source, "banned"))
            return False
        return True

    def _retransmission(self, entry: ServerEntry, req: Request, now: float) -> None:
        inp = TxInput.ACK if req.method == "ACK" else TxInput.REQUEST
        notice = entry.tx.feed(inp, now)
        self._drain(entry.tx, entry.dest, entry.transport)
        self._after_server(entry)
        if notice is Notice.DELIVER:
            # RFC 6026: an ACK in Accepted (a peer reusing the INVITE branch) goes to the TU.
            self._on_ack(req, now)

    def _on_ack(self, req: Request, now: float) -> None:
        """The ACK for a 2xx: a transaction of its own that only the dialog understands."""
        dialog = self._dialogs.get(DialogId(req.call_id, req.to.tag or "", req.from_.tag or ""))
        pending = None if dialog is None else dialog.retransmit
        if dialog is None or pending is None or pending.cseq != req.cseq.seq:
            return  # a stray or retransmitted ACK: §17.2.3 says ACKs are never answered
        dialog.retransmit = None
        self._dialog_input(dialog, DialogInput.ACK, now)

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, entry: ServerEntry, source: Address, now: float) -> None:
        req = entry.request
        if req.method == "CANCEL":
            self._on_cancel(entry, source, now)
            return
        rejection = run_checks(req, BEFORE_DIALOG_CHECKS)
        if rejection is not None:
            self._reject(entry, rejection.status, now, source, rejection.headers)
            return
        if req.to.tag is not None:
            self._in_dialog(entry, source, now)
            return
        rejection = run_checks(req, AFTER_DIALOG_CHECKS)
        if rejection is not None:
            self._reject(entry, rejection.status, now, source, rejection.headers)
            return
        self._OUT_OF_DIALOG[req.method](self, entry, source, now)

    def _handle_new_invite(self, entry: ServerEntry, source: Address, now: float) -> None:
        if len(self._dialogs) + len(self._incoming) >= self.config.max_dialogs:
            retry = ("Retry-After", str(self.config.retry_after))
            self._reject(entry, 503, now, source, (retry,))
            return
        req = entry.request
        invite_id = self._next_invite_id()
        entry.invite_id = invite_id
        self._incoming[invite_id] = Incoming(
            entry.key,
            req,
            tag(self.ids),
            source,
            entry.transport,
        )
        self._respond(entry, 100, now)
        self._emit(IncomingInvite(invite_id, req, source, entry.transport))

    def _handle_options(self, entry: ServerEntry, source: Address, now: float) -> None:
        self._respond(entry, 200, now, headers=capability_headers())

    def _handle_no_dialog(self, entry: ServerEntry, source: Address, now: float) -> None:
        self._reject(entry, 481, now, source)

    def _on_cancel(self, entry: ServerEntry, source: Address, now: float) -> None:
        invite = self._server.get(with_method(entry.key, "INVITE"))
        if invite is None:
            self._reject(entry, 481, now, source)
            return
        incoming = None if invite.invite_id is None else self._incoming.get(invite.invite_id)
        to_tag = None if incoming is None else incoming.local_tag
        self._respond(entry, 200, now, to_tag=to_tag)
        if incoming is None or invite.invite_id is None:
            return  # already answered: §9.2 says the CANCEL has no effect
        del self._incoming[invite.invite_id]
        if incoming.dialog_id is not None and incoming.dialog_id in self._dialogs:
            self._dialogs[incoming.dialog_id].incoming_reinvite = None
        self._respond(invite, 487, now, to_tag=incoming.local_tag)
        self._emit(InviteCancelled(invite.invite_id))

    # -- inside a dialog ---------------------------------------------------------------------

    def _in_dialog(self, entry: ServerEntry, source: Address, now: float) -> None:
        req = entry.request
        dialog = self._dialogs.get(DialogId(req.call_id, req.to.tag or "", req.from_.tag or ""))
        if dialog is None:
            self._reject(entry, 481, now, source)
            return
        rejection = run_checks(req, AFTER_DIALOG_CHECKS)
        if rejection is not None:
            self._reject(entry, rejection.status, now, source, rejection.headers)
            return
        if not dialog.accept_remote_cseq(req.cseq.seq, req.method):
            self._reject(entry, 500, now, source)
            return
        self._IN_DIALOG[req.method](self, entry, dialog, now)

    def _dialog_invite(self, entry: ServerEntry, dialog: Dialog, now: float) -> None:
        if dialog.outgoing_reinvite:
            self._respond(entry, 491, now)  # §14.2 glare: both sides retry after a random wait
            return
        if dialog.incoming_reinvite is not None or dialog.retransmit is not None:
            # §14.2: an INVITE arriving while an earlier one is unfinished gets 500 + Retry-After.
            self._respond(entry, 500, now, headers=(("Retry-After", "1"),))
            return
        req = entry.request
        invite_id = self._next_invite_id()
        entry.invite_id = invite_id
        dialog.incoming_reinvite = invite_id
        self._incoming[invite_id] = Incoming(
            entry.key,
            req,
            dialog.id.local_tag,
            dialog.addr,
            entry.transport,
            dialog.id,
        )
        if "Contact" in req.headers:
            dialog.remote_target = _contact_uri(req)  # §12.2.2 target refresh
        self._respond(entry, 100, now)
        self._emit(ReInviteReceived(invite_id, dialog.id, req))

    def _dialog_bye(self, entry: ServerEntry, dialog: Dialog, now: float) -> None:
        self._respond(entry, 200, now)
        self._dialog_input(dialog, DialogInput.BYE_RECEIVED, now)

    def _dialog_options(self, entry: ServerEntry, dialog: Dialog, now: float) -> None:
        self._respond(entry, 200, now, headers=capability_headers())

    def _dialog_info(self, entry: ServerEntry, dialog: Dialog, now: float) -> None:
        req = entry.request
        # Every INFO is acknowledged: other packages and signals we do not understand (flash,
        # a garbled body) are ignored rather than refused, as phones do not expect errors here.
        self._respond(entry, 200, now)
        if not is_dtmf_relay(req):
            return
        try:
            digit, duration = parse_dtmf_relay(req.body)
        except ParseError:
            return
        self._emit(DtmfInfo(dialog.id, digit, duration))

    # -- the runtime's answers ---------------------------------------------------------------

    def _pending(self, invite_id: InviteId) -> tuple[Incoming, ServerEntry]:
        incoming = self._incoming.get(invite_id)
        entry = None if incoming is None else self._server.get(incoming.key)
        if incoming is None or entry is None or entry.tx.state is not TxState.PROCEEDING:
            raise DialogError(f"INVITE {invite_id.value} is no longer waiting for an answer")
        return incoming, entry

    def send_response(
        self,
        invite_id: InviteId,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        """A provisional or error answer to an INVITE (2xx goes through ``answer``)."""
        if 200 <= status < 300:
            raise DialogError("a 2xx creates a dialog: use answer() or answer_reinvite()")
        incoming, entry = self._pending(invite_id)
        self._respond(
            entry, status, now, reason=reason, to_tag=incoming.local_tag, headers=headers, body=body
        )
        if status >= 300:
            self._finish_incoming(invite_id, incoming)

    def _finish_incoming(self, invite_id: InviteId, incoming: Incoming) -> None:
        self._incoming.pop(invite_id, None)
        dialog = None if incoming.dialog_id is None else self._dialogs.get(incoming.dialog_id)
        if dialog is not None:
            dialog.incoming_reinvite = None

    def _send_2xx(
        self,
        entry: ServerEntry,
        incoming: Incoming,
        body: bytes,
        now: float,
        headers: Iterable[tuple[str, str]],
    ) -> Retransmit:
        req = incoming.request
        extra = [("Contact", self.local.contact(incoming.transport)), ("Allow", ALLOW)]
        extra += [("Record-Route", rr) for rr in req.headers.lines("Record-Route")]
        extra += list(headers)
        if body and not any(name.lower() == "content-type" for name, _ in extra):
            extra.append(("Content-Type", "application/sdp"))
        self._respond(entry, 200, now, to_tag=incoming.local_tag, headers=extra, body=body)
        reliable = is_reliable(incoming.transport)
        return Retransmit.start(
            entry.tx.last,
            dest=entry.dest,
            cseq=req.cseq.seq,
            now=now,
            timers=self.timers,
            reliable=reliable,
        )

    def answer(
        self,
        invite_id: InviteId,
        body: bytes,
        now: float,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> DialogId:
        """200 OK with Contact and our To tag; the dialog exists from now on (§12.1.1)."""
        incoming, entry = self._pending(invite_id)
        if incoming.dialog_id is not None:
            raise DialogError("this is a re-INVITE: use answer_reinvite()")
        req = incoming.request
        dialog = Dialog(
            id=DialogId(req.call_id, incoming.local_tag, req.from_.tag or ""),
            role=Role.UAS,
            local=req.to.with_tag(incoming.local_tag),
            remote=req.from_,
            remote_target=_contact_uri(req),
            route_set=uas_route_set(req.headers.get_all("Record-Route")),
            local_seq=0,
            remote_seq=req.cseq.seq,
            addr=incoming.source,
            transport=incoming.transport,
            state=DialogState.ACCEPTED,
        )
        dialog.retransmit = self._send_2xx(entry, incoming, body, now, headers)
        self._incoming.pop(invite_id, None)
        self._dialogs[dialog.id] = dialog
        self._rearm(dialog)
        return dialog.id

    def answer_reinvite(self, reinvite_id: InviteId, status: int, body: bytes, now: float) -> None:
        """Accept (2xx, with our new SDP) or refuse (488, 491 …) a re-INVITE."""
        incoming, entry = self._pending(reinvite_id)
        if incoming.dialog_id is None:
            raise DialogError("not a re-INVITE: use answer() or send_response()")
        dialog = self._dialog(incoming.dialog_id)
        self._finish_incoming(reinvite_id, incoming)
        if 200 <= status < 300:
            dialog.retransmit = self._send_2xx(entry, incoming, body, now, ())
            self._rearm(dialog)
            return
        self._respond(entry, status, now, to_tag=incoming.local_tag, body=body)

    # -- dialog timers -----------------------------------------------------------------------

    def _fire_dialog(self, dialog: Dialog, now: float) -> None:
        pending = dialog.retransmit
        if pending is None:
            return
        if now >= pending.give_up_at:
            # §13.3.1.4: no ACK within 64·T1 — the session is dead, close it with BYE.
            dialog.retransmit = None
            self._dialog_input(dialog, DialogInput.ACK_TIMEOUT, now)
            return
        if now >= pending.next_at:
            self._send(pending.data, pending.dest, dialog.transport)
            pending.advance(now, self.timers)
        self._rearm(dialog)


UasSide._OUT_OF_DIALOG = {
    "INVITE": UasSide._handle_new_invite,
    "OPTIONS": UasSide._handle_options,
    "BYE": UasSide._handle_no_dialog,
    "INFO": UasSide._handle_no_dialog,
}
UasSide._IN_DIALOG = {
    "INVITE": UasSide._dialog_invite,
    "BYE": UasSide._dialog_bye,
    "OPTIONS": UasSide._dialog_options,
    "INFO": UasSide._dialog_info,
}
