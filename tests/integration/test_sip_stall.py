"""A live server under hostile SIP input keeps answering and keeps its media tick on time.

Before the size limits and the linear-time parsers, one 64 KB UDP datagram stopped the server
for about 29 s: OPTIONS went unanswered and the media engine skipped 726 ticks. Here a running
server receives a burst of adversarial datagrams (every shape of tests/sip/test_limits.py, at
60 KB and just under the 16 KB limit) while a second peer pings it with OPTIONS; every ping is
answered promptly and the engine skips no tick. Over TCP, a message over the limit is answered
513 and only that connection is closed.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from conf_server.runtime.server import Server
from sip.message import Response
from tests.integration.conftest import MakeServer, sip_port
from tests.sip.hostile import CASES, datagram

pytestmark = pytest.mark.integration

PINGS = 40
PING_EVERY = 0.05  # s
FLOOD_RATE = 2_000  # datagrams per second


def _options(n: int, port: int) -> bytes:
    return (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKping{n};rport\r\n"
        "From: <sip:pinger@127.0.0.1>;tag=p1\r\nTo: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: ping-{n}\r\nCSeq: {n + 1} OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def _flood(port: int, datagrams: list[bytes], stop: asyncio.Event) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sent = 0
    try:
        while not stop.is_set():
            for data in datagrams:
                if stop.is_set():
                    break
                sock.sendto(data, ("127.0.0.1", port))
                sent += 1
                if sent % 20 == 0:
                    await asyncio.sleep(20 / FLOOD_RATE)
    finally:
        sock.close()
    return sent


async def _ping(port: int) -> list[float]:
    """Round-trip seconds of each OPTIONS (inf when unanswered within 2 s)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    times: list[float] = []
    try:
        for n in range(PINGS):
            started = time.perf_counter()
            await loop.sock_sendto(sock, _options(n, port), ("127.0.0.1", port))
            try:
                while True:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2.0)
                    if Response.parse(reply).call_id == f"ping-{n}":
                        break
                times.append(time.perf_counter() - started)
            except TimeoutError:
                times.append(float("inf"))
            await asyncio.sleep(PING_EVERY)
    finally:
        sock.close()
    return times


async def test_hostile_flood_does_not_stall_signalling_or_media(make_server: MakeServer) -> None:
    server: Server = await make_server()
    port = sip_port(server)
    hostile = [datagram(kind, shape, size) for kind, shape in CASES for size in (60_000, 16_200)]
    assert server.engine is not None
    stats = server.engine.stats
    skipped_before, ticks_before = stats.skipped, stats.ticks
    stop = asyncio.Event()
    flood = asyncio.create_task(_flood(port, hostile, stop))
    times = await _ping(port)
    stop.set()
    sent = await flood
    assert sent >= 1_000, "the flood must actually run beside the pings"
    assert max(times) < 0.5, f"OPTIONS round trips (s): {sorted(times)[-5:]}"
    assert stats.ticks - ticks_before >= 50  # the engine ran throughout
    assert stats.skipped == skipped_before, "the media tick fell over 100 ms behind"


async def test_tcp_message_over_the_limit_gets_513_and_its_connection_closes(
    make_server: MakeServer,
) -> None:
    server = await make_server(**{"sip.max_message_size": 4_096})
    port = sip_port(server, "TCP")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = _options(1, port).replace(b"Content-Length: 0", b"Content-Length: 100000")
    writer.write(head + b"x" * 1_000)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5.0)  # until the server closes
    writer.close()
    answer = Response.parse(data)
    assert (answer.status, answer.reason) == (513, "Message Too Large")
    # The server still serves a new connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_options(2, port))
    await writer.drain()
    reply = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
    writer.close()
    assert Response.parse(reply).status == 200
