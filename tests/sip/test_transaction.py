"""Transaction state machines, state × input (RFC 3261 §17, RFC 6026 §7), with explicit time.

The expectation tables below are written from the RFC figures, independently of the
module's transition tables: every (state, input) pair a test lists must behave as listed, and
every pair it does not list must raise ``TransactionError``.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import TransactionError
from sip.timers import Timer, TimerConfig
from sip.transaction import (
    Input,
    InviteClient,
    InviteServer,
    NonInviteClient,
    NonInviteServer,
    Notice,
    Transaction,
    TxInput,
    TxState,
    response_input,
)

CFG = TimerConfig()
REQ = b"REQUEST"
ACK = b"ACK"
R1 = b"180"
R2 = b"200"
RF = b"486"
ALL_INPUTS: list[Input] = [*TxInput, *Timer]

S = TxState
I = TxInput  # noqa: E741 - short alias keeps the tables readable
N = Notice
T = Timer

# The data a test passes with each input: the response the TU sends, or the ACK a client sends.
DATA: dict[Input, bytes] = {I.SEND_1XX: R1, I.SEND_2XX: R2, I.SEND_FINAL: RF, I.RECV_FINAL: ACK}

Expect = dict[tuple[TxState, Input], tuple[TxState, Notice, tuple[bytes, ...]]]

INVITE_SERVER_PATHS: dict[TxState, list[Input]] = {
    S.PROCEEDING: [],
    S.COMPLETED: [I.SEND_FINAL],
    S.CONFIRMED: [I.SEND_FINAL, I.ACK],
    S.ACCEPTED: [I.SEND_2XX],
}
INVITE_SERVER: Expect = {
    (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, N.NONE, ()),
    (S.PROCEEDING, I.SEND_1XX): (S.PROCEEDING, N.NONE, (R1,)),
    (S.PROCEEDING, I.SEND_2XX): (S.ACCEPTED, N.NONE, (R2,)),
    (S.PROCEEDING, I.SEND_FINAL): (S.COMPLETED, N.NONE, (RF,)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.PROCEEDING, I.ACK): (S.PROCEEDING, N.NONE, ()),  # a stray ACK before the answer
    (S.COMPLETED, I.REQUEST): (S.COMPLETED, N.NONE, (RF,)),
    (S.COMPLETED, I.ACK): (S.CONFIRMED, N.NONE, ()),
    (S.COMPLETED, T.G): (S.COMPLETED, N.NONE, (RF,)),
    (S.COMPLETED, T.H): (S.TERMINATED, N.TIMEOUT, ()),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.CONFIRMED, I.REQUEST): (S.CONFIRMED, N.NONE, ()),
    (S.CONFIRMED, I.ACK): (S.CONFIRMED, N.NONE, ()),
    (S.CONFIRMED, I.TRANSPORT_ERROR): (S.CONFIRMED, N.NONE, ()),
    (S.CONFIRMED, T.I): (S.TERMINATED, N.NONE, ()),
    (S.ACCEPTED, I.REQUEST): (S.ACCEPTED, N.NONE, ()),
    (S.ACCEPTED, I.ACK): (S.ACCEPTED, N.DELIVER, ()),
    (S.ACCEPTED, I.SEND_2XX): (S.ACCEPTED, N.NONE, (R2,)),
    (S.ACCEPTED, I.TRANSPORT_ERROR): (S.ACCEPTED, N.NONE, ()),
    (S.ACCEPTED, T.L): (S.TERMINATED, N.NONE, ()),
}

INVITE_CLIENT_PATHS: dict[TxState, list[Input]] = {
    S.CALLING: [],
    # Cancelled while ringing: the only Proceeding in which timer B runs (§9.1 guard).
    S.PROCEEDING: [I.RECV_1XX, I.ARM_TIMEOUT],
    S.COMPLETED: [I.RECV_FINAL],
    S.ACCEPTED: [I.RECV_2XX],
}
INVITE_CLIENT: Expect = {
    (S.CALLING, T.A): (S.CALLING, N.NONE, (REQ,)),
    (S.CALLING, T.B): (S.TERMINATED, N.TIMEOUT, ()),
    (S.CALLING, I.RECV_1XX): (S.PROCEEDING, N.DELIVER, ()),
    (S.CALLING, I.RECV_2XX): (S.ACCEPTED, N.DELIVER, ()),
    (S.CALLING, I.RECV_FINAL): (S.COMPLETED, N.DELIVER, (ACK,)),
    (S.CALLING, I.ARM_TIMEOUT): (S.CALLING, N.NONE, ()),
    (S.CALLING, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.PROCEEDING, I.RECV_1XX): (S.PROCEEDING, N.DELIVER, ()),
    (S.PROCEEDING, I.RECV_2XX): (S.ACCEPTED, N.DELIVER, ()),
    (S.PROCEEDING, I.RECV_FINAL): (S.COMPLETED, N.DELIVER, (ACK,)),
    (S.PROCEEDING, I.ARM_TIMEOUT): (S.PROCEEDING, N.NONE, ()),
    (S.PROCEEDING, T.B): (S.TERMINATED, N.TIMEOUT, ()),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.COMPLETED, I.RECV_FINAL): (S.COMPLETED, N.NONE, (ACK,)),
    (S.COMPLETED, I.RECV_1XX): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, I.RECV_2XX): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, I.ARM_TIMEOUT): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, T.D): (S.TERMINATED, N.NONE, ()),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.ACCEPTED, I.RECV_2XX): (S.ACCEPTED, N.DELIVER, ()),
    (S.ACCEPTED, I.RECV_1XX): (S.ACCEPTED, N.NONE, ()),
    (S.ACCEPTED, I.RECV_FINAL): (S.ACCEPTED, N.NONE, ()),
    (S.ACCEPTED, I.ARM_TIMEOUT): (S.ACCEPTED, N.NONE, ()),
    (S.ACCEPTED, I.TRANSPORT_ERROR): (S.ACCEPTED, N.NONE, ()),
    (S.ACCEPTED, T.M): (S.TERMINATED, N.NONE, ()),
}

NON_INVITE_SERVER_PATHS: dict[TxState, list[Input]] = {
    S.TRYING: [],
    S.PROCEEDING: [I.SEND_1XX],
    S.COMPLETED: [I.SEND_2XX],
}
NON_INVITE_SERVER: Expect = {
    (S.TRYING, I.REQUEST): (S.TRYING, N.NONE, ()),
    (S.TRYING, I.SEND_1XX): (S.PROCEEDING, N.NONE, (R1,)),
    (S.TRYING, I.SEND_2XX): (S.COMPLETED, N.NONE, (R2,)),
    (S.TRYING, I.SEND_FINAL): (S.COMPLETED, N.NONE, (RF,)),
    (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, N.NONE, (R1,)),
    (S.PROCEEDING, I.SEND_1XX): (S.PROCEEDING, N.NONE, (R1,)),
    (S.PROCEEDING, I.SEND_2XX): (S.COMPLETED, N.NONE, (R2,)),
    (S.PROCEEDING, I.SEND_FINAL): (S.COMPLETED, N.NONE, (RF,)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.COMPLETED, I.REQUEST): (S.COMPLETED, N.NONE, (R2,)),
    (S.COMPLETED, T.J): (S.TERMINATED, N.NONE, ()),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
}

NON_INVITE_CLIENT_PATHS: dict[TxState, list[Input]] = {
    S.TRYING: [],
    S.PROCEEDING: [I.RECV_1XX],
    S.COMPLETED: [I.RECV_2XX],
}
NON_INVITE_CLIENT: Expect = {
    (S.TRYING, T.E): (S.TRYING, N.NONE, (REQ,)),
    (S.TRYING, T.F): (S.TERMINATED, N.TIMEOUT, ()),
    (S.TRYING, I.RECV_1XX): (S.PROCEEDING, N.DELIVER, ()),
    (S.TRYING, I.RECV_2XX): (S.COMPLETED, N.DELIVER, ()),
    (S.TRYING, I.RECV_FINAL): (S.COMPLETED, N.DELIVER, ()),
    (S.TRYING, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.PROCEEDING, T.E): (S.PROCEEDING, N.NONE, (REQ,)),
    (S.PROCEEDING, T.F): (S.TERMINATED, N.TIMEOUT, ()),
    (S.PROCEEDING, I.RECV_1XX): (S.PROCEEDING, N.DELIVER, ()),
    (S.PROCEEDING, I.RECV_2XX): (S.COMPLETED, N.DELIVER, ()),
    (S.PROCEEDING, I.RECV_FINAL): (S.COMPLETED, N.DELIVER, ()),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, N.ERROR, ()),
    (S.COMPLETED, I.RECV_1XX): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, I.RECV_2XX): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, I.RECV_FINAL): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.COMPLETED, N.NONE, ()),
    (S.COMPLETED, T.K): (S.TERMINATED, N.NONE, ()),
}

KINDS: list[tuple[type[Transaction], dict[TxState, list[Input]], Expect]] = [
    (InviteServer, INVITE_SERVER_PATHS, INVITE_SERVER),
    (InviteClient, INVITE_CLIENT_PATHS, INVITE_CLIENT),
    (NonInviteServer, NON_INVITE_SERVER_PATHS, NON_INVITE_SERVER),
    (NonInviteClient, NON_INVITE_CLIENT_PATHS, NON_INVITE_CLIENT),
]

CASES = [
    (kind, state, inp, expect)
    for kind, paths, expect in KINDS
    for state, inp in itertools.product([*paths, S.TERMINATED], ALL_INPUTS)
]


def _make(kind: type[Transaction], reliable: bool = False, now: float = 0.0) -> Transaction:
    return kind(key="k", config=CFG, reliable=reliable, now=now, data=REQ)


def _drive(
    kind: type[Transaction], paths: dict[TxState, list[Input]], state: TxState
) -> Transaction:
    if state is S.TERMINATED:
        tx = _make(kind)
        # Every kind can be terminated by running its timers out: find the path via the table.
        for inp in _path_to_terminated(kind):
            tx.feed(inp, 0.0, DATA.get(inp, b""))
        assert tx.terminated
        return tx
    tx = _make(kind)
    for inp in paths[state]:
        tx.feed(inp, 0.0, DATA.get(inp, b""))
    assert tx.state is state
    return tx


def _path_to_terminated(kind: type[Transaction]) -> list[Input]:
    paths: dict[type[Transaction], list[Input]] = {
        InviteServer: [I.SEND_FINAL, I.ACK, T.I],
        InviteClient: [T.B],
        NonInviteServer: [I.SEND_2XX, T.J],
        NonInviteClient: [T.F],
    }
    return paths[kind]


@pytest.mark.parametrize(
    ("kind", "state", "inp", "expect"),
    CASES,
    ids=[f"{k.__name__}-{s.value}-{i.name}" for k, s, i, _ in CASES],
)
def test_state_by_input(
    kind: type[Transaction], state: TxState, inp: Input, expect: Expect
) -> None:
    tx = _drive(kind, dict(next(p for k, p, _ in KINDS if k is kind)), state)
    tx.take_outbox()
    if isinstance(inp, Timer) and (state, inp) in expect:
        # A timer only fires while it runs: it must be armed in this state.
        assert inp in tx.deadlines, f"{inp.name} should be running in {state.value}"
    if (state, inp) not in expect:
        with pytest.raises(TransactionError, match="illegal in state"):
            tx.feed(inp, 1.0, DATA.get(inp, b""))
        return
    next_state, notice, sent = expect[(state, inp)]
    assert tx.feed(inp, 1.0, DATA.get(inp, b"")) is notice
    assert tx.state is next_state
    assert tuple(tx.take_outbox()) == sent
    if next_state is S.TERMINATED:
        assert tx.next_deadline() is None


def test_client_transactions_transmit_their_request_at_creation() -> None:
    clients: list[type[Transaction]] = [InviteClient, NonInviteClient]
    servers: list[type[Transaction]] = [InviteServer, NonInviteServer]
    for kind in clients:
        assert _make(kind).take_outbox() == [REQ]
    for kind in servers:
        assert _make(kind).take_outbox() == []


def _fire_all(tx: Transaction, until: float) -> list[tuple[float, Timer]]:
    """Run the transaction's timers up to ``until``; return (time, timer) for each firing."""
    fired: list[tuple[float, Timer]] = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        for timer in tx.due(deadline):
            tx.feed(timer, deadline)
            fired.append((deadline, timer))
    return fired


