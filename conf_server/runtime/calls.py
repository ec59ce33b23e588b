"""Calls: the runtime object that turns SIP dialog events into conference legs.

Path of an incoming call (DESIGN.md §1, RFC 3261 §13.3, RFC 3264 §6):

1. ``IncomingInvite`` (100 Trying already sent by the core). The dialled number is normalised to
   E.164 and looked up as a DID: not a number or unknown → 404.
2. The SDP offer is negotiated: malformed → 400, nothing in common → 488 with a Warning, no body
   (delayed offer) → 488 as well (we always answer an offer, never make one in a 2xx).
3. A media leg (its own RTP/RTCP port pair) is allocated: none free → 503 + Retry-After.
4. Optional ring time (``sip.ring_time``): 180 Ringing, then the answer after that many seconds;
   a CANCEL meanwhile ends the call as ``cancelled``.
5. 200 OK with our SDP answer. A ``CallConfirmed`` (ACK) follows; a re-INVITE renegotiates on the
   same port (hold with sendonly/inactive, resume with sendrecv); BYE either way ends the call.

Every log line of a call carries ``call_id``, ``did``, ``caller`` and ``peer``; at the end one
``call.ended`` line gives duration, how it ended and the media statistics. Anything a call's
handler raises tears down that call only (DESIGN.md convention 4).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from conf_server.domain.routing import dialled_did, dialled_user
from conf_server.engine.legs import Leg, LegSummary
from conf_server.logs import Throttled, get_logger
from conf_server.runtime.ports import PortsExhaustedError
from conf_server.runtime.seams import Direction
from conf_server.store.records import DidInfo
from media.dtmf import Digit
from sip.endpoint import SipEndpoint
from sip.errors import NegotiationError, SdpError, SipError
from sip.events import (
    CallConfirmed,
    CallEnded,
    DialogId,
    DtmfInfo,
    Event,
    IncomingInvite,
    InviteCancelled,
    InviteId,
    MessageRejected,
    ReInviteReceived,
    RequestDropped,
)
from sip.message import Request
from sip.offer_answer import MediaParams, answer_offer
from sip.sdp import SessionDescription

log = get_logger("call")


class Media(Protocol):
    """The slice of the media engine the call layer uses (``runtime.engine.MediaEngine``)."""

    def add_leg(
        self,
        params: MediaParams,
        *,
        on_digit: Callable[[Digit], None],
        on_talking: Callable[[bool], None] | None = None,
    ) -> Leg: ...
    def update_leg(self, leg: Leg, params: MediaParams) -> None: ...
    def remove_leg(self, leg: Leg) -> LegSummary: ...


class DidDirectory(Protocol):
    """Where DIDs are looked up (the store)."""

    async def find_did(self, e164: str) -> DidInfo | None: ...


class DidCache:
    """DID lookups remembered for ``ttl`` seconds, found or not.

    Every INVITE needs its DID; a database round trip costs ~2 ms, and scanners dial random
    numbers by the thousand. Remembering misses too keeps such floods off the database; a DID
    added or changed through the API or provisioning is seen within ``ttl`` seconds.
    """

    def __init__(self, directory: DidDirectory, clock: Callable[[], float], ttl: float = 5.0):
        self.directory = directory
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[str, tuple[float, DidInfo | None]] = {}
        self._max = 10_000

    async def find_did(self, e164: str) -> DidInfo | None:
        """The DID record (or None), from memory when fresh."""
        now = self.clock()
        hit = self._entries.get(e164)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self.directory.find_did(e164)
        if len(self._entries) >= self._max:
            self._entries.clear()  # bounded: a flood of distinct numbers cannot grow memory
        self._entries[e164] = (now + self.ttl, found)
        return found


class CallRejectedError(Exception):
    """A call refused with a SIP status before it was answered."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers


class CallControl(Protocol):
    """What a call asks of the layer that owns it (the ``CallManager``)."""

    def spawn(self, call: Call, coro: Awaitable[None]) -> None: ...
    def end_call(self, call: Call) -> None: ...


