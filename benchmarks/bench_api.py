"""REST API under load beside live media: 300 legs in meetings, 500 requests/s for 60 s.

Issue 5's benchmark, against the real ``conf-server run --demo --log-format json`` process on
free ports. Two runs with the same set-up, so the tick figures compare like with like:

1. *without API*: sipp brings ``--legs`` calls in (the dial-in storm's scenario and RFC 2833
   pcaps, ``dialin_storm.py``: each call enters an access code and stays joined), the legs sit
   in their meetings for ``--seconds``, the server is stopped;
2. *with API*: the same, but for those ``--seconds`` a separate process (``api_load.py``)
   drives the API at ``--rate`` requests/s: list meetings, get a call, mute and unmute
   participants' calls, paced on absolute deadlines over keep-alive connections.

API latency is measured from each request's scheduled time (queueing counts). Tick figures come
from the server's own log: ``engine.stopped`` (whole run, joins included) and the engine's
10 s ``engine.stats`` lines inside the measured window (lateness p99 and max, overruns,
skipped ticks, packets sent against packets due). Last line (one line)::

    api load: <R> req/s achieved, p99 <X> ms; tick p99 <A> ms without API, <B> ms with
    (window figures; max <C> ms with API)

    .venv/bin/python benchmarks/bench_api.py [--legs 300] [--seconds 60] [--rate 500]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script: reuse the storm's sipp set-up by name

from benchmarks.dialin_storm import (  # noqa: E402 (needs the path above)
    STORM_ROOMS,
    Group,
    launch,
    read_log,
    split,
)
from benchmarks.serverproc import cpu_seconds, free_port, start_server  # noqa: E402

ADMIN = ("admin", "conf-demo")
PREFIX = "/conference/v1"


@dataclass
class Run:
    """One server run's figures."""

    joined: int
    window: tuple[float, float]  # UNIX seconds of the measured stretch
    ticks: int
    overruns: int
    tick_p99: float
    window_ticks: int
    window_overruns: int
    window_p99: float
    window_max: float
    cpu: float  # server CPU over the window, % of one core
    skipped: int  # ticks the engine dropped after overruns (their packets were never sent)
    packets: float  # % of the packets the ticks produced that the kernel took (whole run)
    load: dict[str, object] | None = None


def start_api_server(work: Path, sip: int, api: int) -> subprocess.Popen[bytes]:
    """The server with the demo and the storm's rooms, INFO logs for the engine figures."""
    rooms = work / "storm.toml"
    rooms.write_text(STORM_ROOMS)
    return start_server(
        work,
        sip,
        provision=(HERE.parent / "config" / "demo.toml", rooms),
        api_port=api,
        log_level="info",
        rtp_ports="40000-44999",
    )


