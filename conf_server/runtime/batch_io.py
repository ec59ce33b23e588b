"""Per-leg socket tables for the compiled batch I/O (``_batchio``): one call per tick each way.

The media engine reads every leg's RTP socket and sends every leg's packet once per 20 ms tick
(RFC 3550 §11: a port pair per leg). ``_batchio.recv_batch``/``send_batch`` loop over arrays
of file descriptors in C with the GIL released; this module keeps those arrays: a
:class:`SendTable` indexed by leg slot (fd, destination sockaddr, its length) that a tick's
row→slot array gathers from with one numpy take, and the sockaddr packing both need.
"""

from __future__ import annotations

import socket
import struct

import numpy as np
from numpy.typing import NDArray

from conf_server.runtime import _batchio

ADDR_LEN = _batchio.ADDR_LEN
recv_batch = _batchio.recv_batch
send_batch = _batchio.send_batch
Address = tuple[str, int]


def pack_sockaddr(family: int, addr: Address) -> bytes:
    """``struct sockaddr_in``/``sockaddr_in6`` for ``addr`` on a socket of ``family``."""
    host, port = addr
    if family == socket.AF_INET6:
        if ":" not in host:
            host = "::ffff:" + _numeric(socket.AF_INET, host)
        raw = socket.inet_pton(socket.AF_INET6, _numeric(socket.AF_INET6, host))
        return struct.pack("=H", family) + struct.pack("!HI", port, 0) + raw + bytes(4)
    raw = socket.inet_pton(socket.AF_INET, _numeric(socket.AF_INET, host))
    return (struct.pack("=H", family) + struct.pack("!H", port) + raw).ljust(16, b"\0")


def _numeric(family: int, host: str) -> str:
    """``host`` as a literal address (an SDP ``c=`` line may carry a name: resolve it once)."""
    try:
        socket.inet_pton(family, host)
    except OSError:
        return str(socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)[0][4][0])
    return host


def unpack_sockaddr(raw: bytes) -> Address:
    """``(host, port)`` of a sockaddr that ``recv_batch`` wrote (IPv4 or IPv6)."""
    (family,) = struct.unpack_from("=H", raw)
    (port,) = struct.unpack_from("!H", raw, 2)
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port


class SendTable:
    """Where each leg slot's packets go: its socket, and a sockaddr unless it is connected."""

    def __init__(self, slots: int = 64) -> None:
        self.fds = np.full(slots, -1, np.int32)
        self.addrs = np.zeros((slots, ADDR_LEN), np.uint8)
        self.addrlens = np.zeros(slots, np.int32)
        self._status = np.zeros(0, np.int32)

    def set(self, slot: int, fd: int, family: int, target: Address | None) -> None:
        """Send ``slot``'s packets on ``fd``: to ``target``, or with ``send`` when it is None."""
        self._grow(slot)
        self.fds[slot] = fd
        if target is None:
            self.addrlens[slot] = 0
            return
        raw = pack_sockaddr(family, target)
        self.addrs[slot, : len(raw)] = np.frombuffer(raw, np.uint8)
        self.addrlens[slot] = len(raw)

    def clear(self, slot: int) -> None:
        """``slot`` sends nothing (no peer known, or the leg is gone)."""
        if slot < len(self.fds):
            self.fds[slot] = -1

    def send(self, slots: NDArray[np.intp], packets: NDArray[np.uint8]) -> NDArray[np.int32]:
        """Send row ``i`` of ``packets`` for leg ``slots[i]``; returns each row's status.

        Status 0 is sent, -1 a slot with nowhere to send, otherwise the send's errno.
        """
        rows = len(slots)
        if rows and int(slots.max()) >= len(self.fds):
            self._grow(int(slots.max()))
        if len(self._status) < rows:
            self._status = np.zeros(max(rows, 2 * len(self._status)), np.int32)
        status = self._status[:rows]
        send_batch(
            np.ascontiguousarray(packets),
            self.fds[slots],
            self.addrs[slots],
            self.addrlens[slots],
            status,
        )
        return status

    def _grow(self, slot: int) -> None:
        size = len(self.fds)
        if slot < size:
            return
        new = max(slot + 1, 2 * size)
        self.fds = np.concatenate([self.fds, np.full(new - size, -1, np.int32)])
        self.addrs = np.concatenate([self.addrs, np.zeros((new - size, ADDR_LEN), np.uint8)])
        self.addrlens = np.concatenate([self.addrlens, np.zeros(new - size, np.int32)])
