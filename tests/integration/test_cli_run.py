"""``conf-server run`` as a user starts it: banner, clean stop, one-line failure on a taken port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXE = str(Path(sys.executable).with_name("conf-server"))


def _args(tmp_path: Path, sip: str) -> list[str]:
    return [
        EXE,
        "run",
        "--sip",
        sip,
        "--db",
        f"sqlite+aiosqlite:///{tmp_path}/c.db",
        "--rtp-ports",
        "32000-32099",
        "--api",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]


def test_run_demo_prints_how_to_dial_and_stops_on_sigint(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*_args(tmp_path, "127.0.0.1:0"), "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner = []
    try:
        for line in proc.stdout:
            banner.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(banner)
        assert "sip:+12125550100@127.0.0.1:" in text
        assert "1111 host" in text and "2468 (organizer)" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 0))
    port = squatter.getsockname()[1]
    try:
        proc = subprocess.run(
            _args(tmp_path, f"127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        squatter.close()
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"cannot listen for SIP on udp 127.0.0.1:{port}" in proc.stderr
    assert "in use" in proc.stderr.lower()
