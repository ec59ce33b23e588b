"""SIP over UDP and TCP (RFC 3261 §18) around the sans-IO ``SipEndpoint``.

The adapter only moves bytes, time and events: every datagram (or every message the TCP framer
cuts from a stream, §18.3) goes to ``endpoint.receive_datagram(data, addr, now, transport)``;
after each input it sends what ``datagrams_to_send`` returns, re-arms one loop timer at
``get_timer()``, and hands the new events to the call layer.

UDP: one socket per address family; responses leave from the socket the request came to, so
symmetric response routing (RFC 3581) needs nothing more. TCP: one framer per connection,
connections kept in a table keyed by the peer's (host, port) so responses and in-dialog requests
reuse them (§18.2.2); a framing error closes only that connection; the table is bounded.

Errors are contained per datagram and per connection: a bug triggered by one peer's bytes is
logged with the peer and the bytes are dropped; the server keeps answering everyone else.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, Protocol

from conf_server.logs import get_logger
from sip.errors import ParseError
from sip.framing import StreamFramer
from sip.limits import DEFAULT as DEFAULT_LIMITS

log = get_logger("sip.transport")

Address = tuple[str, int]


class _Outgoing(Protocol):
    data: bytes
    addr: Address
    transport: str


class Endpoint(Protocol):
    """The slice of ``sip.endpoint.SipEndpoint`` this adapter drives."""

    def receive_datagram(
        self, data: bytes, addr: Address, now: float, transport: str = "UDP"
    ) -> None: ...
    def refuse(
        self, data: bytes, error: ParseError, addr: Address, now: float, transport: str = "TCP"
    ) -> None: ...
    def datagrams_to_send(self, now: float) -> list[Any]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class SipTransport:
    """Owns the SIP sockets of one server and pumps the endpoint."""

    def __init__(
        self,
        on_activity: Callable[[], None],
        *,
        max_tcp_connections: int = 1000,
        max_message: int = DEFAULT_LIMITS.max_message,
    ) -> None:
        # The endpoint is attached after binding: with port 0 its Via/Contact port is only known
        # then. Messages arriving before that are dropped (the server is not up yet).
        self.endpoint: Endpoint | None = None
        self.on_activity = on_activity
        self.max_tcp_connections = max_tcp_connections
        self.max_message = max_message
        self.loop = asyncio.get_running_loop()
        self._udp: dict[int, asyncio.DatagramTransport] = {}
        self._tcp: dict[Address, asyncio.StreamWriter] = {}
        self._servers: list[asyncio.Server] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.addresses: list[tuple[str, Address]] = []

    # -- listeners --------------------------------------------------------------------------

    async def listen_udp(self, host: str, port: int) -> Address:
        """Bind a UDP listener; returns the bound address (port 0 picks one)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        sock.bind((host, port))
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), sock=sock
        )
        self._udp[family] = transport
        bound: Address = sock.getsockname()[:2]
        self.addresses.append(("UDP", bound))
        return bound

    async def listen_tcp(self, host: str, port: int) -> Address:
        """Bind a TCP listener; returns the bound address."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = await asyncio.start_server(
            self._serve_tcp, host, port, family=family, reuse_address=True
        )
        self._servers.append(server)
        bound: Address = server.sockets[0].getsockname()[:2]
        self.addresses.append(("TCP", bound))
        return bound

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._timer:
            self._timer.cancel()
        for udp in self._udp.values():
            udp.close()
        for writer in list(self._tcp.values()):
            writer.close()
        for server in self._servers:
            server.close()
            await server.wait_closed()

    # -- input ------------------------------------------------------------------------------

    def datagram(self, data: bytes, addr: Address, transport: str) -> None:
        """Feed one message to the endpoint, then flush its output; contained per datagram."""
        if self.endpoint is None:
            return
        try:
            self.endpoint.receive_datagram(data, addr, self.loop.time(), transport)
        except Exception:  # one peer's bytes must never take the server down
            log.exception("sip.datagram_failed", peer=_peer(addr), transport=transport)
        self.flush()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr: Address = writer.get_extra_info("peername")[:2]
        if len(self._tcp) >= self.max_tcp_connections:
            log.warning("sip.tcp_refused", peer=_peer(addr), reason="too many connections")
            writer.close()
            return
        self._tcp[addr] = writer
        framer = StreamFramer(self.max_message)
        try:
            while data := await reader.read(65536):
                for message in framer.feed(data):
                    self.datagram(message, addr, "TCP")
                if framer.take_pings():
                    writer.write(b"\r\n")  # RFC 5626 §3.5.1 pong
        except ParseError as exc:
            log.info("sip.tcp_framing_error", peer=_peer(addr), error=str(exc))
            if framer.oversize:
                self._refuse(framer.oversize, exc, addr)
        except ConnectionError as exc:
            log.info("sip.tcp_reset", peer=_peer(addr), error=str(exc))
        finally:
            if self._tcp.get(addr) is writer:
                del self._tcp[addr]
            writer.close()

    def _refuse(self, head: bytes, error: ParseError, addr: Address) -> None:
        """513 for a TCP message over the size limit (RFC 3261 §21.5.14), then the close."""
        if self.endpoint is None:
            return
        try:
            self.endpoint.refuse(head, error, addr, self.loop.time(), "TCP")
        except Exception:  # one peer's bytes must never take the server down
            log.exception("sip.datagram_failed", peer=_peer(addr), transport="TCP")
        self.flush()

    # -- output and timers ------------------------------------------------------------------

    def flush(self) -> None:
        """Let the call layer handle new events, send what the endpoint produced, re-arm.

        ``on_activity`` pumps every event, including those its handlers cause; handlers that
        ask for a flush meanwhile are deferred by the call layer to the end of its pump
        (``CallManager.flush``), so this never runs inside itself.
        """
        if self.endpoint is None:
            return
        self.on_activity()
        for out in self.endpoint.datagrams_to_send(self.loop.time()):
            self._send(out)
        self._arm_timer()

    def _send(self, out: _Outgoing) -> None:
        if out.transport == "TCP":
            writer = self._tcp.get(out.addr)
            if writer is None or writer.is_closing():
                log.info("sip.tcp_gone", peer=_peer(out.addr))
                return
            writer.write(out.data)
            return
        family = socket.AF_INET6 if ":" in out.addr[0] else socket.AF_INET
        udp = self._udp.get(family)
        if udp is None:
            log.warning("sip.no_route", peer=_peer(out.addr), reason="no socket of that family")
            return
        udp.sendto(out.data, out.addr)

    def _arm_timer(self) -> None:
        if self.endpoint is None:
            return
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._fire_timer)

    def _fire_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.endpoint is None:
            return
        try:
            self.endpoint.handle_timer(self.loop.time())
        except Exception:  # a timer bug must not stop the timer loop for every other call
            log.exception("sip.timer_failed")
        self.flush()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner.datagram(data, (addr[0], addr[1]), "UDP")

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that went away: nothing to do but note it.
        log.debug("sip.udp_error", error=str(exc))


def _peer(addr: Address) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
