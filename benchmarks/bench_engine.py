"""The live media engine against a load generator in another process, over loopback UDP.

The engine runs in a child process (``--serve``): N legs, rooms of ``--room-size`` (one talker
per room sends a tone, the others send silence), ``MediaEngine`` with its real sockets and tick
thread. This process is the load generator (below): 50 packets/s per simulated phone, sent
and drained with a few ``sendmmsg``/``recvmmsg`` calls per 20 ms tick, so that it does not
compete with the engine for the machine's two cores (its own CPU share is printed too).

Reported (engine process only): CPU µs per participant-second from ``resource.getrusage``, tick
lateness p50/p99/max, overruns, and packets received by the phones vs expected (50/s per leg
after a warm-up). Real time = p99 < 5 ms, max ≤ 10 ms, ≥ 99.9 % of expected packets.

    python benchmarks/bench_engine.py --participants 1500 --room-size 3 --seconds 10 --fixed
    python benchmarks/bench_engine.py --room-size 3 --seconds 8        # searches the largest N
    python benchmarks/bench_engine.py --participants 1000 --room-size 1000 --fixed
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time

import numpy as np
from numpy.typing import NDArray

from conf_server.logs import configure
from conf_server.runtime.engine import MediaEngine
from conf_server.runtime.heap import settle_heap, switch_interval
from conf_server.runtime.ports import PortAllocator
from media.g711 import ulaw_encode
from sip.offer_answer import MediaParams
from sip.sdp import PCMU, Direction

WARMUP = 1.0


# --------------------------------------------------------------------------- engine side


async def serve(n: int, room: int, seconds: float, phone_ports: list[int]) -> dict[str, float]:
    ports = PortAllocator("127.0.0.1", 20000, 20000 + 4 * n + 100)
    engine = MediaEngine(ports=ports, capacity=n, seed=1, realtime_priority=10)  # as the server
    legs = []
    for i, port in enumerate(phone_ports):
        params = MediaParams("127.0.0.1", port, PCMU, 101, 20, Direction.SENDRECV, False)
        leg = engine.add_leg(params, on_digit=lambda d: None)
        engine.join(leg, f"room{i // room}")
        legs.append(leg)
    print(json.dumps([leg.port for leg in legs]), flush=True)
    switch_interval()  # as `conf-server run` does
    settle_heap()
    await engine.start()
    await asyncio.sleep(WARMUP)
    stats = engine.stats
    stats.histogram[:] = 0
    stats.max_lateness_ms = 0.0
    ticks0, over0 = stats.ticks, stats.overruns
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result = {
        "cpu_s": cpu,
        "wall_s": wall,
        "user_s": cpu1.ru_utime - cpu0.ru_utime,
        "sys_s": cpu1.ru_stime - cpu0.ru_stime,
        "ticks": stats.ticks - ticks0,
        "overruns": stats.overruns - over0,
        "p50_ms": stats.p50_ms,
        "p99_ms": stats.p99_ms,
        "max_ms": stats.max_lateness_ms,
        "foreign": stats.foreign_dropped,
    }
    await engine.stop()
    return result


# --------------------------------------------------------------------------- load generator

# Lean RTP load generator for ``bench_engine.py``: many simulated phones, a few syscalls per tick.
#
# The load generator shares the machine's two cores with the engine under test, so it must not be
# the bottleneck: per-packet Python in the generator (one ``send`` and one ``recv`` per phone per
# tick) costs about as much CPU as the engine itself and starves it of the second core. Here:
#
# * phones are grouped onto a few UDP sockets (``PHONES_PER_SOCKET`` legs share one source
#   address; the engine latches each leg to it, which is legal: every leg still has its own port
#   pair on the engine side, and its connected socket's 4-tuple is unique);
# * every tick, the RTP sequence numbers and timestamps of all phones are rewritten with one
#   numpy assignment, then each group socket sends its phones' packets with one ``sendmmsg`` whose
#   iovecs point straight into the packet matrix (no bytes objects, no per-packet Python);
# * replies are drained with ``recvmmsg`` (``MSG_DONTWAIT``) in blocks of ``RECV_BLOCK``.
#
# Phone sockets are not registered with epoll either, so the engine's ``send`` (which on loopback
# also runs the receiver's kernel path) does not pay for a wakeup per packet that a real network
# would not charge it.

PHONES_PER_SOCKET = 50
DRAIN_EVERY = 5
RECV_BLOCK = 256
RECV_ROW = 256
MSG_DONTWAIT = 0x40
PACKET = 172


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_sendmmsg = _libc.sendmmsg
_sendmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(_Mmsghdr), ctypes.c_uint, ctypes.c_int]
_sendmmsg.restype = ctypes.c_int
_recvmmsg = _libc.recvmmsg
_recvmmsg.argtypes = [
    ctypes.c_int,
    ctypes.POINTER(_Mmsghdr),
    ctypes.c_uint,
    ctypes.c_int,
    ctypes.c_void_p,
]
_recvmmsg.restype = ctypes.c_int


def _sockaddr_in(port: int) -> bytes:
    # struct sockaddr_in: family (host order), port and address (network order), 8 bytes zero.
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, bytes([127, 0, 0, 1]))


class _Group:
    """One phone socket and the prebuilt ``sendmmsg`` vector of its phones' packets."""

    def __init__(
        self, sock: socket.socket, rows: NDArray[np.uint8], engine_ports: list[int]
    ) -> None:
        self.sock = sock
        self.count = n = len(engine_ports)
        self._names = ctypes.create_string_buffer(b"".join(_sockaddr_in(p) for p in engine_ports))
        self._iov = (_Iovec * n)()
        self._msgs = (_Mmsghdr * n)()
        base = rows.ctypes.data
        names = ctypes.addressof(self._names)
        for i in range(n):
            self._iov[i].iov_base = base + i * rows.strides[0]
            self._iov[i].iov_len = rows.shape[1]
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = names + 16 * i
            hdr.msg_namelen = 16
            hdr.msg_iov = ctypes.pointer(self._iov[i])
            hdr.msg_iovlen = 1
        self._rows = rows  # keeps the memory the iovecs point into alive

    def send(self) -> int:
        """Send every phone's current packet; returns how many the kernel refused."""
        fd, done = self.sock.fileno(), 0
        while done < self.count:
            sent = _sendmmsg(fd, ctypes.byref(self._msgs[done]), self.count - done, 0)
            if sent <= 0:
                return self.count - done  # buffer full or the engine not up yet: next tick
            done += sent
        return 0


