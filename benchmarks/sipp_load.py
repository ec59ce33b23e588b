"""SIP call-rate benchmark: sipp places calls at fixed rates against the real server process.

Each call is answered, held for ``--hold`` seconds and hung up by sipp (benchmarks/sipp/
uac_load.xml). For each rate in ``--rates`` the run lasts ``--seconds``; a rate is *clean* when
every call succeeded and p99 INVITE→200 is under ``--p99-limit`` ms. The server's CPU is read
from /proc for its process alone. The last line is the figure for scripts:

    sip load: <N> calls/s clean, p99 setup <X> ms, <F> failed

Usage: python benchmarks/sipp_load.py [--rates 100,200,300] [--seconds 60] [--hold 5]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # run as a script: the shared helpers are benchmarks.serverproc

from benchmarks.serverproc import (  # noqa: E402 (needs the path above)
    cpu_seconds,
    free_port,
    percentile,
    start_server,
)

SCENARIO = HERE / "sipp" / "uac_load.xml"
DID = "+12125550100"


@dataclass
class RateResult:
    rate: int
    calls: int
    failed: int
    p50_ms: float
    p99_ms: float
    cpu_percent: float

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.calls > 0


def run_rate(rate: int, args: argparse.Namespace, port: int, pid: int, work: Path) -> RateResult:
    total = rate * args.seconds
    out = work / f"rate{rate}"
    out.mkdir()
    cmd = [
        "sipp",
        f"127.0.0.1:{port}",
        *("-sf", str(SCENARIO), "-s", DID),
        *("-r", str(rate), "-m", str(total), "-l", str(rate * (args.hold + 5) * 2)),
        *("-d", str(args.hold * 1000)),
        *("-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port())),
        *("-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "5"),
        *("-timeout", f"{args.seconds + args.hold + 60}s", "-nostdin"),
        "-max_socket",
        "4096",
    ]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    proc = subprocess.run(cmd, cwd=out, capture_output=True, check=False)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    rtts = read_rtts(out)
    failed = read_failed(out)
    if proc.returncode not in (0, 1) or not rtts:
        sys.stderr.write(proc.stdout.decode(errors="replace")[-3000:])
    rtts.sort()
    return RateResult(
        rate=rate,
        calls=len(rtts),
        failed=failed if proc.returncode in (0, 1) else max(failed, total - len(rtts)),
        p50_ms=percentile(rtts, 50),
        p99_ms=percentile(rtts, 99),
        cpu_percent=100.0 * (cpu1 - cpu0) / (t1 - t0),
    )


def read_rtts(folder: Path) -> list[float]:
    values: list[float] = []
    for path in folder.glob("*_rtt.csv"):
        with path.open() as fh:
            # rows: Date_ms;response_time_ms;rtd_no (sipp 3.6)
            rows = csv.reader(fh, delimiter=";")
            values.extend(float(r[1]) for r in rows if len(r) >= 3 and r[0][:1].isdigit())
    return values


def read_failed(folder: Path) -> int:
    for path in folder.glob("*_[0-9]*.csv"):
        if path.name.endswith("_rtt.csv"):
            continue
        rows = list(csv.reader(path.open(), delimiter=";"))
        if len(rows) >= 2:
            header, last = rows[0], rows[-1]
            return int(last[header.index("FailedCall(C)")])
    return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,300", help="calls per second, in order")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--hold", type=int, default=5, help="seconds each call lasts")
    parser.add_argument("--p99-limit", type=float, default=20.0, help="ms, for a clean rate")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp not found: apt-get install sip-tester (make system-deps)")
    work = Path(tempfile.mkdtemp(prefix="sipp-load-"))
    port = free_port()
    server = start_server(work, port)
    results: list[RateResult] = []
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            res = run_rate(rate, args, port, server.pid, work)
            results.append(res)
            print(
                f"rate {res.rate}/s: {res.calls} calls, {res.failed} failed, "
                f"p50 {res.p50_ms:.1f} ms, p99 {res.p99_ms:.1f} ms, "
                f"server CPU {res.cpu_percent:.0f} %"
            )
            time.sleep(args.hold + 2)  # let the last calls end before the next rate
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    clean = [r for r in results if r.clean and r.p99_ms < args.p99_limit]
    best = max(clean, key=lambda r: r.rate) if clean else None
    if best is None:
        worst = results[0]
        print(f"sip load: 0 calls/s clean, p99 setup {worst.p99_ms:.1f} ms, {worst.failed} failed")
    else:
        print(f"sip load: {best.rate} calls/s clean, p99 setup {best.p99_ms:.1f} ms, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