@dataclass(eq=False)
class Call:
    """One answered (or about to be answered) incoming SIP call: a ``seams.Party``."""

    id: str
    did: str
    caller: str
    peer: str
    source_ip: str
    invite_id: InviteId
    started: float
    log: Any
    control: CallControl | None = None  # the manager that owns the call
    direction: Direction = Direction.INBOUND
    dialog_id: DialogId | None = None
    did_info: DidInfo | None = None  # the store's DID record the call was routed on
    leg: Leg | None = None
    params: MediaParams | None = None
    answered: float | None = None
    sdp_version: int = 1
    session_id: int = 0
    digits: int = 0
    on_hold: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run a coroutine for this call; cancelled when it ends, a failure ends the call."""
        if self.control is None:
            raise RuntimeError(f"call {self.id} has no owner to run tasks")
        self.control.spawn(self, coro)

    def hang_up(self) -> None:
        """End the call from our side (BYE) unless it is gone or unanswered; ``ended`` follows."""
        if self.control is None:
            raise RuntimeError(f"call {self.id} has no owner to hang it up")
        self.control.end_call(self)


@dataclass(frozen=True)
class CallSettings:
    """Call-layer settings (from ``[sip]``)."""

    default_region: str = "US"
    ring_time: float = 0.0
    media_host: str = "127.0.0.1"
    did_cache_ttl: float = 5.0


class CallHooks(Protocol):
    """What the conference layer (IVR, meetings) is told about calls.

    ``answered`` runs once the 200 OK is sent (the call has its dialog and media leg);
    ``digit`` for every DTMF digit from any source; ``ended`` before the leg is removed, with
    how the call ended. Each runs in the event loop; an exception tears down that call only.
    """

    def answered(self, call: Call) -> None: ...
    def digit(self, call: Call, digit: Digit) -> None: ...
    def ended(self, call: Call, reason: str) -> None: ...


class CallManager:
    """Consumes endpoint events; owns every live call."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        media: Media,
        directory: DidDirectory,
        settings: CallSettings,
        *,
        flush: Callable[[], None],
        clock: Callable[[], float],
        hooks: CallHooks | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.media = media
        self.directory = DidCache(directory, clock, settings.did_cache_ttl)
        self.settings = settings
        self._send_now = flush  # the transport's: handle events, send what they queued
        self._pumping = False
        self.clock = clock
        self.hooks = hooks
        self.calls: dict[str, Call] = {}
        self._by_invite: dict[InviteId, Call] = {}
        self._by_dialog: dict[DialogId, Call] = {}
        self._session_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        # Strangers decide how often these fire: a few lines a second, the rest counted.
        self._log_rejected = Throttled(log, "sip.rejected")
        self._log_dropped = Throttled(log, "sip.dropped")
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            IncomingInvite: self._handle_incoming_invite,
            InviteCancelled: self._handle_invite_cancelled,
            CallConfirmed: self._handle_call_confirmed,
            CallEnded: self._handle_call_ended,
            ReInviteReceived: self._handle_reinvite,
            DtmfInfo: self._handle_dtmf_info,
            MessageRejected: self._handle_message_rejected,
            RequestDropped: self._handle_request_dropped,
        }

    # -- event pump --------------------------------------------------------------------------

    def pump(self) -> None:
        """Handle every pending endpoint event (called after each transport activity).

        Events that handlers cause (a hang-up inside a hook) join the same loop, so one pump
        leaves the endpoint with nothing to report; the transport sends once it returns.
        """
        self._pumping = True
        try:
            while (event := self.endpoint.next_event()) is not None:
                self._dispatch(event)
        finally:
            self._pumping = False

    def flush(self) -> None:
        """Send what the endpoint queued: at once, or when the running pump returns.

        The only place that knows whether we are inside the pump, so the transport needs no
        re-entrancy flags (a handler's flush would otherwise re-enter the transport's).
        """
        if not self._pumping:
            self._send_now()

    def _dispatch(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            log.debug("sip.event_ignored", sip_event=type(event).__name__)
            return
        try:
            handler(event)
        except Exception:  # one call's failure must not stop the pump for the others
            log.exception("call.handler_failed", sip_event=type(event).__name__)

    # -- incoming calls ------------------------------------------------------------------------

    def _handle_incoming_invite(self, event: IncomingInvite) -> None:
        req = event.request
        call = Call(
            id=req.call_id,
            did=dialled_user(req) or "",
            caller=_caller(req),
            peer=_peer(event.addr),
            source_ip=event.addr[0],
            invite_id=event.invite_id,
            started=self.clock(),
            log=log.bind(call_id=req.call_id, peer=_peer(event.addr)),
            control=self,
            session_id=next(self._session_ids),
        )
        # meeting and role are filled at the join; present (null) on every line before it
        call.log = call.log.bind(caller=call.caller, did=call.did, meeting=None, role=None)
        self._by_invite[event.invite_id] = call
        self.calls[call.id] = call
        self._spawn(call, self._setup(call, req))

    async def _setup(self, call: Call, req: Request) -> None:
        try:
            await self._route(call, req)
            answer = self._negotiate(call, req)
            if self.settings.ring_time > 0:
                self.endpoint.send_response(call.invite_id, 180, self.clock())
                self.flush()
                await asyncio.sleep(self.settings.ring_time)
            self._answer(call, answer)
        except CallRejectedError as exc:
            self._reject(call, exc)

    async def _route(self, call: Call, req: Request) -> None:
        e164 = dialled_did(req, self.settings.default_region)
        if e164 is None:
            raise CallRejectedError(404, "Not Found")
        call.did = e164
        call.log = call.log.bind(did=e164)
        call.did_info = await self.directory.find_did(e164)
        if call.did_info is None:
            raise CallRejectedError(404, "Not Found")

    def _negotiate(self, call: Call, req: Request) -> SessionDescription:
        if not req.body:
            raise CallRejectedError(
                488, "Not Acceptable Here", (("Warning", '399 conf-server "SDP offer required"'),)
            )
        try:
            offer = SessionDescription.parse(req.body)
            # Negotiate before allocating: a call we refuse never holds a port pair.
            _, params = self._answer_sdp(call, offer, port=0)
        except SdpError as exc:
            raise CallRejectedError(400, f"Bad SDP: {exc}") from None
        except NegotiationError as exc:
            raise CallRejectedError(
                488, "Not Acceptable Here", (("Warning", exc.warning),)
            ) from None
        try:
            call.leg = self.media.add_leg(params, on_digit=lambda digit: self._digit(call, digit))
        except (PortsExhaustedError, OSError) as exc:
            call.log.warning("call.no_media_port", error=str(exc))
            raise CallRejectedError(503, "Service Unavailable", (("Retry-After", "5"),)) from None
        call.params = params
        answer, _ = self._answer_sdp(call, offer, port=call.leg.port)
        return answer

    def _answer_sdp(
        self, call: Call, offer: SessionDescription, port: int
    ) -> tuple[SessionDescription, MediaParams]:
        return answer_offer(
            offer,
            self.settings.media_host,
            port,
            session_id=call.session_id,
            session_version=call.sdp_version,
        )

    def _answer(self, call: Call, answer: SessionDescription) -> None:
        if call.invite_id not in self._by_invite:
            return  # cancelled while ringing
        call.dialog_id = self.endpoint.answer(call.invite_id, bytes(answer), self.clock())
        del self._by_invite[call.invite_id]
        self._by_dialog[call.dialog_id] = call
        call.answered = self.clock()
        params = call.params
        call.log.info(
            "call.answered",
            codec=params.codec.name if params else None,
            rtp_port=call.leg.port if call.leg is not None else None,
            remote_rtp=_peer((params.remote_addr, params.remote_port)) if params else None,
            dtmf="rfc4733" if params and params.dtmf_payload_type is not None else "inband",
        )
        if (hooks := self.hooks) is not None:
            self._guarded(call, lambda: hooks.answered(call))
        self.flush()

    def _reject(self, call: Call, exc: CallRejectedError) -> None:
        if call.invite_id in self._by_invite:
            try:
                self.endpoint.send_response(
                    call.invite_id, exc.status, self.clock(), reason=exc.reason, headers=exc.headers
                )
            except SipError as err:  # the INVITE was cancelled meanwhile
                call.log.debug("call.reject_late", error=str(err))
            self.flush()
        self._finish(call, f"rejected_{exc.status}")

    def _handle_invite_cancelled(self, event: InviteCancelled) -> None:
        call = self._by_invite.get(event.invite_id)
        if call is not None:
            self._finish(call, "cancelled")

    # -- established calls ---------------------------------------------------------------------

    def _handle_call_confirmed(self, event: CallConfirmed) -> None:
        call = self._by_dialog.get(event.dialog_id)
        if call is not None:
            call.log.debug("call.confirmed")

    def _handle_call_ended(self, event: CallEnded) -> None:
        call = self._by_dialog.get(event.dialog_id)
        if call is not None:
            self._finish(call, event.reason)

    def _handle_reinvite(self, event: ReInviteReceived) -> None:
        call = self._by_dialog.get(event.dialog_id)
        now = self.clock()
        if call is None or call.leg is None:
            self.endpoint.answer_reinvite(event.reinvite_id, 481, b"", now)
            return
        try:
            offer = SessionDescription.parse(event.request.body)
            call.sdp_version += 1
            answer, params = self._answer_sdp(call, offer, port=call.leg.port)
        except (SdpError, NegotiationError) as exc:
            call.log.info("call.reinvite_refused", error=str(exc))
            self.endpoint.answer_reinvite(event.reinvite_id, 488, b"", now)
            return
        self.media.update_leg(call.leg, params)
        call.params = params
        if params.on_hold != call.on_hold:
            call.on_hold = params.on_hold
            call.log.info("call.held" if params.on_hold else "call.resumed")
        self.endpoint.answer_reinvite(event.reinvite_id, 200, bytes(answer), now)

    def _handle_dtmf_info(self, event: DtmfInfo) -> None:
        call = self._by_dialog.get(event.dialog_id)
        if call is None:
            return
        try:
            digit = Digit(event.digit, event.duration_ms, "info")
        except ValueError:
            call.log.info("call.bad_info_digit")
            return
        self._digit(call, digit)

    def _digit(self, call: Call, digit: Digit) -> None:
        call.digits += 1
        call.log.debug("call.digit", source=digit.source)  # never the key: codes are secrets
        if (hooks := self.hooks) is not None:
            self._guarded(call, lambda: hooks.digit(call, digit))

    # -- refusals and drops ----------------------------------------------------------------------

    def _handle_message_rejected(self, event: MessageRejected) -> None:
        peer = _peer(event.addr)
        self._log_rejected(self.clock(), peer=peer, status=event.status, reason=event.reason)

    def _handle_request_dropped(self, event: RequestDropped) -> None:
        self._log_dropped(self.clock(), peer=_peer(event.addr), reason=event.reason)

    # -- hang-up and teardown --------------------------------------------------------------------

    def hangup(self, call: Call) -> None:
        """End a call from our side (BYE); ``call.ended`` follows when the dialog ends."""
        if call.dialog_id is None:
            raise ValueError(f"call {call.id} is not answered")
        self.endpoint.hangup(call.dialog_id, self.clock())
        self.flush()

    def end_call(self, call: Call) -> None:
        """BYE a call unless it is already gone or not answered (what ``Call.hang_up`` asks)."""
        if call.id not in self.calls or call.dialog_id is None:
            return
        try:
            self.hangup(call)
        except SipError as exc:  # the dialog is already ending (a BYE crossed ours)
            call.log.debug("call.hangup_late", error=str(exc))

    def hangup_all(self) -> None:
        """BYE every answered call (shutdown)."""
        for call in list(self._by_dialog.values()):
            self.hangup(call)

    def _finish(self, call: Call, reason: str) -> None:
        if self.calls.pop(call.id, None) is None:
            return
        self._by_invite.pop(call.invite_id, None)
        if call.dialog_id is not None:
            self._by_dialog.pop(call.dialog_id, None)
        for task in call.tasks:
            task.cancel()
        if self.hooks is not None and call.answered is not None:
            try:
                self.hooks.ended(call, reason)
            except Exception:  # the call is ending anyway; its leg must still be freed
                call.log.exception("call.hook_failed", hook="ended")
        stats: dict[str, Any] = {}
        if call.leg is not None:
            stats = _summary_fields(self.media.remove_leg(call.leg))
        now = self.clock()
        fields = {
            **stats,
            "reason": reason,
            "duration": round(now - call.answered, 3) if call.answered is not None else 0.0,
            "setup_ms": round(((call.answered or now) - call.started) * 1000, 1),
            "answered": call.answered is not None,
            "digits": call.digits,  # every source (RFC 4733, in-band, INFO); never the keys
        }
        call.log.info("call.ended", **fields)

    def _guarded(self, call: Call, action: Callable[[], None]) -> None:
        """Run a hook; if it raises, log it and hang up that call only."""
        try:
            action()
        except Exception:  # convention 4: a failure tears down its own call, nothing else
            call.log.exception("call.hook_failed")
            if call.dialog_id is not None and call.id in self.calls:
                self.hangup(call)

    def spawn(self, call: Call, coro: Awaitable[None]) -> None:
        """Run a coroutine for ``call``; cancelled when the call ends, failures end the call."""
        self._spawn(call, coro)

    def _spawn(self, call: Call, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(self._guard(call, coro))
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)

    async def _guard(self, call: Call, coro: Awaitable[None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # tear down this call only
            call.log.exception("call.failed")
            if call.invite_id in self._by_invite:
                self._reject(call, CallRejectedError(500, "Server Internal Error"))
            elif call.dialog_id is not None:
                self.hangup(call)


def _summary_fields(summary: LegSummary) -> dict[str, Any]:
    """The media statistics of a removed leg, as log fields."""
    fields: dict[str, Any] = summary.as_log()
    fields.pop("leg", None)
    return fields


def _caller(req: Request) -> str:
    uri = req.from_.uri
    user = getattr(uri, "user", None)
    return str(user) if user else str(uri)


def _peer(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
