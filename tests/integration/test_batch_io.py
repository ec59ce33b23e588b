"""The compiled batch socket I/O over real UDP sockets on loopback (IPv4 and IPv6)."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest

from conf_server.runtime.batch_io import (
    ADDR_LEN,
    SendTable,
    pack_sockaddr,
    recv_batch,
    unpack_sockaddr,
)

pytestmark = pytest.mark.integration


def _udp(family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    return sock


@pytest.fixture
def socks() -> Iterator[list[socket.socket]]:
    made = [_udp() for _ in range(4)]
    yield made
    for sock in made:
        sock.close()


def _batch(rows: int, width: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((rows, width), np.uint8), np.zeros(rows, np.int32), np.zeros(rows, np.intp)


def test_recv_batch_drains_each_socket_and_labels_rows_with_its_slot(
    socks: list[socket.socket],
) -> None:
    sender = _udp()
    for i, sock in enumerate(socks[:3]):
        for j in range(i + 1):  # socket i has i + 1 packets queued
            sender.sendto(bytes([i, j]) * 5, sock.getsockname())
    time.sleep(0.02)
    buf, lengths, slots = _batch(10)
    fds = np.array([s.fileno() for s in socks], np.int32)
    k = recv_batch(fds, np.array([7, 8, 9, 10], np.intp), buf, lengths, slots, 0, 8)
    assert k == 6
    assert slots[:k].tolist() == [7, 8, 8, 9, 9, 9]
    assert lengths[:k].tolist() == [10] * 6
    assert [bytes(buf[r, :2]) for r in range(k)] == [
        b"\x00\x00", b"\x01\x00", b"\x01\x01", b"\x02\x00", b"\x02\x01", b"\x02\x02"]  # fmt: skip
    assert recv_batch(fds, np.arange(4, dtype=np.intp), buf, lengths, slots, 0, 8) == 0
    sender.close()


def test_recv_batch_stops_at_a_full_batch_and_at_the_per_socket_cap(
    socks: list[socket.socket],
) -> None:
    sender = _udp()
    for _ in range(5):
        sender.sendto(b"x", socks[0].getsockname())
        sender.sendto(b"y", socks[1].getsockname())
    time.sleep(0.02)
    buf, lengths, slots = _batch(4)
    fds = np.array([socks[0].fileno(), socks[1].fileno()], np.int32)
    ids = np.array([0, 1], np.intp)
    # From row 1 on, at most 2 a socket: rows 1-2 from socket 0, row 3 from socket 1.
    assert recv_batch(fds, ids, buf, lengths, slots, 1, 2) == 4
    assert slots[1:3].tolist() == [0, 0] and slots[3] == 1
    assert recv_batch(fds, ids, buf, lengths, slots, 0, 8) == 4  # the batch is full at 4
    assert recv_batch(fds, ids, buf, lengths, slots, 0, 8) == 3  # what was left waits
    sender.close()


def test_recv_batch_reports_sources_and_truncates_to_the_row() -> None:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock, sender = _udp(family), _udp(family)
        sender.sendto(b"a" * 100, sock.getsockname()[:2])
        time.sleep(0.02)
        buf, lengths, slots = _batch(2, 16)
        addrs = np.zeros((2, ADDR_LEN), np.uint8)
        fds = np.array([sock.fileno()], np.int32)
        k = recv_batch(fds, np.zeros(1, np.intp), buf, lengths, slots, 0, 8, addrs)
        assert k == 1 and lengths[0] == 16  # a datagram longer than the row is cut
        assert unpack_sockaddr(addrs[0].tobytes()) == (host, sender.getsockname()[1])
        sock.close()
        sender.close()


def test_send_table_sends_connected_and_addressed_rows_and_skips_unknown_slots() -> None:
    a, b, out_a, out_b = _udp(), _udp(), _udp(), _udp(socket.AF_INET6)
    six = _udp(socket.AF_INET6)
    out_a.connect(a.getsockname())
    table = SendTable(slots=2)
    table.set(0, out_a.fileno(), socket.AF_INET, None)  # connected: plain send
    table.set(5, six.fileno(), socket.AF_INET6, ("::1", out_b.getsockname()[1]))  # grows
    table.set(3, out_a.fileno(), socket.AF_INET, b.getsockname())
    table.clear(3)  # a leg that went: its rows are skipped
    packets = np.arange(3 * 8, dtype=np.uint8).reshape(3, 8)
    status = table.send(np.array([0, 3, 5], np.intp), packets)
    assert status.tolist() == [0, -1, 0]
    time.sleep(0.02)
    assert a.recv(64) == packets[0].tobytes()
    assert out_b.recv(64) == packets[2].tobytes()
    with pytest.raises(BlockingIOError):
        b.recv(64)
    for sock in (a, b, out_a, out_b, six):
        sock.close()


def test_send_table_reports_the_errno_of_a_failed_send() -> None:
    sock = _udp()
    gone = _udp()
    port = gone.getsockname()[1]
    gone.close()  # nothing listens there: the kernel answers with ICMP port unreachable
    sock.connect(("127.0.0.1", port))
    table = SendTable()
    table.set(0, sock.fileno(), socket.AF_INET, None)
    rows = np.zeros((1, 4), np.uint8)
    assert table.send(np.array([0], np.intp), rows).tolist() == [0]
    time.sleep(0.02)
    assert table.send(np.array([0], np.intp), rows).tolist() == [errno.ECONNREFUSED]
    sock.close()


def test_pack_sockaddr_maps_ipv4_on_an_ipv6_socket_and_resolves_names() -> None:
    mapped = pack_sockaddr(socket.AF_INET6, ("127.0.0.1", 4000))
    assert len(mapped) == ADDR_LEN
    assert unpack_sockaddr(mapped) == ("::ffff:127.0.0.1", 4000)
    assert unpack_sockaddr(pack_sockaddr(socket.AF_INET, ("localhost", 5))) == ("127.0.0.1", 5)


def test_bad_arguments_raise_instead_of_touching_memory() -> None:
    buf, lengths, slots = _batch(2)
    fds = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="sizes"):
        recv_batch(fds, np.zeros(1, np.intp), buf, lengths, slots, 0, 1)
    with pytest.raises(ValueError, match="sizes"):
        recv_batch(fds[:1], np.zeros(1, np.intp), buf, lengths, slots, 3, 1)
    with pytest.raises(TypeError, match="items of 4 bytes"):
        recv_batch(np.zeros(1, np.int64), np.zeros(1, np.intp), buf, lengths, slots, 0, 1)
    with pytest.raises(TypeError, match="2-D"):
        recv_batch(fds[:1], np.zeros(1, np.intp), buf.reshape(-1), lengths, slots, 0, 1)
    with pytest.raises(BufferError, match="not writable"):
        recv_batch(fds[:1], np.zeros(1, np.intp), bytes(128), lengths, slots, 0, 1)