def test_timer_a_doubles_until_timer_b() -> None:
    tx = _make(InviteClient, now=100.0)
    fired = _fire_all(tx, 1000.0)
    times_a = [at - 100.0 for at, t in fired if t is T.A]
    assert times_a == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (132.0, T.B)
    assert tx.state is S.TERMINATED
    assert len(tx.take_outbox()) == 1 + 6


def test_timer_e_caps_at_t2_and_uses_t2_in_proceeding() -> None:
    tx = _make(NonInviteClient)
    fired = _fire_all(tx, 10.0)
    assert [at for at, _ in fired] == [0.5, 1.5, 3.5, 7.5]  # intervals 0.5 1 2 4 (capped)
    tx.feed(I.RECV_1XX, 8.0)
    later = _fire_all(tx, 20.0)
    assert [at for at, _ in later] == [11.5, 15.5, 19.5]  # every T2 in Proceeding


def test_timer_g_retransmits_response_capped_then_h_times_out() -> None:
    tx = _make(InviteServer)
    tx.feed(I.SEND_FINAL, 0.0, RF)
    tx.take_outbox()
    fired = _fire_all(tx, 100.0)
    g_times = [at for at, t in fired if t is T.G]
    assert g_times[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert fired[-1] == (32.0, T.H)
    assert set(tx.take_outbox()) == {RF}


def test_reliable_transport_skips_retransmits_and_zeroes_linger_timers() -> None:
    client = _make(InviteClient, reliable=True, now=5.0)
    assert set(client.deadlines) == {T.B}
    client.feed(I.RECV_FINAL, 6.0, ACK)
    assert client.deadlines == {T.D: 6.0}
    nic = _make(NonInviteClient, reliable=True)
    assert set(nic.deadlines) == {T.F}
    nic.feed(I.RECV_2XX, 1.0)
    assert nic.deadlines == {T.K: 1.0}
    server = _make(InviteServer, reliable=True)
    server.feed(I.SEND_FINAL, 2.0, RF)
    assert set(server.deadlines) == {T.H}
    server.feed(I.ACK, 3.0)
    assert server.deadlines == {T.I: 3.0}
    nis = _make(NonInviteServer, reliable=True)
    nis.feed(I.SEND_2XX, 4.0, R2)
    assert nis.deadlines == {T.J: 4.0}


def test_unreliable_linger_timers_follow_the_rfc() -> None:
    client = _make(InviteClient)
    client.feed(I.RECV_FINAL, 0.0, ACK)
    assert client.deadlines == {T.D: 32.0}
    nic = _make(NonInviteClient)
    nic.feed(I.RECV_2XX, 0.0)
    assert nic.deadlines == {T.K: 5.0}
    nis = _make(NonInviteServer)
    nis.feed(I.SEND_2XX, 0.0, R2)
    assert nis.deadlines == {T.J: 32.0}
    ist = _make(InviteServer)
    ist.feed(I.SEND_2XX, 0.0, R2)
    assert ist.deadlines == {T.L: 32.0}


def test_cancel_restarts_timer_b_in_proceeding() -> None:
    tx = _make(InviteClient)
    tx.feed(I.RECV_1XX, 1.0)
    assert tx.next_deadline() is None  # ringing: the TU decides how long
    tx.feed(I.ARM_TIMEOUT, 10.0)
    assert tx.deadlines == {T.B: 42.0}


def test_due_lists_expired_timers_in_order() -> None:
    tx = _make(InviteServer)
    tx.feed(I.SEND_FINAL, 0.0, RF)
    assert tx.due(0.4) == []
    assert tx.due(40.0) == [T.G, T.H]


def test_response_input_classifies_status() -> None:
    assert response_input(100, server=True) is I.SEND_1XX
    assert response_input(299, server=False) is I.RECV_2XX
    assert response_input(699, server=True) is I.SEND_FINAL
    with pytest.raises(TransactionError, match="outside 100-699"):
        response_input(700, server=False)


def test_timer_config_rejects_inconsistent_values() -> None:
    with pytest.raises(TransactionError, match="T1 <= T2"):
        TimerConfig(t1=5.0, t2=4.0)
    with pytest.raises(TransactionError, match="T4 must be positive"):
        TimerConfig(t4=0.0)


@given(
    t1=st.floats(min_value=0.01, max_value=2.0),
    factor=st.integers(min_value=1, max_value=16),
)
def test_non_invite_client_lifetime_is_64_t1(t1: float, factor: int) -> None:
    config = TimerConfig(t1=t1, t2=t1 * factor)
    tx = NonInviteClient(key="k", config=config, reliable=False, now=0.0, data=REQ)
    fired = _fire_all(tx, 1e6)
    assert fired[-1][1] is T.F
    assert fired[-1][0] == pytest.approx(64 * t1)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise([(0.0, T.E), *fired[:-1]])]
    assert all(gap <= config.t2 + 1e-9 for gap in gaps)
    assert gaps[0] == pytest.approx(t1)
