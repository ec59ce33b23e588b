"""RFC 4475 / RFC 5118 torture messages replayed over real UDP to the running server.

Each file of ``tests/data/sip-torture`` goes out as one datagram to a fresh server (several files
share a branch and sent-by, so one server would rightly take a later one for a retransmission of
an earlier transaction, RFC 3261 §17.2.3). The expected answer comes from
``tests/data/sip_torture.toml`` (the corpus README table as data). Afterwards the server must
still answer OPTIONS.
"""

from __future__ import annotations

import asyncio
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sip.message import Response
from tests.integration.conftest import MakeServer, sip_port

pytestmark = pytest.mark.integration

TABLE = Path(__file__).resolve().parents[1] / "data" / "sip_torture.toml"
ENTRIES: list[dict[str, Any]] = tomllib.loads(TABLE.read_text())["message"]


def _status(datagram: bytes) -> int | None:
    if not datagram.startswith(b"SIP/2.0 "):
        return None
    return int(datagram[8:11])


async def _replay(data: bytes, port: int, wait: float, settle: float = 0.1) -> list[bytes]:
    """Send one datagram; collect answers for ``wait`` s, or ``settle`` s past a final one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    try:
        await loop.sock_sendto(sock, data, ("127.0.0.1", port))
        end = loop.time() + wait
        while (left := end - loop.time()) > 0:
            try:
                got.append(await asyncio.wait_for(loop.sock_recv(sock, 65535), left))
            except TimeoutError:
                break
            if (_status(got[-1]) or 0) >= 200:  # a final answer: listen briefly for a second one
                end = min(end, loop.time() + settle)
    finally:
        sock.close()
    return got


def _problems(entry: dict[str, Any], got: list[bytes]) -> list[str]:
    """What is wrong with the datagrams the server sent back for one torture entry."""
    name = entry["file"]
    if entry["expect"] == "drop":
        return [f"{name}: expected silence, got {got[0][:40]!r}"] if got else []
    finals = [d for d in got if (_status(d) or 0) >= 200]
    if len(finals) != 1:
        return [f"{name}: {len(finals)} final responses"]
    answer = finals[0]
    problems = []
    allowed = {entry["expect"], *entry.get("accept", [])}
    if str(_status(answer)) not in allowed:
        problems.append(f"{name}: got {_status(answer)}, want {sorted(allowed)}")
    problems += [
        f"{name}: answer lacks {header}"
        for header in entry.get("headers", [])
        if f"\r\n{header}:".lower().encode() not in answer.lower()
    ]
    if entry.get("via_count", 0):  # other answers may echo a malformed Via, as they must
        vias = len(Response.parse(answer).vias)
        if vias != entry["via_count"]:
            problems.append(f"{name}: {vias} Via values, want {entry['via_count']}")
    return problems


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
async def test_torture_message_gets_its_answer(
    make_server: MakeServer, torture_dir: Path, entry: dict[str, Any]
) -> None:
    server = await make_server(demo=False)
    port = sip_port(server)
    got = await _replay((torture_dir / entry["file"]).read_bytes(), port, 0.5)
    assert not _problems(entry, got)
    options = (
        b"OPTIONS sip:conf@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-after-torture;rport\r\n"
        b"From: <sip:check@127.0.0.1>;tag=1\r\nTo: <sip:conf@127.0.0.1>\r\n"
        b"Call-ID: after-torture\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    (answer,) = await _replay(options, port, 0.5)
    assert _status(answer) == 200
