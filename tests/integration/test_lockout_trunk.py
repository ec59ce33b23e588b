"""Guessing protection against a trunk's shared caller id, end to end with sipp callers.

A PBX trunk (a ``trusted`` source: loopback, by default) sends every call with its main number.
One caller on it guessing codes must be stopped without locking every other caller of that trunk
out (``conf_server.domain.lockout``, "Which identities are keys"); a unique caller from an
untrusted source is still locked out.

The callers are sipp scenarios written per call (caller id, codes, then hold or wait for the
server's BYE); keys go as SIP INFO ``application/dtmf-relay``, one request per key. Failures are
lowered to 3 so that a single guessing call would have locked the number under the old rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from conf_server.runtime.server import Server
from tests.integration.conftest import DEMO_DID, MakeServer, events, free_udp_port, sip_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MAIN_NUMBER = "+15551230000"  # the trunk's caller id on every call
RIGHT = "2222#"  # participant code of demo room 100001
WRONG = ("1234#", "1235#", "1236#")

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: trunk <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:trunk@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 1 IN IP[media_ip_type] [media_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: trunk <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:trunk@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="700"/>
"""

_IN_DIALOG = """  <send retrans="500">
    <![CDATA[
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: trunk <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:trunk@[local_ip]:[local_port]>
      Max-Forwards: 70
{body}
    ]]>
  </send>
  <recv response="200"/>
"""

_INFO_BODY = """      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160"""

_NO_BODY = """      Content-Length: 0
"""

_AWAIT_BYE = """  <recv request="BYE" timeout="20000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def scenario(caller: str, codes: Sequence[str], *, hold_ms: int | None) -> str:
    """A call from ``caller`` that enters ``codes`` (a pause after each), then either holds
    ``hold_ms`` and sends BYE, or (``None``) waits for the server's BYE."""
    parts = [_HEAD.format(name="trunk_caller", caller=caller)]
    cseq = 2
    for code in codes:
        for key in code:
            body = _INFO_BODY.format(key=key)
            parts.append(_IN_DIALOG.format(method="INFO", caller=caller, cseq=cseq, body=body))
            cseq += 1
        parts.append('  <pause milliseconds="400"/>\n')  # the store looks the code up
    if hold_ms is None:
        parts.append(_AWAIT_BYE)
    else:
        parts.append(f'  <pause milliseconds="{hold_ms}"/>\n')
        parts.append(_IN_DIALOG.format(method="BYE", caller=caller, cseq=cseq, body=_NO_BODY))
    parts.append("</scenario>\n")
    return "".join(parts)


async def call(
    server: Server,
    workdir: Path,
    caller: str,
    codes: Sequence[str],
    *,
    hold_ms: int | None = None,
    source: str = "127.0.0.1",
) -> str:
    """One sipp call from ``source``; returns sipp's output, asserting the scenario passed."""
    workdir.mkdir()
    xml = workdir / "scenario.xml"
    xml.write_text(scenario(caller, codes, hold_ms=hold_ms))
    cmd = [
        "sipp",
        f"127.0.0.1:{sip_port(server)}",
        *("-sf", str(xml), "-s", DEMO_DID, "-m", "1", "-l", "1"),
        *("-i", source, "-p", str(free_udp_port()), "-mp", str(free_udp_port())),
        *("-timeout", "30s", "-timeout_error", "-nostdin", "-trace_err"),
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 40.0)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    errors = "\n".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    assert proc.returncode == 0, f"sipp {workdir.name} failed:\n{errors[-2000:]}"
    return out.decode(errors="replace")


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) for a condition on the captured logs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        await asyncio.sleep(0.05)


def security_events(logs: list[dict[str, Any]]) -> list[str]:
    return [str(line["event"]) for line in logs if str(line.get("event")).startswith("security.")]


async def test_one_guesser_on_a_trunks_main_number_does_not_lock_out_the_trunk(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    overrides = {"security.failures": 3, "security.did_failures": 6}
    server = await make_server(**overrides)

    # A colleague on the trunk is in a meeting when the guesser calls: the number is shared.
    member = asyncio.ensure_future(
        call(server, tmp_path / "member", MAIN_NUMBER, [RIGHT], hold_ms=3000)
    )
    await until(lambda: len(events(logs, "call.joined")) == 1)
    # The guesser: three wrong codes, the IVR ends the call; it calls again, same again.
    await call(server, tmp_path / "guess-1", MAIN_NUMBER, WRONG)
    await member
    await call(server, tmp_path / "guess-2", MAIN_NUMBER, WRONG)
    # Afterwards the trunk's other callers, same caller id, still get in.
    await asyncio.gather(
        *(call(server, tmp_path / f"after-{n}", MAIN_NUMBER, [RIGHT], hold_ms=500) for n in (1, 2))
    )

    joined = events(logs, "call.joined")
    assert [(line["caller"], line["meeting"]) for line in joined] == [(MAIN_NUMBER, "100001")] * 3
    assert len(events(logs, "ivr.code_rejected")) == 6
    hangups = [line["reason"] for line in events(logs, "ivr.hangup")]
    assert hangups == ["too_many_attempts", "too_many_attempts"]
    # No lock, no refusal: the guesser's calls ended by the IVR; the DID alert still fires.
    assert security_events(logs) == [
        "security.caller_shared",
        "security.attempts_exhausted",
        "security.did_under_attack",
        "security.attempts_exhausted",
    ]
    (shared,) = events(logs, "security.caller_shared")
    assert shared["caller"] == MAIN_NUMBER and shared["shared_for"] == 86400.0
    assert events(logs, "security.did_under_attack")[0]["did"] == DEMO_DID


async def test_a_unique_caller_from_an_untrusted_source_is_still_locked_out(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    # Loopback is not trusted here: it plays the part of callers from the internet.
    server = await make_server(**{"security.failures": 3, "security.trusted": ["192.0.2.0/24"]})
    guesser = "+15550007777"
    await call(server, tmp_path / "guess", guesser, WRONG, source="127.0.0.2")
    started = events(logs, "security.lockout_started")
    # One line per lock: the source address, then the caller id (bound on every line).
    assert [line.get("ip") for line in started] == ["127.0.0.2", None]
    assert all(line["caller"] == guesser and line["cooling_off"] == 900.0 for line in started)
    # The same number from another address is refused before it is asked for a code.
    await call(server, tmp_path / "again", guesser, [], source="127.0.0.3")
    (refused,) = events(logs, "security.call_refused")
    assert refused["scope"] == "caller" and refused["caller"] == guesser
    # Another caller from that other address gets in.
    await call(server, tmp_path / "other", "+15550008888", [RIGHT], hold_ms=500, source="127.0.0.3")
    assert [line["caller"] for line in events(logs, "call.joined")] == ["+15550008888"]
