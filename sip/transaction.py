"""SIP transactions (RFC 3261 §17, with the 2xx handling of RFC 6026 §7–§8).

Theory of operation: a transaction is a small state machine that makes message delivery
reliable over an unreliable transport.  Four kinds exist — INVITE/non-INVITE × client/server —
and each is written as a *transition table*: ``(state, input) -> (next state, steps)``.  An
input is either a ``TxInput`` (a message arrived, the TU wants to send a response, the
transport failed) or a ``Timer`` that fired.  A pair that is not in the table is an illegal
input and raises ``TransactionError``: it means our own TU misused the transaction, or a
timer fired that should have been cancelled.  Peer-driven inputs that the RFC says to absorb
(an INVITE retransmission in Accepted, a 1xx in Completed …) are in the table with no steps.

The steps are tiny actions executed in order (transmit, retransmit, start a timer, tell the
TU …).  Transactions know nothing of message syntax: they carry the bytes they must
(re)transmit and the ``Notice`` returned from ``feed`` tells the caller whether to pass the
message up to the TU or report a timeout.  Time is explicit: every timer is an absolute
deadline in ``deadlines``; ``due(now)`` lists those that have expired.

Over a reliable transport the retransmit timers (A, E, G) are never started and the
linger timers (D, I, J, K) are zero (``TimerConfig.duration``), so the transaction ends as soon
as the caller next runs ``due(now)``.

RFC 6026 changes §17 in two places that matter to a UAS: an INVITE server transaction that
sends a 2xx moves to *Accepted* (timer L) instead of terminating, absorbing INVITE
retransmissions while the TU retransmits the 2xx; an INVITE client transaction that receives a
2xx moves to *Accepted* (timer M) and passes 2xx retransmissions to the TU, which re-sends its
ACK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from sip.errors import TransactionError
from sip.timers import Timer, TimerConfig


class TxState(Enum):
    """States of RFC 3261 §17 figures 5–8 plus Accepted (RFC 6026 figures 5 and 7)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class TxInput(Enum):
    """Non-timer inputs to a transaction."""

    REQUEST = "request"  # server: a retransmission of the transaction's request
    ACK = "ack"  # INVITE server: an ACK matching this transaction
    SEND_1XX = "send_1xx"  # server: the TU sends a provisional response
    SEND_2XX = "send_2xx"  # server: the TU sends a 2xx
    SEND_FINAL = "send_final"  # server: the TU sends a 300–699
    RECV_1XX = "recv_1xx"  # client: a provisional response arrived
    RECV_2XX = "recv_2xx"  # client: a 2xx arrived
    RECV_FINAL = "recv_final"  # client: a 300–699 arrived
    # INVITE client: bound the transaction by timer B even after a 1xx — the TU sent CANCEL
    # (§9.1: give up after 64·T1) or the INVITE is a re-INVITE, which must not ring forever.
    ARM_TIMEOUT = "arm_timeout"
    TRANSPORT_ERROR = "transport_error"


Input = TxInput | Timer


class Notice(Enum):
    """What the caller must do with the input after the transaction consumed it."""

    NONE = "none"  # absorbed
    DELIVER = "deliver"  # pass the message up to the TU
    TIMEOUT = "timeout"  # tell the TU the transaction timed out (408 semantics)
    ERROR = "error"  # tell the TU the transport failed (503 semantics, §8.1.3.1)


class Step(Enum):
    """Atomic actions a transition performs; a ``Timer`` in a step list means "start it"."""

    SEND = "send"  # remember the data as our last message and transmit it
    RESEND = "resend"  # retransmit our last message (response, or ACK for a client)
    RETRANSMIT = "retransmit"  # re-send the request and back the firing timer off
    RETRANSMIT_T2 = "retransmit_t2"  # re-send the request; next retransmission after T2
    STOP_TIMERS = "stop_timers"  # cancel every running timer
    DELIVER = "deliver"
    TIMEOUT = "timeout"
    ERROR = "error"


Steps = tuple[Step | Timer, ...]
Table = Mapping[tuple[TxState, Input], tuple[TxState, Steps]]

_S = TxState
_I = TxInput
_T = Timer
_STOP = Step.STOP_TIMERS


