"""Shared state of the ``SipEndpoint`` (RFC 3261 §8, §12, §17.1.3, §17.2.3, §18).

Theory of operation: the endpoint is split in three layers that share this base — the UAS side
(``endpoint_uas``: requests we receive), the UAC side (``endpoint_uac``: requests we send and
their responses) and the façade (``endpoint``).  The base owns everything they share:

* the tables: server transactions by §17.2.3 key, client transactions by (branch, method)
  (§17.1.3), dialogs by ``DialogId``, INVITEs awaiting the runtime's answer, calls we placed;
* the outbox of ``Outgoing`` datagrams and the queue of events;
* one heap of timer deadlines for all transactions and dialogs.  An owner is pushed whenever its
  earliest deadline changes; entries that no longer match the owner's deadline are stale and
  skipped (lazy deletion), so arming is O(log n) and nothing is ever scanned;
* helpers that every path uses: answer a request through its transaction, send a request in a
  dialog, apply a dialog transition and emit what it asks for.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from sip.dialog import Dialog, DialogAction, DialogInput
from sip.errors import DialogError, TransactionError
from sip.events import (
    Address,
    CallConfirmed,
    CallEnded,
    CallHandle,
    DialogId,
    Event,
    InviteId,
    MessageRejected,
    Outgoing,
)
from sip.ids import MAGIC_COOKIE, IdFactory, branch, tag
from sip.limits import DEFAULT as DEFAULT_LIMITS
from sip.limits import Limits
from sip.message import Request, make_response
from sip.protection import Guard
from sip.timers import TimerConfig, is_reliable
from sip.transaction import (
    InviteClient,
    InviteServer,
    NonInviteClient,
    NonInviteServer,
    Transaction,
    TxState,
    response_input,
)
from sip.uac import Local, build_in_dialog
from sip.uas import sendable


@dataclass(frozen=True)
class EndpointConfig:
    """Everything the core needs to know about its surroundings."""

    host: str = "127.0.0.1"  # our address in Via and Contact
    port: int = 5060
    user_agent: str = "conf-server"
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    max_transactions: int = 20_000  # server transactions: state a peer can make us hold
    max_dialogs: int = 5_000  # dialogs + INVITEs awaiting an answer
    force_rport: bool = True  # UDP answers go to the packet's source (RFC 3581 in practice)
    limits: Limits = DEFAULT_LIMITS  # message, header and Via bounds (sip/limits.py)
    retry_after: int = 5  # seconds, in 503 answers when the tables are full

    @property
    def timers(self) -> TimerConfig:
        return TimerConfig(self.t1, self.t2, self.t4)


ServerKey = tuple[str, ...]
ClientKey = tuple[str, str]


def server_key(req: Request) -> ServerKey:
    """§17.2.3 matching key; the RFC 2543 fallback when the branch lacks the magic cookie.

    ACK maps onto the INVITE it acknowledges.  A branch that *is* the bare cookie (RFC 4475
    badbranch) carries no identifier and takes the 2543 path too.
    """
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    branch_id = via.branch or ""
    if branch_id.startswith(MAGIC_COOKIE) and len(branch_id) > len(MAGIC_COOKIE):
        return ("3261", branch_id, via.host.lower(), str(via.port or 5060), method)
    from_tag = req.from_.tag or ""
    return ("2543", str(req.uri), from_tag, req.call_id, str(req.cseq.seq), str(via), method)


def with_method(key: ServerKey, method: str) -> ServerKey:
    """The same key for another method: a CANCEL finds its INVITE this way (§9.2)."""
    return (*key[:-1], method)


class Purpose(Enum):
    """Why we sent a client request: decides who hears about its responses."""

    CALL = "call"  # INVITE creating a call (``invite``)
    REINVITE = "reinvite"
    BYE = "bye"
    CANCEL = "cancel"
    REQUEST = "request"  # ``request()``: OPTIONS, INFO …


# States after the final response: the transaction only absorbs retransmissions (§17.2.1 and
# §17.2.2 resend ``tx.last``; RFC 6026 Accepted) and needs no parsed request any more.
_ANSWERED: Final = frozenset({TxState.COMPLETED, TxState.CONFIRMED, TxState.ACCEPTED})


@dataclass
class ServerEntry:
    key: ServerKey
    tx: Transaction
    parsed: Request | None  # the request, until the final response went out
    dest: Address | None  # where responses go; None = nowhere (broadcast …)
    transport: str
    invite_id: InviteId | None = None
    armed: float | None = None  # the deadline last pushed on the timer heap

    @property
    def request(self) -> Request:
        """The transaction's request; only asked for before its final response."""
        if self.parsed is None:
            raise TransactionError(f"{self.key}: answered, its request was released")
        return self.parsed

    def release_answered(self) -> None:
        """Drop the parsed request once answered: a finished transaction stays 32 s (Timer
        J/H) and its ~15 objects each made the cycle collector's full pass 4 times longer."""
        if self.tx.state in _ANSWERED:
            self.parsed = None

    def next_deadline(self) -> float | None:
        return self.tx.next_deadline()


