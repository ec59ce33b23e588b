"""SIP calls against the running server with real peers: sipp scenarios and a pjsua2 phone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    DEMO_DID,
    MakeServer,
    events,
    run_phone,
    run_sipp,
    sip_port,
)

pytestmark = pytest.mark.integration


def _ended(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return events(logs, "call.ended")


async def test_caller_hangs_up(make_server: MakeServer, tmp_path: Path, logs: Any) -> None:
    server = await make_server()
    result = await run_sipp("uac_caller_bye", server, tmp_path)
    assert result.returncode == 0, result.stdout + result.errors
    (ended,) = _ended(logs)
    assert ended["reason"] == "remote_bye"
    assert ended["answered"] is True
    assert ended["did"] == DEMO_DID
    assert 0.8 <= ended["duration"] < 5.0
    assert not server.calls or not server.calls.calls


async def test_server_hangs_up(make_server: MakeServer, tmp_path: Path, logs: Any) -> None:
    server = await make_server()
    assert server.calls is not None
    sipp = asyncio.ensure_future(run_sipp("uac_server_bye", server, tmp_path))
    for _ in range(100):
        answered = [c for c in server.calls.calls.values() if c.answered is not None]
        if answered:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("sipp's call was never answered")
    await asyncio.sleep(0.3)  # let the ACK arrive so our BYE is not held back
    server.calls.hangup(answered[0])
    result = await sipp
    assert result.returncode == 0, result.stdout + result.errors
    (ended,) = _ended(logs)
    assert ended["reason"] == "local_bye"


async def test_cancel_before_answer_gets_487(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server(**{"sip.ring_time": 3.0})
    result = await run_sipp("uac_cancel", server, tmp_path)
    assert result.returncode == 0, result.stdout + result.errors
    (ended,) = _ended(logs)
    assert ended["reason"] == "cancelled"
    assert ended["answered"] is False


async def test_retransmitted_invite_is_one_call(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server(**{"sip.ring_time": 0.5})
    result = await run_sipp("uac_invite_retrans", server, tmp_path)
    assert result.returncode == 0, result.stdout + result.errors
    assert len(events(logs, "call.answered")) == 1
    assert len(_ended(logs)) == 1


async def test_lost_ack_retransmits_then_bye(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server(**{"sip.t1": 0.05})  # 64*T1 = 3.2 s
    result = await run_sipp("uac_lost_ack", server, tmp_path)
    assert result.returncode == 0, result.stdout + result.errors
    (ended,) = _ended(logs)
    assert ended["reason"] == "ack_timeout"
    assert 3.0 <= ended["duration"] < 8.0


async def test_reinvite_hold_and_resume(make_server: MakeServer, tmp_path: Path, logs: Any) -> None:
    server = await make_server()
    result = await run_sipp("uac_hold_resume", server, tmp_path)
    assert result.returncode == 0, result.stdout + result.errors
    names = [line["event"] for line in logs if line["event"] in ("call.held", "call.resumed")]
    assert names == ["call.held", "call.resumed"]
    assert _ended(logs)[0]["reason"] == "remote_bye"


async def test_options_keepalive(make_server: MakeServer, tmp_path: Path) -> None:
    server = await make_server()
    result = await run_sipp("uac_options", server, tmp_path)
    assert result.returncode == 0, result.stdout + result.errors


async def test_unknown_did_is_404(make_server: MakeServer, tmp_path: Path, logs: Any) -> None:
    server = await make_server()
    result = await run_sipp("uac_unknown_did", server, tmp_path, service="+12125550199")
    assert result.returncode == 0, result.stdout + result.errors
    (ended,) = _ended(logs)
    assert ended["reason"] == "rejected_404"


async def test_basic_call_over_tcp(make_server: MakeServer, tmp_path: Path, logs: Any) -> None:
    server = await make_server()
    result = await run_sipp("uac_caller_bye", server, tmp_path, transport="t1")
    assert result.returncode == 0, result.stdout + result.errors
    assert _ended(logs)[0]["reason"] == "remote_bye"


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_basic_call_over_ipv6(
    make_server: MakeServer, tmp_path: Path, logs: Any, transport: str
) -> None:
    server = await make_server(**{"sip.listen": "[::1]:0"})
    result = await run_sipp("uac_caller_bye", server, tmp_path, transport=transport, host="::1")
    assert result.returncode == 0, result.stdout + result.errors
    (answered,) = events(logs, "call.answered")
    assert answered["remote_rtp"].startswith("[::1]:")
    assert answered["peer"].startswith("[::1]:")
    assert _ended(logs)[0]["reason"] == "remote_bye"


async def test_pjsua2_phone_calls_the_demo_did(make_server: MakeServer, logs: Any) -> None:
    server = await make_server()
    target = f"sip:{DEMO_DID}@127.0.0.1:{sip_port(server)}"
    result = await run_phone("--target", target, "--talk", "1.5")
    assert result["answered"] is True
    assert result["media_active"] is True
    assert result["hung_up_by"] == "phone"
    await asyncio.sleep(0.2)
    (ended,) = _ended(logs)
    assert ended["reason"] == "remote_bye"
    assert ended["caller"] == "+15557654321"
    assert 1.0 <= ended["duration"] < 5.0


async def test_pjsua2_unknown_number_is_refused(make_server: MakeServer) -> None:
    server = await make_server()
    target = f"sip:+12125550199@127.0.0.1:{sip_port(server)}"
    result = await run_phone("--target", target, "--answer-timeout", "5")
    assert result["answered"] is False
    assert result["status"] == 404


async def test_port_zero_survives_a_tcp_squatter(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UDP picks the port and TCP must take the same number: a taken TCP port means retry."""
    import socket

    from conf_server.runtime.sip_transport import SipTransport

    squatters: list[socket.socket] = []
    real_listen_udp = SipTransport.listen_udp

    async def listen_udp_then_squat(self: SipTransport, host: str, port: int) -> tuple[str, int]:
        bound = await real_listen_udp(self, host, port)
        if not squatters:  # the first attempt's TCP port is taken by someone else
            squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            squatter.bind(bound)
            squatter.listen()
            squatters.append(squatter)
        return bound

    monkeypatch.setattr(SipTransport, "listen_udp", listen_udp_then_squat)
    try:
        server = await make_server(demo=False)
        udp, tcp = sip_port(server, "UDP"), sip_port(server, "TCP")
        assert udp == tcp
        assert udp != squatters[0].getsockname()[1]
    finally:
        for squatter in squatters:
            squatter.close()