@dataclass
class Transaction:
    """Base of the four kinds: the table interpreter, the timers and the outbox.

    ``key`` is whatever the owner matches on; ``data`` is the request (client) the transaction
    was created for, transmitted at creation by client kinds.  ``outbox`` collects bytes to send
    to the peer; the owner drains it after every ``feed``.
    """

    TABLE: ClassVar[Table]
    INITIAL: ClassVar[TxState]
    START_TIMERS: ClassVar[tuple[Timer, ...]] = ()

    key: object
    config: TimerConfig
    reliable: bool
    now: float
    data: bytes = b""
    state: TxState = field(init=False)
    deadlines: dict[Timer, float] = field(init=False, default_factory=dict)
    intervals: dict[Timer, float] = field(init=False, default_factory=dict)
    outbox: list[bytes] = field(init=False, default_factory=list)
    last: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        self.state = self.INITIAL
        for timer in self.START_TIMERS:
            self._start(timer, self.now)

    @property
    def terminated(self) -> bool:
        return self.state is TxState.TERMINATED

    def next_deadline(self) -> float | None:
        """The earliest running timer's deadline."""
        return min(self.deadlines.values(), default=None)

    def due(self, now: float) -> list[Timer]:
        """Running timers whose deadline is ``now`` or earlier, earliest first."""
        expired = [(at, t.value, t) for t, at in self.deadlines.items() if at <= now]
        return [t for _, _, t in sorted(expired)]

    def feed(self, inp: Input, now: float, data: bytes = b"") -> Notice:
        """Apply one input; ``data`` is the response the TU sends, or the ACK a client sends."""
        entry = self.TABLE.get((self.state, inp))
        if entry is None:
            raise TransactionError(
                f"{type(self).__name__}: input {inp.name} is illegal in state {self.state.value}"
            )
        if isinstance(inp, Timer):
            self.deadlines.pop(inp, None)
        next_state, steps = entry
        notice = Notice.NONE
        for step in steps:
            notice = self._run(step, inp, now, data) or notice
        self.state = next_state
        if next_state is TxState.TERMINATED:
            self.deadlines.clear()
        return notice

    def take_outbox(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    def _start(self, timer: Timer, now: float) -> None:
        duration = self.config.duration(timer, self.reliable)
        if duration is None:
            return
        self.intervals[timer] = duration
        self.deadlines[timer] = now + duration

    def _run(self, step: Step | Timer, inp: Input, now: float, data: bytes) -> Notice | None:
        if isinstance(step, Timer):
            self._start(step, now)
            return None
        return _STEP_HANDLERS[step](self, inp, now, data)

    def _handle_send(self, inp: Input, now: float, data: bytes) -> None:
        self.last = data
        self.outbox.append(data)

    def _handle_resend(self, inp: Input, now: float, data: bytes) -> None:
        # A retransmitted request before any response was sent has nothing to resend.
        if self.last:
            self.outbox.append(self.last)

    def _retransmit_after(self, timer: Timer, now: float, interval: float) -> None:
        self.outbox.append(self.data)
        self.intervals[timer] = interval
        self.deadlines[timer] = now + interval

    def _handle_retransmit(self, inp: Input, now: float, data: bytes) -> None:
        timer = _firing(inp)
        nxt = self.config.next_interval(timer, self.intervals[timer])
        if timer is Timer.G:
            # G retransmits the response, not the request (§17.2.1).
            self.outbox.append(self.last)
            self.intervals[timer] = nxt
            self.deadlines[timer] = now + nxt
            return
        self._retransmit_after(timer, now, nxt)

    def _handle_retransmit_t2(self, inp: Input, now: float, data: bytes) -> None:
        self._retransmit_after(_firing(inp), now, self.config.t2)

    def _handle_stop_timers(self, inp: Input, now: float, data: bytes) -> None:
        self.deadlines.clear()

    def _handle_deliver(self, inp: Input, now: float, data: bytes) -> Notice:
        return Notice.DELIVER

    def _handle_timeout(self, inp: Input, now: float, data: bytes) -> Notice:
        return Notice.TIMEOUT

    def _handle_error(self, inp: Input, now: float, data: bytes) -> Notice:
        return Notice.ERROR


def _firing(inp: Input) -> Timer:
    if not isinstance(inp, Timer):
        raise TransactionError(f"retransmission step driven by {inp.name}, not a timer")
    return inp


_StepHandler = Callable[[Transaction, Input, float, bytes], Notice | None]

_STEP_HANDLERS: dict[Step, _StepHandler] = {
    Step.SEND: Transaction._handle_send,
    Step.RESEND: Transaction._handle_resend,
    Step.RETRANSMIT: Transaction._handle_retransmit,
    Step.RETRANSMIT_T2: Transaction._handle_retransmit_t2,
    Step.STOP_TIMERS: Transaction._handle_stop_timers,
    Step.DELIVER: Transaction._handle_deliver,
    Step.TIMEOUT: Transaction._handle_timeout,
    Step.ERROR: Transaction._handle_error,
}

_TERMINATE_ON_ERROR: Steps = (_STOP, Step.ERROR)


class InviteServer(Transaction):
    """RFC 3261 figure 7 with RFC 6026 figure 7 (Accepted state)."""

    INITIAL = TxState.PROCEEDING
    TABLE: ClassVar[Table] = {
        (_S.PROCEEDING, _I.REQUEST): (_S.PROCEEDING, (Step.RESEND,)),
        (_S.PROCEEDING, _I.SEND_1XX): (_S.PROCEEDING, (Step.SEND,)),
        (_S.PROCEEDING, _I.SEND_2XX): (_S.ACCEPTED, (Step.SEND, _T.L)),
        (_S.PROCEEDING, _I.SEND_FINAL): (_S.COMPLETED, (Step.SEND, _T.G, _T.H)),
        (_S.PROCEEDING, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        # An ACK before any final answer acknowledges nothing: a peer's error (found by
        # fuzzing), absorbed like any stray ACK, which is never answered (§17.2.3).
        (_S.PROCEEDING, _I.ACK): (_S.PROCEEDING, ()),
        (_S.COMPLETED, _I.REQUEST): (_S.COMPLETED, (Step.RESEND,)),
        (_S.COMPLETED, _I.ACK): (_S.CONFIRMED, (_STOP, _T.I)),
        (_S.COMPLETED, _T.G): (_S.COMPLETED, (Step.RETRANSMIT,)),
        (_S.COMPLETED, _T.H): (_S.TERMINATED, (_STOP, Step.TIMEOUT)),
        (_S.COMPLETED, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        # Confirmed exists only to absorb ACK retransmissions (§17.2.1).
        (_S.CONFIRMED, _I.REQUEST): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, _I.ACK): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, _I.TRANSPORT_ERROR): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, _T.I): (_S.TERMINATED, ()),
        # RFC 6026 §7.1: INVITE retransmissions are absorbed, the TU retransmits the 2xx itself
        # and an ACK that matches (only a 2543-style peer reuses the branch) goes to the TU.
        (_S.ACCEPTED, _I.REQUEST): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.ACK): (_S.ACCEPTED, (Step.DELIVER,)),
        (_S.ACCEPTED, _I.SEND_2XX): (_S.ACCEPTED, (Step.SEND,)),
        (_S.ACCEPTED, _I.TRANSPORT_ERROR): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _T.L): (_S.TERMINATED, ()),
    }