@dataclass
class ClientEntry:
    key: ClientKey
    tx: Transaction
    request: Request
    dest: Address
    transport: str
    purpose: Purpose
    handle: CallHandle | None = None
    dialog_id: DialogId | None = None
    ack: bytes = b""  # the ACK we sent for a 2xx: re-sent when the 2xx is retransmitted
    armed: float | None = None

    def next_deadline(self) -> float | None:
        return self.tx.next_deadline()


@dataclass
class Incoming:
    """An INVITE (new call or re-INVITE) waiting for the runtime's answer."""

    key: ServerKey
    request: Request
    local_tag: str
    source: Address
    transport: str
    dialog_id: DialogId | None = None


@dataclass
class OutCall:
    """An INVITE we sent that has no final answer yet."""

    handle: CallHandle
    key: ClientKey
    invite: Request
    dest: Address
    transport: str
    provisional: bool = False  # a 1xx arrived: CANCEL may be sent (§9.1)
    cancel_wanted: bool = False
    cancelled: bool = False
    dialog_id: DialogId | None = None


_ANNOUNCE: dict[DialogAction, Callable[[DialogId, str], Event]] = {
    DialogAction.CONFIRM: lambda dialog_id, _reason: CallConfirmed(dialog_id),
    DialogAction.ENDED: CallEnded,
}

_END_REASONS = {
    DialogInput.ACK: "local_bye",  # the ACK released a BYE held back by §15
    DialogInput.ACK_TIMEOUT: "ack_timeout",
    DialogInput.BYE_RECEIVED: "remote_bye",
    DialogInput.HANGUP: "local_bye",
}


TimerOwner = ServerEntry | ClientEntry | Dialog


