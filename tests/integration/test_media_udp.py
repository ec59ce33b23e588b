"""Real UDP on 127.0.0.1: three phones send distinct tones through the live engine.

Each simulated phone is a plain UDP socket sending G.711 µ-law RTP every 20 ms; what it receives
is decoded and analysed with an FFT. Each must hear the other two tones and not its own; a
listener's tone is heard by nobody. Strict source: a stranger's packets to a latched leg are
counted, not mixed. Bounded in time (a few seconds of audio).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import numpy as np
import pytest
import structlog
from numpy.typing import NDArray

from conf_server.engine.core import RxBatch
from conf_server.engine.legs import Leg
from conf_server.runtime import engine as engine_module
from conf_server.runtime.engine import MediaEngine
from conf_server.runtime.ports import PortAllocator
from conf_server.runtime.rtp_transport import RtpTransport
from media.dtmf import Digit
from media.g711 import ulaw_decode, ulaw_encode
from media.jitter import Counter
from sip.offer_answer import MediaParams
from sip.sdp import PCMU, Direction

pytestmark = pytest.mark.integration

RATE = 8000
FRAME = 160


class Phone:
    """A UDP socket that plays a tone as RTP and records what comes back."""

    def __init__(self, freq: float, ssrc: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.freq = freq
        self.ssrc = ssrc
        self.seq = 0
        self.received: list[bytes] = []
        self.sent_samples = 0

    def params(self) -> MediaParams:
        return MediaParams("127.0.0.1", self.port, PCMU, None, 20, Direction.SENDRECV, False)

    def send_frame(self, engine_port: int) -> None:
        t = (np.arange(FRAME) + self.sent_samples) / RATE
        pcm = (8000 * np.sin(2 * np.pi * self.freq * t)).astype(np.int16)
        header = struct.pack("!BBHII", 0x80, 0, self.seq, self.sent_samples, self.ssrc)
        self.sock.sendto(header + ulaw_encode(pcm).tobytes(), ("127.0.0.1", engine_port))
        self.seq = (self.seq + 1) & 0xFFFF
        self.sent_samples += FRAME

    def drain(self) -> None:
        while True:
            try:
                self.received.append(self.sock.recv(2048))
            except BlockingIOError:
                return

    def heard(self) -> NDArray[np.int16]:
        payload = b"".join(p[12:] for p in self.received if len(p) == 12 + FRAME)
        return ulaw_decode(np.frombuffer(payload, dtype=np.uint8))


def tone_level(pcm: NDArray[np.int16], freq: float) -> float:
    """Magnitude of the FFT bin nearest ``freq``, relative to the strongest bin."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    bins = np.fft.rfftfreq(len(pcm), 1 / RATE)
    near = np.abs(bins - freq) < 15
    return float(spectrum[near].max() / max(spectrum.max(), 1e-9))


async def run_phones(engine: MediaEngine, phones: list[Phone], legs: list[Leg], ticks: int) -> None:
    start = asyncio.get_running_loop().time()
    for k in range(ticks):
        for phone, leg in zip(phones, legs, strict=True):
            phone.send_frame(leg.port)
        for phone in phones:
            phone.drain()
        delay = start + (k + 1) * 0.02 - asyncio.get_running_loop().time()
        await asyncio.sleep(max(delay, 0))


@pytest.mark.timeout(30)
async def test_each_leg_hears_the_others_tones_not_its_own_and_listener_is_unheard() -> None:
    ports = PortAllocator("127.0.0.1", 41000, 41999)
    engine = MediaEngine(ports=ports, seed=1, capacity=16)
    await engine.start()
    freqs = [400.0, 700.0, 1100.0, 1500.0]
    phones = [Phone(f, 1000 + i) for i, f in enumerate(freqs)]
    digits: list[Digit] = []
    legs = [engine.add_leg(p.params(), on_digit=digits.append) for p in phones]
    for leg in legs:
        engine.join(leg, "room")
    engine.set_flags(legs[3], listener=True)
    try:
        await run_phones(engine, phones, legs, ticks=100)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.1", 0))
        for i in range(10):
            stranger.sendto(
                struct.pack("!BBHII", 0x80, 0, i, 0, 9) + bytes(160), ("127.0.0.1", legs[0].port)
            )
        stranger.close()
        await run_phones(engine, phones, legs, ticks=60)
    finally:
        summaries = [engine.remove_leg(leg) for leg in legs]
        await engine.stop()
    for phone in phones:
        phone.drain()
    for i, phone in enumerate(phones):
        pcm = phone.heard()
        assert len(pcm) > 100 * FRAME, f"phone {i} heard only {len(pcm)} samples"
        pcm = pcm[-80 * FRAME :]  # steady state, after learning and jitter buffering
        levels = {f: tone_level(pcm, f) for f in freqs}
        others = [f for j, f in enumerate(freqs[:3]) if j != i]
        for f in others:
            assert levels[f] > 0.3, f"phone {i} misses {f} Hz: {levels}"
        if i < 3:
            assert levels[freqs[i]] < 0.05, f"phone {i} hears itself: {levels}"
        assert levels[1500.0] < 0.05, f"phone {i} hears the listener: {levels}"
    assert summaries[0].foreign_dropped == 10
    assert all(s.packets_in > 100 for s in summaries)
    assert engine.stats.ticks > 100
    assert ports.in_use == 0


