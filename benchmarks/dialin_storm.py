"""Dial-in storm: sipp places N calls within a few seconds that enter access codes as RFC 2833
events (the pcaps shipped in /usr/share/sip-tester) and stay; every call must join the right
room with the right role, read from the server's JSON log.

The server is the real ``conf-server run`` process with the demo set-up plus the rooms this
script provisions (``conf-server provision``). The shipped pcaps carry one fixed RTP timestamp
per key, and RFC 4733 identifies a key press by its timestamp, so a code with a repeated key
(the demo's 1111) would read as one press: the storm's rooms use codes of distinct keys. sipp
has no per-call pcap names, so one sipp runs per code (``-key d1..d5``), all at once.

Figures: join latency as the server logs it on ``call.joined`` — ``since_last_key_ms`` is the
time from the ``#`` to the caller being in the meeting, i.e. 200 OK → joined with the prompt
and the scripted key timing taken out; ``since_answer_ms`` is the whole 200 OK → joined — and
the server's CPU (its process only, from /proc) over the storm. Last line:

    dial-in storm: <J>/<N> joined correctly, p99 join <X> ms

Usage: python benchmarks/dialin_storm.py [--calls 200] [--within 10] [--hold 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(
    0, str(HERE.parent)
)  # run as a script: the shared helpers are benchmarks.serverproc

from benchmarks.serverproc import (  # noqa: E402 (needs the path above)
    cpu_seconds,
    free_port,
    percentile,
    start_server,
)

SCENARIO = HERE / "sipp" / "dialin_storm.xml"
PCAPS = Path("/usr/share/sip-tester")
DID = "+12125550100"
KEY_FILES = {**{d: f"dtmf_2833_{d}.pcap" for d in "0123456789"}, "#": "dtmf_2833_pound.pcap"}

# Two rooms, three roles each; every code has four distinct keys.
STORM_ROOMS = """
[[rooms]]
meeting_number = 300001
did_group = "demo"
description = "dial-in storm A"
keychain = [
    { code = "1470", role = "host" },
    { code = "2581", role = "participant" },
    { code = "3692", role = "listener" },
]

[[rooms]]
meeting_number = 300002
did_group = "demo"
description = "dial-in storm B"
keychain = [
    { code = "4703", role = "host" },
    { code = "5814", role = "participant" },
    { code = "6925", role = "listener" },
]
"""
# code → (room, role, share of the calls)
CODES = {
    "1470": ("300001", "host", 0.05),
    "2581": ("300001", "participant", 0.30),
    "3692": ("300001", "listener", 0.15),
    "4703": ("300002", "host", 0.05),
    "5814": ("300002", "participant", 0.30),
    "6925": ("300002", "listener", 0.15),
}


@dataclass
class Group:
    code: str
    room: str
    role: str
    calls: int
    proc: subprocess.Popen[bytes] | None = None


def start_storm_server(work: Path, port: int) -> subprocess.Popen[bytes]:
    """The server with the demo and the storm's rooms (codes of four distinct keys)."""
    rooms = work / "storm.toml"
    rooms.write_text(STORM_ROOMS)
    return start_server(
        work,
        port,
        provision=(HERE.parent / "config" / "demo.toml", rooms),
        log_level="info",
        rtp_ports="40000-44999",
        demo=False,
    )


def split(calls: int) -> list[Group]:
    groups = [
        Group(code, room, role, round(calls * share)) for code, (room, role, share) in CODES.items()
    ]
    groups[1].calls += calls - sum(g.calls for g in groups)  # rounding goes to a participant
    return groups


def launch(group: Group, port: int, args: argparse.Namespace, work: Path) -> None:
    keys = [*group.code, "#"]
    key_args: list[str] = []
    for i, key in enumerate(keys, 1):
        key_args += ["-key", f"d{i}", str(PCAPS / KEY_FILES[key])]
    rate = group.calls / args.within
    out = work / group.code
    out.mkdir()
    group.proc = subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{port}",
            *("-sf", str(SCENARIO), "-s", DID, *key_args),
            *("-r", f"{max(rate, 0.1):.3f}", "-rp", "1000", "-m", str(group.calls)),
            *("-l", str(group.calls), "-d", str(args.hold * 1000)),
            *("-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port())),
            *("-timeout", f"{args.within + args.hold + 60}s", "-nostdin", "-trace_err"),
        ],
        cwd=out,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def read_log(path: Path) -> list[dict[str, object]]:
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    return lines


def verdict(
    groups: list[Group], log: list[dict[str, object]]
) -> tuple[int, list[float], list[float]]:
    """Calls joined in the right room with the right role; latencies of those joins."""
    expected = {str(g.proc.pid): g for g in groups if g.proc is not None}
    correct, after_key, after_answer = 0, list[float](), list[float]()
    for line in log:
        if line.get("event") != "call.joined":
            continue
        pid = str(line.get("call_id", "")).split("@")[0].split("-")[-1]
        group = expected.get(pid)
        if group is not None and (line.get("meeting"), line.get("role")) == (
            group.room,
            group.role,
        ):
            correct += 1
            after_key.append(float(line["since_last_key_ms"]))  # type: ignore[arg-type]
            after_answer.append(float(line["since_answer_ms"]))  # type: ignore[arg-type]
    return correct, sorted(after_key), sorted(after_answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--within", type=float, default=10.0, help="seconds to place them in")
    parser.add_argument("--hold", type=int, default=30, help="seconds each call stays")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp not found: apt-get install sip-tester")
    work = Path(tempfile.mkdtemp(prefix="dialin-storm-"))
    port = free_port()
    server = start_storm_server(work, port)
    groups = split(args.calls)
    try:
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        for group in groups:
            launch(group, port, args, work)
        for group in groups:
            assert group.proc is not None
            group.proc.wait(timeout=args.within + args.hold + 120)
        cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = read_log(work / "server.log")
    correct, after_key, after_answer = verdict(groups, log)
    failed = sum(1 for g in groups if g.proc is not None and g.proc.returncode != 0)
    print(
        f"calls placed: {args.calls} within {args.within:.0f} s by {len(groups)} sipp processes "
        f"({failed} reported failures), each staying {args.hold} s"
    )
    print(
        f"joins logged: {sum(1 for x in log if x.get('event') == 'call.joined')}, "
        f"right room and role: {correct}"
    )
    key50, key99, key_max = (percentile(after_key, q) for q in (50, 99, 100))
    print(f"'#' -> joined: p50 {key50:.1f} ms, p99 {key99:.1f} ms, max {key_max:.1f} ms")
    ok50, ok99 = (percentile(after_answer, q) for q in (50, 99))
    print(f"200 OK -> joined (incl. 2.2 s of scripted keys): p50 {ok50:.0f} ms, p99 {ok99:.0f} ms")
    print(
        f"server CPU over the storm: {100.0 * (cpu1 - cpu0) / (t1 - t0):.0f} % of one core "
        f"({t1 - t0:.0f} s)"
    )
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"dial-in storm: {correct}/{args.calls} joined correctly, "
        f"p99 join {percentile(after_key, 99):.1f} ms"
    )
    return 0 if correct == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