class EndpointBase:
    """State and helpers shared by the UAS side, the UAC side and the façade."""

    def __init__(self, config: EndpointConfig, ids: IdFactory, guard: Guard | None = None) -> None:
        self.config = config
        self.timers = config.timers
        self.ids = ids
        self.guard = guard
        self.local = Local(config.host, config.port, config.user_agent)
        self._server: dict[ServerKey, ServerEntry] = {}
        self._client: dict[ClientKey, ClientEntry] = {}
        self._dialogs: dict[DialogId, Dialog] = {}
        self._incoming: dict[InviteId, Incoming] = {}
        self._calls: dict[CallHandle, OutCall] = {}
        self._events: deque[Event] = deque()
        self._outbox: list[Outgoing] = []
        self._heap: list[tuple[float, int, TimerOwner]] = []
        self._seq = itertools.count()
        self._invite_seq = itertools.count(1)

    # -- output ------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _send(self, data: bytes, dest: Address | None, transport: str) -> None:
        # The last line of defence: whatever a peer wrote, we never send to a broadcast address.
        if dest is not None and sendable(dest[0]):
            self._outbox.append(Outgoing(data, dest, transport))

    def _drain(self, tx: Transaction, dest: Address | None, transport: str) -> None:
        for data in tx.take_outbox():
            self._send(data, dest, transport)

    # -- timers ------------------------------------------------------------------------------

    def _live(self, owner: TimerOwner) -> bool:
        """Whether the owner is still in its table (a removed one keeps no timers)."""
        if isinstance(owner, Dialog):
            return self._dialogs.get(owner.id) is owner
        if isinstance(owner, ServerEntry):
            return self._server.get(owner.key) is owner
        return self._client.get(owner.key) is owner

    def _current(self, owner: TimerOwner, deadline: float) -> bool:
        """Whether a heap entry still stands for the owner's earliest deadline."""
        return self._live(owner) and owner.next_deadline() == deadline

    def _rearm(self, owner: TimerOwner) -> None:
        """Push the owner's earliest deadline when it changed (lazy-deletion heap)."""
        deadline = owner.next_deadline() if self._live(owner) else None
        if deadline is not None and owner.armed != deadline:
            heapq.heappush(self._heap, (deadline, next(self._seq), owner))
        owner.armed = deadline

    def _pop_stale(self) -> None:
        while self._heap and not self._current(self._heap[0][2], self._heap[0][0]):
            heapq.heappop(self._heap)

    # -- transactions ------------------------------------------------------------------------

    def _new_server(
        self,
        key: ServerKey,
        req: Request,
        dest: Address | None,
        transport: str,
        now: float,
    ) -> ServerEntry:
        kind = InviteServer if req.method == "INVITE" else NonInviteServer
        tx = kind(key=key, config=self.timers, reliable=is_reliable(transport), now=now)
        entry = ServerEntry(key, tx, req, dest, transport)
        self._server[key] = entry
        return entry

    def _respond(
        self,
        entry: ServerEntry,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        """Send a response through the request's server transaction."""
        req = entry.request
        if to_tag is None and status != 100 and req.to.tag is None:
            to_tag = tag(self.ids)
        extra = list(headers)
        if status != 100:
            extra.append(("Server", self.config.user_agent))
        resp = make_response(req, status, reason, to_tag=to_tag, headers=extra, body=body)
        entry.tx.feed(response_input(status, server=True), now, bytes(resp))
        self._drain(entry.tx, entry.dest, entry.transport)
        self._after_server(entry)

    def _reject(
        self,
        entry: ServerEntry,
        status: int,
        now: float,
        source: Address,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer an error of our own and tell the runtime (for its log line)."""
        method = entry.request.method  # released with the final response
        self._respond(entry, status, now, headers=headers)
        self._emit(MessageRejected(source, status, f"{method} refused"))

    def _after_server(self, entry: ServerEntry) -> None:
        entry.release_answered()
        if entry.tx.terminated and self._server.get(entry.key) is entry:
            del self._server[entry.key]
            if entry.invite_id is not None:
                self._incoming.pop(entry.invite_id, None)
        self._rearm(entry)

    def _new_client(
        self,
        req: Request,
        dest: Address,
        transport: str,
        purpose: Purpose,
        now: float,
        *,
        handle: CallHandle | None = None,
        dialog_id: DialogId | None = None,
    ) -> ClientEntry:
        kind = InviteClient if req.method == "INVITE" else NonInviteClient
        key: ClientKey = (req.top_via.branch or "", req.method)
        tx = kind(
            key=key, config=self.timers, reliable=is_reliable(transport), now=now, data=bytes(req)
        )
        entry = ClientEntry(key, tx, req, dest, transport, purpose, handle, dialog_id)
        self._client[key] = entry
        self._drain(tx, dest, transport)
        self._rearm(entry)
        return entry

    def _after_client(self, entry: ClientEntry) -> None:
        if entry.tx.terminated and self._client.get(entry.key) is entry:
            del self._client[entry.key]
        self._rearm(entry)

    # -- dialogs -----------------------------------------------------------------------------

    def _dialog(self, dialog_id: DialogId) -> Dialog:
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            raise DialogError(f"no dialog {dialog_id}")
        return dialog

    def _send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        purpose: Purpose,
        now: float,
        *,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/sdp",
    ) -> ClientEntry:
        req = build_in_dialog(
            self.local,
            dialog,
            method,
            cseq=dialog.next_cseq(),
            branch=branch(self.ids),
            body=body,
            headers=headers,
            content_type=content_type,
        )
        return self._new_client(
            req, dialog.addr, dialog.transport, purpose, now, dialog_id=dialog.id
        )

    def _dialog_input(
        self,
        dialog: Dialog,
        inp: DialogInput,
        now: float,
        reason: str | None = None,
        *,
        announce: bool = True,
    ) -> None:
        """Apply a dialog transition and carry out what it asks for.

        ``announce=False`` keeps the runtime from hearing about a dialog it never saw.
        """
        for action in dialog.feed(inp):
            if action is DialogAction.SEND_BYE:
                self._send_in_dialog(dialog, "BYE", Purpose.BYE, now)
            elif announce:
                self._emit(_ANNOUNCE[action](dialog.id, reason or _END_REASONS.get(inp, "")))
        if dialog.terminated:
            self._drop_dialog(dialog, now)
        else:
            self._rearm(dialog)

    def _drop_dialog(self, dialog: Dialog, now: float) -> None:
        self._dialogs.pop(dialog.id, None)
        self._rearm(dialog)
        pending = dialog.incoming_reinvite
        if pending is not None:
            # §15.1.2: requests still pending in a dialog that ends are answered 487.
            incoming = self._incoming.pop(pending, None)
            entry = None if incoming is None else self._server.get(incoming.key)
            if entry is not None and incoming is not None:
                self._respond(entry, 487, now, to_tag=incoming.local_tag)

    def _next_invite_id(self) -> InviteId:
        return InviteId(f"inv-{next(self._invite_seq)}")