async def _ticks(engine: MediaEngine, count: int) -> None:
    """Wait until the live engine has run ``count`` more ticks (bounded by the test timeout)."""
    target = engine.stats.ticks + count
    while engine.stats.ticks < target:
        await asyncio.sleep(0.005)


@pytest.mark.timeout(30)
async def test_reinvite_to_a_new_address_relearns_the_peer() -> None:
    ports = PortAllocator("127.0.0.1", 42000, 42999)
    engine = MediaEngine(ports=ports, seed=2, capacity=8)
    await engine.start()
    old, new, other = Phone(500.0, 11), Phone(900.0, 12), Phone(1300.0, 13)
    leg = engine.add_leg(old.params(), on_digit=lambda d: None)
    peer = engine.add_leg(other.params(), on_digit=lambda d: None)
    for each in (leg, peer):
        engine.join(each, "room")
    try:
        await run_phones(engine, [old, other], [leg, peer], ticks=40)
        assert len(old.received) > 20  # latched to the old address, which hears the room
        # The re-INVITE moves the phone; the old address falls silent, the new one speaks.
        engine.update_leg(leg, new.params())
        await _ticks(engine, 2)
        heard_before = len(old.received)
        new.seq, new.sent_samples = old.seq, old.sent_samples  # same stream, new address
        await run_phones(engine, [new, other], [leg, peer], ticks=60)
        # A stray packet from the old address after the new one latched is foreign (counted
        # when the foreign sockets are drained, once a second).
        for _ in range(3):
            old.send_frame(leg.port)
        await run_phones(engine, [new, other], [leg, peer], ticks=60)
    finally:
        summary = engine.remove_leg(leg)
        engine.remove_leg(peer)
        await engine.stop()
    for phone in (old, new, other):
        phone.drain()
    # The old address got nothing after the update beyond what was already in flight.
    assert len(old.received) <= heard_before + 2
    assert len(new.received) > 40, f"new address heard only {len(new.received)} packets"
    pcm = new.heard()[-40 * FRAME :]
    assert tone_level(pcm, 1300.0) > 0.3  # it hears the room through the new address
    heard_by_other = other.heard()[-40 * FRAME :]
    assert tone_level(heard_by_other, 900.0) > 0.3  # and the room hears it from there
    assert summary.foreign_dropped == 3


@pytest.mark.timeout(30)
async def test_a_burst_queued_on_one_leg_is_drained_in_one_tick() -> None:
    ports = PortAllocator("127.0.0.1", 43000, 43999)
    engine = MediaEngine(ports=ports, seed=3, capacity=4)
    await engine.start()
    phone = Phone(600.0, 21)
    leg = engine.add_leg(phone.params(), on_digit=lambda d: None)
    try:
        await run_phones(engine, [phone], [leg], ticks=20)  # latch (connected socket)
        await _ticks(engine, 2)
        before = engine.core.packets_in[leg.slot]
        ticks = engine.stats.ticks
        for _ in range(5):  # five packets at once: one tick must read them all
            phone.send_frame(leg.port)
        await _ticks(engine, 2)
        read = int(engine.core.packets_in[leg.slot] - before)
        assert read == 5
        assert engine.stats.ticks - ticks <= 3
        assert engine.core.jitter.counters[Counter.LATE, leg.slot] == 0
    finally:
        engine.remove_leg(leg)
        await engine.stop()


