"""What the benchmark scripts share: a real ``conf-server run`` process and its measurements.

``start_server`` provisions the given files into a fresh SQLite database, starts the server
with JSON logs in ``work/server.log`` and returns once it prints its banner; ``cpu_seconds``
reads one process's CPU time from /proc, so a figure is the server's alone, never the load
generator's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

EXE = Path(sys.executable).with_name("conf-server")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A UDP port free on 127.0.0.1 now (sipp and the server need fixed numbers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def start_server(
    work: Path,
    sip_port: int,
    *,
    provision: Sequence[Path] = (),
    api_port: int = 0,
    log_level: str = "warning",
    rtp_ports: str = "20000-39999",
    demo: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``conf-server run`` on 127.0.0.1 with a fresh database in ``work``."""
    db = f"sqlite+aiosqlite:///{work}/bench.db"
    for setup in provision:
        subprocess.run(
            [str(EXE), "provision", str(setup), "--db", db], check=True, capture_output=True
        )
    proc = subprocess.Popen(
        [
            *(str(EXE), "run", *(["--demo"] if demo else [])),
            *("--sip", f"127.0.0.1:{sip_port}", "--db", db, "--api", f"127.0.0.1:{api_port}"),
            *("--rtp-ports", rtp_ports, "--log-format", "json", "--log-level", log_level),
        ],
        stdout=subprocess.PIPE,
        stderr=(work / "server.log").open("wb"),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or b"Press Ctrl-C" in line:
            break
    if proc.poll() is not None:
        raise SystemExit(f"server did not start: see {work / 'server.log'}")
    return proc