class InviteClient(Transaction):
    """RFC 3261 figure 5 with RFC 6026 figure 5 (Accepted state).

    Timer B runs in Calling; once a provisional arrived the TU decides how long to ring.  When
    the TU cancels, or for a re-INVITE, ``ARM_TIMEOUT`` restarts B so that a peer that never
    sends a final answer cannot keep the transaction forever (§9.1: give up after 64·T1).
    """

    INITIAL = TxState.CALLING
    START_TIMERS = (Timer.A, Timer.B)
    TABLE: ClassVar[Table] = {
        (_S.CALLING, _T.A): (_S.CALLING, (Step.RETRANSMIT,)),
        (_S.CALLING, _T.B): (_S.TERMINATED, (_STOP, Step.TIMEOUT)),
        (_S.CALLING, _I.RECV_1XX): (_S.PROCEEDING, (_STOP, Step.DELIVER)),
        (_S.CALLING, _I.RECV_2XX): (_S.ACCEPTED, (_STOP, Step.DELIVER, _T.M)),
        (_S.CALLING, _I.RECV_FINAL): (_S.COMPLETED, (_STOP, Step.SEND, Step.DELIVER, _T.D)),
        (_S.CALLING, _I.ARM_TIMEOUT): (_S.CALLING, ()),
        (_S.CALLING, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        (_S.PROCEEDING, _I.RECV_1XX): (_S.PROCEEDING, (Step.DELIVER,)),
        (_S.PROCEEDING, _I.RECV_2XX): (_S.ACCEPTED, (_STOP, Step.DELIVER, _T.M)),
        (_S.PROCEEDING, _I.RECV_FINAL): (_S.COMPLETED, (_STOP, Step.SEND, Step.DELIVER, _T.D)),
        (_S.PROCEEDING, _I.ARM_TIMEOUT): (_S.PROCEEDING, (_T.B,)),
        (_S.PROCEEDING, _T.B): (_S.TERMINATED, (_STOP, Step.TIMEOUT)),
        (_S.PROCEEDING, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        # Completed: a retransmitted final gets the same ACK again, nothing goes up (§17.1.1.2).
        (_S.COMPLETED, _I.RECV_FINAL): (_S.COMPLETED, (Step.RESEND,)),
        (_S.COMPLETED, _I.RECV_1XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.RECV_2XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.ARM_TIMEOUT): (_S.COMPLETED, ()),
        (_S.COMPLETED, _T.D): (_S.TERMINATED, ()),
        (_S.COMPLETED, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        # RFC 6026 §7.2: 2xx retransmissions go to the TU (it re-sends its ACK), others drop.
        (_S.ACCEPTED, _I.RECV_2XX): (_S.ACCEPTED, (Step.DELIVER,)),
        (_S.ACCEPTED, _I.RECV_1XX): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.RECV_FINAL): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.ARM_TIMEOUT): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.TRANSPORT_ERROR): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _T.M): (_S.TERMINATED, ()),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        self.outbox.append(self.data)