@pytest.mark.timeout(30)
async def test_slow_ticks_are_counted_and_logged_as_overruns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "STATS_EVERY_TICKS", 20)
    ports = PortAllocator("127.0.0.1", 44000, 44999)
    slow_every = 10

    def hook() -> None:
        # Every tenth tick takes 30 ms of a 20 ms budget: that tick overruns.
        if engine.stats.ticks % slow_every == 0:
            time.sleep(0.03)

    engine = MediaEngine(ports=ports, seed=4, capacity=4, tick_hook=hook)
    phone = Phone(700.0, 31)
    leg = engine.add_leg(phone.params(), on_digit=lambda d: None)
    with structlog.testing.capture_logs() as logs:
        await engine.start()
        try:
            await _ticks(engine, 60)
        finally:
            engine.remove_leg(leg)
            await engine.stop()
    slow = engine.stats.ticks // slow_every
    # Each slow tick ends at least 10 ms past its deadline; a loaded machine may add others.
    assert engine.stats.overruns >= slow - 1
    assert engine.stats.max_lateness_ms >= 5.0  # the tick after a slow one starts late
    overruns = [line for line in logs if line["event"] == "engine.overrun"]
    assert len(overruns) == engine.stats.overruns
    assert all(line["lateness_ms"] > 0 and line["skipped"] == 0 for line in overruns)
    assert sum(line["lateness_ms"] >= 8.0 for line in overruns) >= slow - 1
    summaries = [line for line in logs if line["event"] == "media.summary"]
    assert [line["log_level"] for line in summaries] == ["debug"]
    # engine.stats every 20 ticks: the interval's own overruns and lateness, and packets.
    intervals = [line for line in logs if line["event"] == "engine.stats"]
    assert len(intervals) >= 2
    assert all(line["ticks"] == 20 and line["legs"] == 1 for line in intervals)
    assert all(line["overruns"] >= 1 and line["lateness_max_ms"] >= 5.0 for line in intervals)
    assert all(line["lateness_p50_ms"] <= line["lateness_p99_ms"] for line in intervals)
    assert sum(line["overruns"] for line in intervals) <= engine.stats.overruns
    assert all(line["packets_out"] == line["packets_due"] > 0 for line in intervals)


@pytest.mark.timeout(30)
async def test_a_tick_that_raises_is_logged_and_the_clock_goes_on() -> None:
    ports = PortAllocator("127.0.0.1", 45000, 45999)
    failures = iter([True])

    def hook() -> None:
        if next(failures, False):
            raise RuntimeError("injected tick failure")

    engine = MediaEngine(ports=ports, seed=5, capacity=2, tick_hook=hook)
    with structlog.testing.capture_logs() as logs:
        await engine.start()
        try:
            await _ticks(engine, 10)
        finally:
            await engine.stop()
    assert engine.stats.tick_errors == 1
    (failed,) = [line for line in logs if line["event"] == "engine.tick_failed"]
    assert failed["log_level"] == "error"
    assert engine.stats.ticks >= 10


def test_a_full_receive_batch_leaves_the_rest_for_the_next_tick() -> None:
    ports = PortAllocator("127.0.0.1", 46000, 46999)
    transport = RtpTransport(ports, strict=True, learn_packets=1)
    phones = [Phone(400.0 + i, 40 + i) for i in range(3)]
    legs = [transport.open(i, ("127.0.0.1", p.port)) for i, p in enumerate(phones)]
    rx = RxBatch.empty(2, 256)
    try:
        for phone, leg in zip(phones, legs, strict=True):
            phone.send_frame(leg.pair.port)
        time.sleep(0.05)  # loopback delivery, then latch (learn_packets=1) on the first read
        transport.receive(rx)
        assert rx.count == 2  # the third leg's packet waits: the batch has two rows
        for phone, leg in zip(phones, legs, strict=True):
            phone.send_frame(leg.pair.port)
        time.sleep(0.05)
        transport.receive(rx)
        assert rx.count == 2 and sorted(rx.slots[:2].tolist()) == [0, 1]
        # Leg 2 latches on its first packet; its second, read in the same drain of the still
        # unconnected socket, comes from the latched peer and is kept.
        transport.receive(rx)
        assert rx.count == 2 and rx.slots[:2].tolist() == [2, 2]
        transport.receive(rx)
        assert rx.count == 0
    finally:
        for leg in legs:
            transport.detach(leg)
            ports.release(leg.pair)
        transport.close()
