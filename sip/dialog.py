"""SIP dialogs (RFC 3261 §12, §13.3.1.4 2xx retransmission, §14 re-INVITE, §15 BYE).

Theory of operation: a dialog is the peer-to-peer relationship an INVITE's 2xx creates.  It is
identified by Call-ID + local tag + remote tag and remembers what every later request inside it
needs: our and the peer's URIs with tags, the remote target (the peer's Contact), the route set
(Record-Route, in request order for a UAS, reversed for a UAC, §12.1.1/§12.1.2), our local CSeq
and the peer's last CSeq (requests that go backwards are refused with 500, §12.2.2).

Its life is a small state machine (``DialogState`` × ``DialogInput`` table):

* a UAS dialog starts in ACCEPTED: our 2xx is out and the UAS core — not the transaction —
  retransmits it at T1, 2·T1 … capped at T2 until the ACK arrives (§13.3.1.4); no ACK within
  64·T1 means the dialog must be closed with BYE (``ACK_TIMEOUT``);
* a hang-up before the ACK cannot send BYE yet (§15: not until the ACK or the timeout), so
  ACCEPTED → BYE_AFTER_ACK and the BYE goes out when either happens;
* a UAC dialog starts CONFIRMED (it sent the ACK itself);
* CONFIRMED ends on BYE either way or when the peer proves gone (481/408, §12.2.1.2).

The same retransmission machinery serves the 2xx to a re-INVITE, whose ACK does not change
the dialog state.  Building in-dialog requests lives in ``sip.uac``; this module is data and
the state table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from sip.errors import DialogError
from sip.events import Address, DialogId, InviteId
from sip.headers import NameAddr
from sip.timers import TimerConfig
from sip.uri import AbsoluteUri, SipUri


class Role(Enum):
    UAS = "uas"
    UAC = "uac"


class DialogState(Enum):
    ACCEPTED = "accepted"  # UAS: 2xx sent, waiting for the ACK
    BYE_AFTER_ACK = "bye_after_ack"  # UAS: hung up before the ACK; BYE when it comes (§15)
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogInput(Enum):
    ACK = "ack"  # the ACK for our 2xx (or a retransmission of it)
    ACK_TIMEOUT = "ack_timeout"  # 64·T1 without the ACK for our 2xx
    BYE_RECEIVED = "bye_received"
    HANGUP = "hangup"  # our side hangs up
    PEER_GONE = "peer_gone"  # an in-dialog request got 481 or 408 (§12.2.1.2)


class DialogAction(Enum):
    """What the owner must do after a transition."""

    NONE = "none"
    CONFIRM = "confirm"  # emit CallConfirmed
    SEND_BYE = "send_bye"  # send BYE now
    ENDED = "ended"  # the dialog is over: emit CallEnded


_S = DialogState
_D = DialogInput
_A = DialogAction

DIALOG_TABLE: Mapping[tuple[DialogState, DialogInput], tuple[DialogState, tuple[DialogAction, ...]]]
DIALOG_TABLE = {
    (_S.ACCEPTED, _D.ACK): (_S.CONFIRMED, (_A.CONFIRM,)),
    (_S.ACCEPTED, _D.ACK_TIMEOUT): (_S.TERMINATED, (_A.SEND_BYE, _A.ENDED)),
    # The ACK was lost but the caller already hangs up: its BYE ends the call (§15.1.2).
    (_S.ACCEPTED, _D.BYE_RECEIVED): (_S.TERMINATED, (_A.ENDED,)),
    (_S.ACCEPTED, _D.HANGUP): (_S.BYE_AFTER_ACK, ()),
    (_S.BYE_AFTER_ACK, _D.ACK): (_S.TERMINATED, (_A.SEND_BYE, _A.ENDED)),
    (_S.BYE_AFTER_ACK, _D.ACK_TIMEOUT): (_S.TERMINATED, (_A.SEND_BYE, _A.ENDED)),
    (_S.BYE_AFTER_ACK, _D.BYE_RECEIVED): (_S.TERMINATED, (_A.ENDED,)),
    (_S.BYE_AFTER_ACK, _D.HANGUP): (_S.BYE_AFTER_ACK, ()),
    # ACKs to re-INVITE 2xx and ACK retransmissions are absorbed once confirmed.
    (_S.CONFIRMED, _D.ACK): (_S.CONFIRMED, ()),
    # A re-INVITE's 2xx never ACKed: the peer is unreachable, close the dialog (§14.2).
    (_S.CONFIRMED, _D.ACK_TIMEOUT): (_S.TERMINATED, (_A.SEND_BYE, _A.ENDED)),
    (_S.CONFIRMED, _D.BYE_RECEIVED): (_S.TERMINATED, (_A.ENDED,)),
    (_S.CONFIRMED, _D.HANGUP): (_S.TERMINATED, (_A.SEND_BYE, _A.ENDED)),
    (_S.CONFIRMED, _D.PEER_GONE): (_S.TERMINATED, (_A.ENDED,)),
    (_S.ACCEPTED, _D.PEER_GONE): (_S.TERMINATED, (_A.ENDED,)),
}


@dataclass
class Retransmit:
    """A 2xx the UAS core retransmits until its ACK (§13.3.1.4): T1 doubling, capped at T2."""

    data: bytes
    dest: Address | None  # where the 2xx went (the transaction's response destination)
    cseq: int
    interval: float
    next_at: float
    give_up_at: float

    @classmethod
    def start(
        cls,
        data: bytes,
        *,
        dest: Address | None,
        cseq: int,
        now: float,
        timers: TimerConfig,
        reliable: bool,
    ) -> Retransmit:
        # Over TCP the 2xx is not retransmitted, but the ACK wait still applies (§13.3.1.4).
        first = float("inf") if reliable else now + timers.t1
        return cls(data, dest, cseq, timers.t1, first, now + timers.timeout)

    def advance(self, now: float, timers: TimerConfig) -> None:
        self.interval = min(2 * self.interval, timers.t2)
        self.next_at = now + self.interval


@dataclass
class Dialog:
    """One dialog's state (RFC 3261 §12.1)."""

    id: DialogId
    role: Role
    local: NameAddr
    remote: NameAddr
    remote_target: SipUri | AbsoluteUri
    route_set: list[str]
    local_seq: int
    remote_seq: int | None
    addr: Address
    transport: str
    state: DialogState
    retransmit: Retransmit | None = None
    incoming_reinvite: InviteId | None = None
    outgoing_reinvite: bool = False
    armed: float | None = None  # the deadline last pushed on the endpoint's timer heap

    def feed(self, inp: DialogInput) -> tuple[DialogAction, ...]:
        """Apply one input; illegal ones raise ``DialogError``."""
        entry = DIALOG_TABLE.get((self.state, inp))
        if entry is None:
            raise DialogError(
                f"dialog {self.id.call_id}: {inp.value} is illegal in {self.state.value}"
            )
        self.state, actions = entry
        if self.state is DialogState.TERMINATED:
            self.retransmit = None
        return actions

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def next_cseq(self) -> int:
        """Increment and return the local CSeq for a new request (§12.2.1.1)."""
        self.local_seq += 1
        return self.local_seq

    def accept_remote_cseq(self, seq: int, method: str) -> bool:
        """§12.2.2: False when a request goes backwards (answer 500); else remember it."""
        if method in ("ACK", "CANCEL"):
            # ACK and CANCEL reuse the CSeq of the request they refer to.
            return True
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def next_deadline(self) -> float | None:
        if self.retransmit is None:
            return None
        return min(self.retransmit.next_at, self.retransmit.give_up_at)


def uas_route_set(record_routes: list[str]) -> list[str]:
    """§12.1.1: the UAS keeps Record-Route in the order of the request."""
    return list(record_routes)


def uac_route_set(record_routes: list[str]) -> list[str]:
    """§12.1.2: the UAC keeps Record-Route of the 2xx in reverse order."""
    return list(reversed(record_routes))
