"""Paced REST API load from its own process: the load generator of ``bench_api.py``.

Sends a fixed mix of Conference v1 requests (list meetings, get a call, mute, unmute) at a
steady rate on absolute deadlines for a number of seconds, over a pool of keep-alive HTTP/1.1
connections written by hand on asyncio streams: a full HTTP client library costs more CPU per
request than the server under test, and on a 2-core machine the generator must stay light.

Latency is measured from each request's *scheduled* time to its last response byte, so a
server that falls behind is charged for the queueing it causes (no coordinated omission).
Prints one JSON object: achieved rate, per-operation and overall p50/p99/max in ms, errors.

    python benchmarks/api_load.py --port 8080 --rate 500 --seconds 60 --calls ID,ID,...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from dataclasses import dataclass, field


@dataclass
class Op:
    name: str
    method: str
    path: str
    body: bytes = b""


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int, auth: str) -> None:
        self.host, self.port, self.auth = host, port, auth
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, op: Op) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{op.method} {op.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Basic {self.auth}\r\nContent-Length: {len(op.body)}\r\n"
        )
        if op.body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + op.body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers.split(b" ", 2)[1])
        length = 0
        for line in headers.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


def operations(prefix: str, calls: list[str]) -> list[Op]:
    """The mix: per call, list meetings, get it, mute it, list meetings, get it, unmute it."""
    ops: list[Op] = []
    for call in calls:
        ops += [
            Op("list meetings", "GET", f"{prefix}/meetings"),
            Op("get call", "GET", f"{prefix}/calls/{call}"),
            Op("mute", "PUT", f"{prefix}/calls/{call}", b'{"muteMode":40}'),
            Op("list meetings", "GET", f"{prefix}/meetings"),
            Op("get call", "GET", f"{prefix}/calls/{call}"),
            Op("unmute", "PUT", f"{prefix}/calls/{call}", b'{"muteMode":0}'),
        ]
    return ops


async def run(args: argparse.Namespace) -> dict[str, object]:
    auth = base64.b64encode(f"{args.login}:{args.password}".encode()).decode()
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(args.connections):
        pool.put_nowait(Connection(args.host, args.port, auth))
    ops = operations(args.prefix, [c for c in args.calls.split(",") if c])
    results = Results()

    async def one(op: Op, due: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.request(op)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            conn.writer = None  # reconnect next time
            results.errors.append(f"{op.name}: {type(exc).__name__}")
            return
        finally:
            pool.put_nowait(conn)
        if status >= 400:
            results.errors.append(f"{op.name}: HTTP {status}")
            return
        results.latencies.setdefault(op.name, []).append(time.perf_counter() - due)

    total = int(args.rate * args.seconds)
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in range(total):
        due = start + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(ops[i % len(ops)], due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return summary(results, elapsed)


def percentiles(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {"n": 0}
    last = len(ms) - 1
    return {
        "n": len(ms),
        "p50": ms[round(0.5 * last)],
        "p99": ms[round(0.99 * last)],
        "max": ms[-1],
    }


def summary(results: Results, elapsed: float) -> dict[str, object]:
    every = [v for values in results.latencies.values() for v in values]
    return {
        "elapsed": elapsed,
        "ok": len(every),
        "rate": len(every) / elapsed,
        "errors": len(results.errors),
        "first_errors": results.errors[:3],
        "all": percentiles(every),
        "ops": {name: percentiles(values) for name, values in sorted(results.latencies.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="/conference/v1")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="conf-demo")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--calls", required=True, help="comma-separated live call ids")
    args = parser.parse_args()
    sys.stdout.write(json.dumps(asyncio.run(run(args))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