def get(api: int, path: str) -> dict[str, object]:
    token = base64.b64encode(":".join(ADMIN).encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{api}{PREFIX}{path}", headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, object] = json.loads(response.read())
    return body


def live_calls(api: int) -> list[dict[str, object]]:
    calls = get(api, "/calls?limit=1000")["calls"]
    assert isinstance(calls, list)
    return calls


def wait_joined(api: int, legs: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = len(live_calls(api))
        if count >= legs:
            break
        time.sleep(1.0)
    return count


def stamp(line: dict[str, object]) -> float:
    text = str(line.get("timestamp", "")).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp() if text else 0.0


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float | str) else float("nan")


def tick_figures(log: list[dict[str, object]], window: tuple[float, float]) -> dict[str, float]:
    """The engine's figures inside ``window``, from its 10 s ``engine.stats`` lines.

    An interval counts when it ended inside the window and began after its start; its p99 is
    an upper bound of the window's (the largest interval p99 is reported).
    """
    stopped = next((x for x in log if x.get("event") == "engine.stopped"), {})
    inside = [
        x
        for x in log
        if x.get("event") == "engine.stats" and window[0] + 10.0 <= stamp(x) <= window[1]
    ]

    def total(key: str) -> float:
        return sum(_number(x[key]) for x in inside)

    def most(key: str) -> float:
        return max((_number(x[key]) for x in inside), default=float("nan"))

    return {
        "ticks": float(stopped.get("ticks", 0)),  # type: ignore[arg-type]
        "overruns": float(stopped.get("overruns", 0)),  # type: ignore[arg-type]
        "p99": float(stopped.get("lateness_p99_ms", float("nan"))),  # type: ignore[arg-type]
        "window_ticks": total("ticks"),
        "window_overruns": total("overruns"),
        "window_p99": most("lateness_p99_ms"),
        "window_max": most("lateness_max_ms"),
        "skipped": total("skipped"),
        "packets": 100.0 * total("packets_out") / max(1.0, total("packets_due")),
    }


def drive_api(api: int, args: argparse.Namespace) -> dict[str, object]:
    calls = [str(c["id"]) for c in live_calls(api) if c.get("role") == 2][:20]
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "api_load.py"),
            *("--port", str(api), "--rate", str(args.rate), "--seconds", str(args.seconds)),
            *("--calls", ",".join(calls)),
        ],
        check=True,
        capture_output=True,
        timeout=args.seconds * 3 + 60,
    )
    result: dict[str, object] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def one_run(args: argparse.Namespace, with_api: bool) -> Run:
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    sip, api = free_port(), free_port()
    server = start_api_server(work, sip, api)
    storm = argparse.Namespace(within=args.within, hold=int(args.within + args.seconds + 90))
    groups: list[Group] = split(args.legs)
    try:
        for group in groups:
            launch(group, sip, storm, work)
        joined = wait_joined(api, args.legs, args.within + 30)
        time.sleep(3.0)  # the last joins' prompts end
        cpu0, t0 = cpu_seconds(server.pid), time.time()
        load = drive_api(api, args) if with_api else None
        if load is None:
            time.sleep(args.seconds)
        cpu1, t1 = cpu_seconds(server.pid), time.time()
    finally:
        server.terminate()
        server.wait(timeout=60)
        for group in groups:
            if group.proc is not None:
                group.proc.kill()
                group.proc.wait()
    ticks = tick_figures(read_log(work / "server.log"), (t0, t1))
    return Run(
        joined,
        (t0, t1),
        int(ticks["ticks"]),
        int(ticks["overruns"]),
        ticks["p99"],
        int(ticks["window_ticks"]),
        int(ticks["window_overruns"]),
        ticks["window_p99"],
        ticks["window_max"],
        100.0 * (cpu1 - cpu0) / (t1 - t0),
        int(ticks["skipped"]),
        ticks["packets"],
        load,
    )


def report(args: argparse.Namespace, idle: Run, busy: Run) -> None:
    print(f"legs: {args.legs} asked, {idle.joined} / {busy.joined} joined (without / with API)")
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    for name, run in (("without API", idle), ("with API", busy)):
        print(
            f"  {name:11s}: server CPU {run.cpu:5.1f} %, run ticks {run.ticks}, overruns "
            f"{run.overruns}, tick lateness p99 {run.tick_p99:.2f} ms; in the {args.seconds:.0f}"
            f" s window ({run.window_ticks} ticks) lateness p99 {run.window_p99:.2f} ms, max "
            f"{run.window_max:.2f} ms, {run.window_overruns} overruns, {run.skipped} ticks "
            f"skipped, packets sent {run.packets:.2f} % of due"
        )
    load = busy.load or {}
    total = load.get("all", {})
    assert isinstance(total, dict)
    print(
        f"API: {load.get('ok')} ok, {load.get('errors')} errors {load.get('first_errors')}, "
        f"{float(load.get('rate', 0.0)):.0f} req/s (target {args.rate:.0f}/s)"  # type: ignore[arg-type]
    )
    for op, figures in dict(load.get("ops", {})).items():  # type: ignore[call-overload]
        print(
            f"  {op:14s} n={figures['n']:6d}  p50={figures['p50']:7.2f} ms  "
            f"p99={figures['p99']:7.2f} ms  max={figures['max']:7.1f} ms"
        )
    print(
        f"api load: {float(load.get('rate', 0.0)):.0f} req/s achieved, "  # type: ignore[arg-type]
        f"p99 {total.get('p99', float('nan')):.1f} ms; tick p99 {idle.window_p99:.2f} ms "
        f"without API, {busy.window_p99:.2f} ms with (max {busy.window_max:.2f} ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--within", type=float, default=15.0, help="seconds to bring legs in")
    args = parser.parse_args()
    idle = one_run(args, with_api=False)
    busy = one_run(args, with_api=True)
    report(args, idle, busy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