class _Receiver:
    """A ``recvmmsg`` vector of ``RECV_BLOCK`` rows (with source addresses), for every socket."""

    def __init__(self) -> None:
        self._buf = ctypes.create_string_buffer(RECV_BLOCK * RECV_ROW)
        self._names = ctypes.create_string_buffer(RECV_BLOCK * 16)
        self._iov = (_Iovec * RECV_BLOCK)()
        self._msgs = (_Mmsghdr * RECV_BLOCK)()
        base, names = ctypes.addressof(self._buf), ctypes.addressof(self._names)
        for i in range(RECV_BLOCK):
            self._iov[i].iov_base = base + i * RECV_ROW
            self._iov[i].iov_len = RECV_ROW
            hdr = self._msgs[i].msg_hdr
            hdr.msg_iov = ctypes.pointer(self._iov[i])
            hdr.msg_iovlen = 1
            hdr.msg_name = names + 16 * i
        # Fields of every entry as numpy columns instead of ctypes attribute reads.
        words = np.frombuffer(memoryview(self._msgs).cast("B"), np.uint32).reshape(RECV_BLOCK, -1)
        self._lengths = words[:, _Mmsghdr.msg_len.offset // 4]
        self._namelen = words[:, _Msghdr.msg_namelen.offset // 4]
        rows = np.frombuffer(memoryview(self._buf).cast("B"), np.uint8)
        self._rows = rows[: RECV_BLOCK * RECV_ROW].reshape(RECV_BLOCK, RECV_ROW)
        self._addr = np.frombuffer(memoryview(self._names).cast("B"), np.uint8)
        self._addr = self._addr[: RECV_BLOCK * 16].reshape(RECV_BLOCK, 16)

    def drain(self, fd: int, tally: _Tally | None) -> int:
        """Read everything queued on ``fd``; RTP replies go to ``tally`` when counting."""
        total = 0
        while True:
            self._namelen[:] = 16  # value-result: the kernel overwrites it per message
            got = _recvmmsg(fd, self._msgs, RECV_BLOCK, MSG_DONTWAIT, None)
            if got <= 0:
                return total
            total += int(got)
            if tally is not None:
                rtp = self._lengths[:got] == PACKET
                ports = (self._addr[:got, 2].astype(np.int64) << 8) | self._addr[:got, 3]
                seqs = (self._rows[:got, 2].astype(np.int64) << 8) | self._rows[:got, 3]
                tally.add(ports[rtp], seqs[rtp])
            if got < RECV_BLOCK:
                return total


class _Tally:
    """Per leg: packets received in the window and the span of their sequence numbers.

    Counting by sequence span, not by arrival time, keeps the figure exact at the window's
    edges: whether the engine's send of a tick lands just before or after the window closes
    does not turn into a missing tick (0.3 % of an 8 s run, three times the allowed loss).
    """

    def __init__(self, engine_ports: list[int]) -> None:
        n = len(engine_ports)
        self.leg_of = np.full(65536, -1, np.int64)
        self.leg_of[engine_ports] = np.arange(n)
        self.first = np.full(n, -1, np.int64)
        self.span = np.zeros(n, np.int64)
        self.count = np.zeros(n, np.int64)

    def add(self, ports: NDArray[np.int64], seqs: NDArray[np.int64]) -> None:
        """Account replies from the engine's ``ports`` carrying RTP sequence ``seqs``."""
        legs = self.leg_of[ports]
        known = legs >= 0
        legs, seqs = legs[known], seqs[known]
        new = self.first[legs] < 0
        if new.any():
            fresh, at = np.unique(legs[new], return_index=True)
            self.first[fresh] = seqs[new][at]
        offset = (seqs - self.first[legs]) & 0xFFFF
        ahead = offset < 0x8000  # loopback does not reorder; ignore anything odd
        np.maximum.at(self.span, legs[ahead], offset[ahead] + 1)
        self.count += np.bincount(legs, minlength=len(self.count))

    def expected(self, ticks: int) -> int:
        """Packets the legs should have got: their span, at least the window's ticks − 1."""
        return int(np.maximum(self.span, ticks - 1).sum())


class LoadGenerator:
    """``n`` phones in rooms of ``room``: one talker per room sends a tone, the others silence."""

    def __init__(self, n: int, room: int, tone: bytes, silence: bytes) -> None:
        self.n = n
        self.packets = np.zeros((n, PACKET), np.uint8)
        self.packets[:, 0] = 0x80
        payload = np.frombuffer(silence, np.uint8)
        self.packets[:, 12:] = payload
        self.packets[::room, 12:] = np.frombuffer(tone, np.uint8)
        ssrc = (1000 + np.arange(n)).astype(">u4").view(np.uint8).reshape(n, 4)
        self.packets[:, 8:12] = ssrc
        self.groups: list[_Group] = []
        self._socks: list[socket.socket] = []
        self._receiver = _Receiver()
        self.seq = 0

    def open(self) -> list[int]:
        """Bind the group sockets; returns each phone's source port (for the engine's SDP)."""
        self._socks = []
        for _ in range(0, self.n, PHONES_PER_SOCKET):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self._socks.append(s)
        return [self._socks[i // PHONES_PER_SOCKET].getsockname()[1] for i in range(self.n)]

    def connect(self, engine_ports: list[int]) -> None:
        """Build each group's send vector towards the engine's leg ports."""
        for k, s in enumerate(self._socks):
            lo, hi = k * PHONES_PER_SOCKET, min(self.n, (k + 1) * PHONES_PER_SOCKET)
            self.groups.append(_Group(s, self.packets[lo:hi], engine_ports[lo:hi]))

    def tick(self, tally: _Tally | None) -> tuple[int, int]:
        """Send one packet per phone, drain replies: (send failures, replies)."""
        seq = self.seq
        self.packets[:, 2:4] = np.frombuffer(struct.pack("!H", seq & 0xFFFF), np.uint8)
        self.packets[:, 4:8] = np.frombuffer(struct.pack("!I", (seq * 160) & 0xFFFFFFFF), np.uint8)
        self.seq += 1
        failed = sum(g.send() for g in self.groups)
        if self.seq % DRAIN_EVERY:
            return failed, 0
        replies = sum(self._receiver.drain(g.sock.fileno(), tally) for g in self.groups)
        return failed, replies

    def close(self) -> None:
        """Close every phone socket."""
        for s in self._socks:
            s.close()


def drive(
    gen: LoadGenerator, tally: _Tally, count_from: float, count_to: float, end: float
) -> tuple[int, int, float]:
    """Tick every 20 ms on absolute deadlines until ``end``; replies in the window go to tally.

    Returns (ticks in the window, send failures, CPU seconds this process used while driving).
    """
    ticks = failed = 0
    cpu0 = time.process_time()
    deadline = time.monotonic()
    while (now := time.monotonic()) < end:
        counting = count_from <= now < count_to
        lost, _replies = gen.tick(tally if counting else None)
        failed += lost
        ticks += counting
        deadline += 0.02
        time.sleep(max(0.0, deadline - time.monotonic()))
    return ticks, failed, time.process_time() - cpu0


def run_load(n: int, room: int, seconds: float) -> dict[str, float]:
    t = np.arange(160) / 8000
    tone = ulaw_encode((6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)).tobytes()
    gen = LoadGenerator(n, room, tone, bytes([0xFF]) * 160)
    phone_ports = gen.open()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n), str(room), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if child.stdin is None or child.stdout is None:
        raise RuntimeError("engine process without pipes")
    child.stdin.write(json.dumps(phone_ports) + "\n")
    child.stdin.close()
    engine_ports = json.loads(child.stdout.readline())
    gen.connect(engine_ports)
    tally = _Tally(engine_ports)
    count_from = time.monotonic() + WARMUP + 0.5  # the engine's window, after buffering
    count_to = count_from + seconds - 1.0
    ticks, _failed, load_cpu = drive(gen, tally, count_from, count_to, count_from + seconds + 0.3)
    out = child.stdout.read()
    child.wait(timeout=60)
    engine: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    engine["expected"] = tally.expected(ticks)
    engine["received"] = int(tally.count.sum())
    engine["load_cpu_pct"] = 100.0 * load_cpu / (seconds + 1.8)
    gen.close()
    return engine


def report(n: int, r: dict[str, float]) -> tuple[bool, str]:
    pct = 100.0 * r["received"] / r["expected"]
    per_core = r["cpu_s"] / r["wall_s"]
    ok = r["p99_ms"] < 5.0 and r["max_ms"] <= 10.0 and pct >= 99.9 and per_core <= 1.0
    us = 1e6 * r["cpu_s"] / (n * r["wall_s"])
    print(
        f"N={n}: cpu {us:.0f} µs per participant-second ({per_core * 100:.0f} % of a core; "
        f"user {r['user_s']:.2f} s sys {r['sys_s']:.2f} s), lateness p50 {r['p50_ms']:.2f} "
        f"p99 {r['p99_ms']:.2f} max {r['max_ms']:.2f} ms, overruns {r['overruns']:.0f}, "
        f"packets {pct:.2f} %; load generator {r['load_cpu_pct']:.0f} % of a core",
        flush=True,
    )
    verdict = "real-time" if ok else "not real-time"
    line = (
        f"capacity: {n} participants/core {verdict} (p99 lateness {r['p99_ms']:.2f} ms, "
        f"max {r['max_ms']:.2f} ms, packets {pct:.2f} %)"
    )
    return ok, line


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        n, room, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        phone_ports = json.loads(sys.stdin.readline())
        configure("json", "warning", sys.stderr)  # stdout carries the JSON results
        result = asyncio.run(serve(n, room, seconds, phone_ports))
        print(json.dumps(result), flush=True)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=500)
    ap.add_argument("--room-size", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--fixed", action="store_true", help="measure only --participants")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.fixed:
        _, line = report(
            args.participants, run_load(args.participants, args.room_size, args.seconds)
        )
        print(line)
        return 0
    n, best = args.participants, None
    while n <= 4000:
        ok, line = report(n, run_load(n, args.room_size, args.seconds))
        if not ok:
            break
        best = line
        n = int(n * 1.25) // args.room_size * args.room_size
    print(best if best is not None else line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
