"""What one hostile SIP datagram costs, and the media tick under a flood of them.

Issue 19's benchmark, in two parts:

1. *per datagram* (in process, one core): every adversarial shape of ``tests/sip/hostile.py``
   (20 header kinds × 13 shapes) at 64 KB and just under the 16 KB limit, through
   ``SipEndpoint.receive_datagram`` and the answer it queues; best of ``--repeat`` runs per
   input, the worst input reported. Once with the limits as shipped (what the server pays) and
   once with every limit raised to 64 KB (the parsers alone on 64 KB, which shows they are
   linear rather than merely cut short).
2. *flood* (the real ``conf-server run`` process): sipp brings ``--legs`` callers into meetings
   (the dial-in storm's scenario: each keys an access code and stays joined, streaming RTP);
   then for ``--seconds`` a separate process sends ``--rate`` malformed datagrams a second
   (the same shapes, 60 KB and 16 KB, from 127.0.0.1: a trusted source, so none is banned and
   every one is parsed and answered). Tick figures come from the engine's own 10 s
   ``engine.stats`` lines inside the window; a window of the same length before the flood is
   the baseline.

Last line::

    sip stall: worst <X> ms per datagram, flood tick p99 <Y> ms max <Z> ms

    .venv/bin/python benchmarks/bench_sip_stall.py [--legs 500] [--seconds 60] [--rate 2000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script: reuse the storm's and API bench's set-up

from benchmarks.bench_api import start_api_server, tick_figures, wait_joined  # noqa: E402
from benchmarks.dialin_storm import Group, launch, read_log, split  # noqa: E402
from benchmarks.serverproc import cpu_seconds, free_port  # noqa: E402
from sip.endpoint import EndpointConfig, SipEndpoint  # noqa: E402
from sip.ids import SecretIds  # noqa: E402
from sip.limits import Limits  # noqa: E402
from tests.sip.hostile import CASES, WIDE, datagram  # noqa: E402

SIZE_64K = 65_000  # the largest that fits one IPv4 UDP datagram with room to spare


def handle_seconds(data: bytes, limits: Limits, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        endpoint = SipEndpoint(EndpointConfig(limits=limits), SecretIds())
        started = time.perf_counter()
        endpoint.receive_datagram(data, ("198.51.100.7", 40000), 0.0)
        endpoint.datagrams_to_send(0.0)
        best = min(best, time.perf_counter() - started)
    return best


def per_datagram(repeat: int) -> tuple[float, str]:
    """Print the worst inputs for both limit sets; return the as-shipped worst (s) and its name."""
    worst_shipped = (0.0, "")
    for title, limits, sizes in (
        ("as shipped (16 KB limit)", Limits(), (SIZE_64K, Limits().max_message - 100)),
        ("every limit raised to 64 KB", WIDE, (SIZE_64K,)),
    ):
        timed = sorted(
            (
                (handle_seconds(datagram(kind, shape, size), limits, repeat), kind, shape, size)
                for kind, shape in CASES
                for size in sizes
            ),
            reverse=True,
        )
        median = timed[len(timed) // 2][0]
        print(f"per datagram, {title}: {len(timed)} inputs, median {median * 1e3:.3f} ms")
        for seconds, kind, shape, size in timed[:3]:
            print(f"  {seconds * 1e3:7.3f} ms  {kind:20s} {shape!r:40.40s} {size} octets")
        if limits == Limits():
            top = timed[0]
            worst_shipped = (top[0], f"{top[1]} {top[2]!r} at {top[3]}")
    return worst_shipped


def flood_process(port: int, rate: float, seconds: float) -> subprocess.Popen[bytes]:
    code = (
        "import socket, sys, time\n"
        f"sys.path.insert(0, {str(HERE.parent)!r})\n"
        "from tests.sip.hostile import CASES, datagram\n"
        "data = [datagram(k, s, n) for k, s in CASES for n in (60000, 16200)]\n"
        "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"rate, end = {rate}, time.monotonic() + {seconds}\n"
        "start, sent = time.monotonic(), 0\n"
        "while time.monotonic() < end:\n"
        f"    sock.sendto(data[sent % len(data)], ('127.0.0.1', {port}))\n"
        "    sent += 1\n"
        "    ahead = start + sent / rate - time.monotonic()\n"
        "    if ahead > 0: time.sleep(ahead)\n"
        "print(sent, round(sent / (time.monotonic() - start)))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def options_rtt(port: int) -> float:
    """One OPTIONS round trip in ms (inf when unanswered in 2 s)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    me = sock.getsockname()[1]
    ping = (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{time.monotonic_ns()};rport\r\n"
        "From: <sip:b@127.0.0.1>;tag=b\r\nTo: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: ping{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    try:
        sock.sendto(ping, ("127.0.0.1", port))
        sock.recv(65535)
        return (time.perf_counter() - started) * 1e3
    except TimeoutError:
        return float("inf")
    finally:
        sock.close()


@dataclass
class Window:
    """One measured stretch of the server's life."""

    span: tuple[float, float]  # UNIX seconds
    cpu: float  # % of one core
    rtts: list[float]  # OPTIONS round trips, ms, sorted
    sent: str  # the flooder's "sent rate" line, "" without a flood
    figures: dict[str, float] = field(default_factory=dict)  # the engine's, from its log


def window(args: argparse.Namespace, server_pid: int, sip: int, flood: bool) -> Window:
    cpu0, t0 = cpu_seconds(server_pid), time.time()
    proc = flood_process(sip, args.rate, args.seconds) if flood else None
    rtts: list[float] = []
    while time.time() < t0 + args.seconds:
        rtts.append(options_rtt(sip))
        time.sleep(0.5)
    sent = ""
    if proc is not None:
        out, _ = proc.communicate(timeout=args.seconds + 30)
        sent = out.decode().strip()
    cpu1, t1 = cpu_seconds(server_pid), time.time()
    return Window((t0, t1), 100.0 * (cpu1 - cpu0) / (t1 - t0), sorted(rtts), sent)


def flood_run(args: argparse.Namespace) -> tuple[int, Window, Window]:
    work = Path(tempfile.mkdtemp(prefix="bench-stall-"))
    sip, api = free_port(), free_port()
    server = start_api_server(work, sip, api)
    storm = argparse.Namespace(within=args.within, hold=int(args.within + 2 * args.seconds + 90))
    groups: list[Group] = split(args.legs)
    try:
        for group in groups:
            launch(group, sip, storm, work)
        joined = wait_joined(api, args.legs, args.within + 30)
        time.sleep(3.0)  # the last joins' prompts end
        quiet = window(args, server.pid, sip, flood=False)
        loud = window(args, server.pid, sip, flood=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        for group in groups:
            if group.proc is not None:
                group.proc.kill()
                group.proc.wait()
    log = read_log(work / "server.log")
    for measured in (quiet, loud):
        measured.figures = tick_figures(log, measured.span)
    return joined, quiet, loud


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--within", type=float, default=20.0, help="seconds to bring legs in")
    parser.add_argument("--repeat", type=int, default=5, help="runs per input, best kept")
    parser.add_argument("--skip-flood", action="store_true", help="only the per-datagram part")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    worst, which = per_datagram(args.repeat)
    print(f"worst as shipped: {worst * 1e3:.3f} ms ({which})")
    if args.skip_flood:
        print(f"sip stall: worst {worst * 1e3:.2f} ms per datagram, flood not run")
        return 0
    joined, quiet, loud = flood_run(args)
    print(f"legs: {args.legs} asked, {joined} joined")
    for name, measured in (("quiet", quiet), ("loud", loud)):
        figures, rtts = measured.figures, measured.rtts
        what = f"flood {measured.sent} (sent, per s)" if measured.sent else "no flood"
        print(
            f"  {name}: {what}; server CPU {measured.cpu:.1f} %; window ticks "
            f"{figures['window_ticks']:.0f}, lateness p99 {figures['window_p99']:.2f} ms, max "
            f"{figures['window_max']:.2f} ms, {figures['window_overruns']:.0f} overruns, "
            f"{figures['skipped']:.0f} skipped, packets {figures['packets']:.2f} % of due; "
            f"OPTIONS rtt p50 {rtts[len(rtts) // 2]:.1f} ms max {rtts[-1]:.1f} ms"
        )
    print(
        f"sip stall: worst {worst * 1e3:.2f} ms per datagram, flood tick p99 "
        f"{loud.figures['window_p99']:.2f} ms max {loud.figures['window_max']:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