class NonInviteServer(Transaction):
    """RFC 3261 figure 8."""

    INITIAL = TxState.TRYING
    TABLE: ClassVar[Table] = {
        # Trying: nothing sent yet, so a retransmitted request has nothing to provoke.
        (_S.TRYING, _I.REQUEST): (_S.TRYING, ()),
        (_S.TRYING, _I.SEND_1XX): (_S.PROCEEDING, (Step.SEND,)),
        (_S.TRYING, _I.SEND_2XX): (_S.COMPLETED, (Step.SEND, _T.J)),
        (_S.TRYING, _I.SEND_FINAL): (_S.COMPLETED, (Step.SEND, _T.J)),
        (_S.PROCEEDING, _I.REQUEST): (_S.PROCEEDING, (Step.RESEND,)),
        (_S.PROCEEDING, _I.SEND_1XX): (_S.PROCEEDING, (Step.SEND,)),
        (_S.PROCEEDING, _I.SEND_2XX): (_S.COMPLETED, (Step.SEND, _T.J)),
        (_S.PROCEEDING, _I.SEND_FINAL): (_S.COMPLETED, (Step.SEND, _T.J)),
        (_S.PROCEEDING, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        (_S.COMPLETED, _I.REQUEST): (_S.COMPLETED, (Step.RESEND,)),
        (_S.COMPLETED, _T.J): (_S.TERMINATED, ()),
        (_S.COMPLETED, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
    }


class NonInviteClient(Transaction):
    """RFC 3261 figure 6."""

    INITIAL = TxState.TRYING
    START_TIMERS = (Timer.E, Timer.F)
    TABLE: ClassVar[Table] = {
        (_S.TRYING, _T.E): (_S.TRYING, (Step.RETRANSMIT,)),
        (_S.TRYING, _T.F): (_S.TERMINATED, (_STOP, Step.TIMEOUT)),
        (_S.TRYING, _I.RECV_1XX): (_S.PROCEEDING, (Step.DELIVER,)),
        (_S.TRYING, _I.RECV_2XX): (_S.COMPLETED, (_STOP, Step.DELIVER, _T.K)),
        (_S.TRYING, _I.RECV_FINAL): (_S.COMPLETED, (_STOP, Step.DELIVER, _T.K)),
        (_S.TRYING, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        (_S.PROCEEDING, _T.E): (_S.PROCEEDING, (Step.RETRANSMIT_T2,)),
        (_S.PROCEEDING, _T.F): (_S.TERMINATED, (_STOP, Step.TIMEOUT)),
        (_S.PROCEEDING, _I.RECV_1XX): (_S.PROCEEDING, (Step.DELIVER,)),
        (_S.PROCEEDING, _I.RECV_2XX): (_S.COMPLETED, (_STOP, Step.DELIVER, _T.K)),
        (_S.PROCEEDING, _I.RECV_FINAL): (_S.COMPLETED, (_STOP, Step.DELIVER, _T.K)),
        (_S.PROCEEDING, _I.TRANSPORT_ERROR): (_S.TERMINATED, _TERMINATE_ON_ERROR),
        # Completed only absorbs response retransmissions (§17.1.2.2).
        (_S.COMPLETED, _I.RECV_1XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.RECV_2XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.RECV_FINAL): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.TRANSPORT_ERROR): (_S.COMPLETED, ()),
        (_S.COMPLETED, _T.K): (_S.TERMINATED, ()),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        self.outbox.append(self.data)


def response_input(status: int, *, server: bool) -> TxInput:
    """The table input for a response status, sent (server) or received (client)."""
    if not 100 <= status <= 699:
        raise TransactionError(f"status {status} is outside 100-699")
    index = 0 if status < 200 else 1 if status < 300 else 2
    return _SEND_INPUTS[index] if server else _RECV_INPUTS[index]


_SEND_INPUTS = (TxInput.SEND_1XX, TxInput.SEND_2XX, TxInput.SEND_FINAL)
_RECV_INPUTS = (TxInput.RECV_1XX, TxInput.RECV_2XX, TxInput.RECV_FINAL)
