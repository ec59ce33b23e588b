"""The UAC side of the endpoint: requests we send and their answers (RFC 3261 §9.1, §12.1.2,
§12.2.1, §13.2, §14.1, §15, §17.1.3).

Theory of operation: every request we originate gets a client transaction keyed by its branch
and method (§17.1.3) and a *purpose* that decides who hears its answers: an INVITE that places
a call, a re-INVITE, a BYE, a CANCEL, or a plain in-dialog request.  A response that matches no
client transaction is dropped silently (RFC 4475 unreason, noreason, scalarlg, bcast).

A call (``invite``) reports 1xx as ``ProvisionalReceived``; its 2xx creates the dialog (route
set reversed, remote target from Contact, §12.1.2) and is ACKed at once in a new transaction
(§13.2.2.4) — the ACK bytes stay with the client transaction, which in RFC 6026's Accepted
state hands us every 2xx retransmission so that we can re-send them.  A final error becomes
``CallFailed`` (the transaction ACKs it itself), as does timer B (408).

``hangup`` on a call not yet answered sends CANCEL — only after a provisional arrived (§9.1);
until then the wish is remembered.  If the callee answers anyway we ACK and BYE at once.
A 481 or 408 to any in-dialog request means the peer lost the dialog: it ends (§12.2.1.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from sip.dialog import Dialog, DialogInput, DialogState, Role, uac_route_set
from sip.endpoint_base import ClientEntry, EndpointBase, OutCall, Purpose
from sip.errors import DialogError, ParseError
from sip.events import (
    Address,
    CallAnswered,
    CallFailed,
    CallHandle,
    DialogId,
    ProvisionalReceived,
    ReInviteAnswered,
    RequestCompleted,
)
from sip.headers import NameAddr
from sip.ids import branch, call_id, tag
from sip.message import Response
from sip.transaction import InviteClient, Notice, TxInput, TxState, response_input
from sip.uac import (
    build_ack_for_2xx,
    build_ack_for_error,
    build_ack_for_reinvite,
    build_cancel,
    build_invite,
)
from sip.uri import AbsoluteUri, SipUri

ResponseHandler = Callable[["UacSide", ClientEntry, Response, float], None]
TimeoutHandler = Callable[["UacSide", ClientEntry, float], None]
_PEER_GONE = {481: "dialog_gone", 408: "timeout"}
_OWN_METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE"})


def _remote_target(resp: Response, fallback: SipUri | AbsoluteUri) -> SipUri | AbsoluteUri:
    contacts = resp.headers.get_all("Contact")
    if contacts and contacts[0] != "*":
        return NameAddr.parse(contacts[0]).uri
    return fallback


def _check_response(resp: Response) -> None:
    """Parse up front every header a response handler reads, so that a malformed one is
    dropped before it changes any state (ParseError)."""
    _ = resp.call_id, resp.from_, resp.to
    if 200 <= resp.status < 300:
        for name in ("Contact", "Record-Route"):
            for value in resp.headers.get_all(name):
                NameAddr.parse(value)


class UacSide(EndpointBase):
    """Requests we send, CANCEL and BYE, and what their responses mean."""

    _ON_RESPONSE: ClassVar[dict[Purpose, ResponseHandler]]
    _ON_TIMEOUT: ClassVar[dict[Purpose, TimeoutHandler]]

    # -- the runtime's requests --------------------------------------------------------------

    def invite(
        self,
        target: SipUri,
        body: bytes,
        now: float,
        *,
        from_uri: SipUri | NameAddr,
        headers: Iterable[tuple[str, str]] = (),
        transport: str = "UDP",
        addr: Address | None = None,
    ) -> CallHandle:
        """Place a call: INVITE ``target`` with ``body`` (our SDP offer)."""
        local_tag = tag(self.ids)
        from_ = from_uri if isinstance(from_uri, NameAddr) else NameAddr(from_uri)
        req = build_invite(
            self.local,
            target=target,
            from_=from_.with_tag(local_tag),
            call_id=call_id(self.ids, self.config.host),
            branch=branch(self.ids),
            transport=transport,
            body=body,
            headers=headers,
        )
        dest = addr or (target.host, target.port or 5060)
        handle = CallHandle(req.call_id, local_tag)
        entry = self._new_client(req, dest, transport, Purpose.CALL, now, handle=handle)
        self._calls[handle] = OutCall(handle, entry.key, req, dest, transport)
        return handle

    def hangup(self, target: DialogId | CallHandle, now: float) -> None:
        """BYE on a dialog; CANCEL (now or at the first 1xx) on a call still ringing."""
        if isinstance(target, CallHandle):
            call = self._calls.get(target)
            if call is None:
                raise DialogError(f"no pending call {target}")
            call.cancel_wanted = True
            if call.provisional:
                self._send_cancel(call, now)
            return
        self._dialog_input(self._dialog(target), DialogInput.HANGUP, now)

    def reinvite(self, dialog_id: DialogId, body: bytes, now: float) -> None:
        """A re-INVITE with a new offer (hold: sendonly/inactive; resume: sendrecv)."""
        dialog = self._dialog(dialog_id)
        if dialog.outgoing_reinvite or dialog.incoming_reinvite is not None:
            raise DialogError("a re-INVITE is already in progress on this dialog (§14.1)")
        if dialog.state is not DialogState.CONFIRMED:
            raise DialogError(f"re-INVITE needs a confirmed dialog, not {dialog.state.value}")
        self._send_in_dialog(dialog, "INVITE", Purpose.REINVITE, now, body=body)
        dialog.outgoing_reinvite = True

    def request(
        self,
        dialog_id: DialogId,
        method: str,
        now: float,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        """Any other in-dialog request (OPTIONS keep-alive, INFO …); answer → RequestCompleted."""
        if method.upper() in _OWN_METHODS:
            raise DialogError(f"{method} has its own call: invite/reinvite/hangup")
        dialog = self._dialog(dialog_id)
        self._send_in_dialog(
            dialog,
            method.upper(),
            Purpose.REQUEST,
            now,
            body=body,
            headers=headers,
            content_type="application/octet-stream",
        )

    def _send_cancel(self, call: OutCall, now: float) -> None:
        if call.cancelled:
            return
        call.cancelled = True
        self._new_client(build_cancel(call.invite), call.dest, call.transport, Purpose.CANCEL, now)
        entry = self._client.get(call.key)
        if entry is not None:
            entry.tx.feed(TxInput.ARM_TIMEOUT, now)
            self._rearm(entry)

    # -- responses ---------------------------------------------------------------------------

    def _on_response(self, resp: Response, now: float) -> None:
        try:
            key = (resp.top_via.branch or "", resp.cseq.method)
            _check_response(resp)
        except ParseError:
            return  # unreadable: nothing can be matched, and responses are never answered
        entry = self._client.get(key)
        if entry is None:
            return
        inp = response_input(resp.status, server=False)
        ack = b""
        needs_ack = entry.tx.state in (TxState.CALLING, TxState.PROCEEDING)
        if isinstance(entry.tx, InviteClient) and inp is TxInput.RECV_FINAL and needs_ack:
            ack = bytes(build_ack_for_error(entry.request, resp))
        notice = entry.tx.feed(inp, now, ack)
        self._drain(entry.tx, entry.dest, entry.transport)
        if notice is Notice.DELIVER:
            self._ON_RESPONSE[entry.purpose](self, entry, resp, now)
        self._after_client(entry)

    def _call_response(self, entry: ClientEntry, resp: Response, now: float) -> None:
        if entry.ack:
            self._send(entry.ack, entry.dest, entry.transport)  # a 2xx retransmission
            return
        call = self._calls.get(entry.handle) if entry.handle is not None else None
        if call is None:
            return
        if resp.status < 200:
            call.provisional = True
            if call.cancel_wanted:
                self._send_cancel(call, now)
            self._emit(ProvisionalReceived(call.handle, resp.status, resp))
            return
        del self._calls[call.handle]
        if resp.status >= 300:
            self._emit(CallFailed(call.handle, resp.status, resp.reason))
            return
        dialog = self._uac_dialog(entry, call, resp, now)
        if call.cancel_wanted:
            # Answered despite our CANCEL (they crossed): end it at once (§15).
            # The runtime hears CallFailed, not the end of a dialog it never saw.
            self._dialog_input(dialog, DialogInput.HANGUP, now, announce=False)
            self._emit(CallFailed(call.handle, 487, "Request Terminated"))
            return
        self._emit(CallAnswered(call.handle, dialog.id, resp))

    def _uac_dialog(self, entry: ClientEntry, call: OutCall, resp: Response, now: float) -> Dialog:
        invite = call.invite
        dialog = Dialog(
            id=DialogId(invite.call_id, call.handle.local_tag, resp.to.tag or ""),
            role=Role.UAC,
            local=invite.from_,
            remote=resp.to,
            remote_target=_remote_target(resp, invite.uri),
            route_set=uac_route_set(resp.headers.get_all("Record-Route")),
            local_seq=invite.cseq.seq,
            remote_seq=None,
            addr=call.dest,
            transport=call.transport,
            state=DialogState.CONFIRMED,
        )
        self._dialogs[dialog.id] = dialog
        ack = build_ack_for_2xx(self.local, dialog, invite.cseq.seq, branch(self.ids))
        entry.ack = bytes(ack)
        self._send(entry.ack, dialog.addr, dialog.transport)
        return dialog

    def _reinvite_response(self, entry: ClientEntry, resp: Response, now: float) -> None:
        if resp.status < 200:
            entry.tx.feed(TxInput.ARM_TIMEOUT, now)  # a re-INVITE must not ring forever
            return
        if entry.ack:
            self._send(entry.ack, entry.dest, entry.transport)  # a 2xx retransmission
            return
        if resp.status < 300:
            # ACKed even when the dialog ended meanwhile, so the peer stops retransmitting.
            entry.ack = bytes(build_ack_for_reinvite(self.local, entry.request, branch(self.ids)))
            self._send(entry.ack, entry.dest, entry.transport)
        dialog = self._dialogs.get(entry.dialog_id) if entry.dialog_id is not None else None
        if dialog is None:
            return
        dialog.outgoing_reinvite = False
        if resp.status < 300 and "Contact" in resp.headers:
            dialog.remote_target = NameAddr.parse(resp.headers.get_all("Contact")[0]).uri
        self._emit(ReInviteAnswered(dialog.id, resp.status, resp))
        self._peer_gone(dialog, resp.status, now)

    def _request_response(self, entry: ClientEntry, resp: Response, now: float) -> None:
        if resp.status < 200 or entry.dialog_id is None:
            return
        self._emit(RequestCompleted(entry.dialog_id, entry.request.method, resp.status))
        dialog = self._dialogs.get(entry.dialog_id)
        if dialog is not None:
            self._peer_gone(dialog, resp.status, now)

    def _ignore_response(self, entry: ClientEntry, resp: Response, now: float) -> None:
        """BYE and CANCEL answers change nothing: the dialog or call is already over."""

    def _peer_gone(self, dialog: Dialog, status: int, now: float) -> None:
        reason = _PEER_GONE.get(status)
        if reason is not None and not dialog.terminated:
            self._dialog_input(dialog, DialogInput.PEER_GONE, now, reason)

    # -- timeouts ----------------------------------------------------------------------------

    def _fire_client(self, entry: ClientEntry, now: float) -> None:
        for timer in entry.tx.due(now):
            notice = entry.tx.feed(timer, now)
            self._drain(entry.tx, entry.dest, entry.transport)
            if notice in (Notice.TIMEOUT, Notice.ERROR):
                self._ON_TIMEOUT[entry.purpose](self, entry, now)
        self._after_client(entry)

    def _call_timeout(self, entry: ClientEntry, now: float) -> None:
        call = self._calls.pop(entry.handle, None) if entry.handle is not None else None
        if call is not None:
            self._emit(CallFailed(call.handle, 408, "Request Timeout"))

    def _reinvite_timeout(self, entry: ClientEntry, now: float) -> None:
        dialog = self._dialogs.get(entry.dialog_id) if entry.dialog_id is not None else None
        if dialog is not None:
            dialog.outgoing_reinvite = False
            self._emit(ReInviteAnswered(dialog.id, 408, None))
            self._peer_gone(dialog, 408, now)

    def _request_timeout(self, entry: ClientEntry, now: float) -> None:
        if entry.dialog_id is None:
            return
        self._emit(RequestCompleted(entry.dialog_id, entry.request.method, 408))
        dialog = self._dialogs.get(entry.dialog_id)
        if dialog is not None:
            self._peer_gone(dialog, 408, now)

    def _ignore_timeout(self, entry: ClientEntry, now: float) -> None:
        """A BYE or CANCEL nobody answers: the dialog or call is already gone on our side."""


UacSide._ON_RESPONSE = {
    Purpose.CALL: UacSide._call_response,
    Purpose.REINVITE: UacSide._reinvite_response,
    Purpose.REQUEST: UacSide._request_response,
    Purpose.BYE: UacSide._ignore_response,
    Purpose.CANCEL: UacSide._ignore_response,
}
UacSide._ON_TIMEOUT = {
    Purpose.CALL: UacSide._call_timeout,
    Purpose.REINVITE: UacSide._reinvite_timeout,
    Purpose.REQUEST: UacSide._request_timeout,
    Purpose.BYE: UacSide._ignore_timeout,
    Purpose.CANCEL: UacSide._ignore_timeout,
}
