"""RTP/RTCP port pairs from a configured range (RFC 3550 §11: RTP even, RTCP the next odd).

Each call gets its own pair so that latching behind NAT is unambiguous. A pair is bound
immediately (both sockets) so a port another program holds is skipped, not handed out.

The RTP socket gets ``SO_REUSEPORT`` *before* it is bound: the transport later binds a second,
unconnected socket to the same port to count packets from foreign sources while the first one is
connected to the latched peer, and Linux only lets two sockets share a port when both asked for
it at bind time. Setting it here, not by closing and rebinding, leaves no window in which the
port is free. A program that holds the port without the option still makes the bind fail (the
port is skipped); only a process of the same user that also sets the option could share it. The
RTCP socket does not set it: nothing ever shares that port.
Released pairs go to the back of the queue: a port is not reused at once, so late packets of an
ended call do not land in a new one.
"""

from __future__ import annotations

import socket
from collections import deque
from dataclasses import dataclass


class PortsExhaustedError(RuntimeError):
    """Every pair of the range is in use (or held by another program)."""


@dataclass(slots=True)
class PortPair:
    """Two bound, non-blocking UDP sockets: RTP on ``port`` (``SO_REUSEPORT``), RTCP next."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket

    def close(self) -> None:
        """Close both sockets."""
        self.rtp.close()
        self.rtcp.close()


class PortAllocator:
    """Hands out bound RTP/RTCP socket pairs from ``[low, high]``."""

    def __init__(self, host: str, low: int, high: int) -> None:
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        first = low + (low % 2)
        self._free: deque[int] = deque(range(first, high, 2))
        self.in_use = 0

    @property
    def capacity(self) -> int:
        """Pairs not currently handed out."""
        return len(self._free)

    def allocate(self) -> PortPair:
        """Bind the next free pair; skip ports other programs hold."""
        for _ in range(len(self._free)):
            port = self._free.popleft()
            pair = self._bind(port)
            if pair is not None:
                self.in_use += 1
                return pair
            self._free.append(port)
        raise PortsExhaustedError(f"no free RTP port pair on {self.host}")

    def release(self, pair: PortPair) -> None:
        """Close the pair and queue its port for reuse, last."""
        pair.close()
        self._free.append(pair.port)
        self.in_use -= 1

    def _bind(self, port: int) -> PortPair | None:
        socks: list[socket.socket] = []
        try:
            for p, share in ((port, True), (port + 1, False)):
                sock = socket.socket(self.family, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
                if share:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((self.host, p))
        except OSError:
            for sock in socks:
                sock.close()
            return None
        return PortPair(port, socks[0], socks[1])
