"""Integration fixtures: a real server on 127.0.0.1 (port 0), a real SQLite file, real peers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from conf_server.config import load
from conf_server.runtime.server import Server

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE / "sipp"
PHONE = HERE / "phone.py"
DEMO_DID = "+12125550100"

pytestmark = pytest.mark.integration

MakeServer = Callable[..., Awaitable[Server]]


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 right now (for peers that need a fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def logs() -> Any:
    """Every structured log line the server writes during the test, as dicts."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[MakeServer]:
    """Start servers with the demo provisioned; all are stopped at the end of the test."""
    servers: list[Server] = []

    async def make(*, demo: bool = True, **overrides: Any) -> Server:
        settings = load(
            None,
            {
                "sip.listen": "127.0.0.1:0",
                "db.url": f"sqlite+aiosqlite:///{tmp_path}/conf.db",
                "rtp.ports": "31000-31999",
                "api.listen": "127.0.0.1:0",
                **overrides,
            },
        )
        server = Server(settings)
        await server.start(demo=demo)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


def sip_port(server: Server, transport: str = "UDP") -> int:
    """The bound SIP port of a running server."""
    return next(addr[1] for t, addr in server.sip_addresses if t == transport)


@dataclass
class SippResult:
    """How a sipp run ended."""

    returncode: int
    stdout: str
    errors: str


async def run_sipp(
    scenario: str,
    server: Server,
    workdir: Path,
    *,
    service: str = DEMO_DID,
    timeout: float = 40.0,
    transport: str = "u1",
    host: str = "127.0.0.1",
) -> SippResult:
    """Run one sipp call of ``scenario`` against the server; bounded in time."""
    port = sip_port(server, "TCP" if transport.startswith("t") else "UDP")
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd = [
        "sipp",
        target,
        *("-sf", str(SIPP_DIR / f"{scenario}.xml")),
        *("-s", service),
        *("-m", "1", "-l", "1"),
        *("-i", host, "-p", str(free_udp_port()), "-mp", str(free_udp_port())),
        *("-t", transport),
        *("-timeout", f"{int(timeout)}s", "-timeout_error"),
        "-nostdin",
        "-trace_err",
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    errors = "\n".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    assert proc.returncode is not None
    return SippResult(proc.returncode, out.decode(errors="replace"), errors)


async def run_phone(*args: str, timeout: float = 40.0) -> dict[str, Any]:
    """Run the pjsua2 phone (tests/integration/phone.py) and return its JSON result."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PHONE),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"phone failed: {err.decode(errors='replace')[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The captured log lines with event ``name``."""
    return [line for line in logs if line.get("event") == name]
