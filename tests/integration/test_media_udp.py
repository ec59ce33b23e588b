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

import numpy as np
import pytest
from numpy.typing import NDArray

from conf_server.runtime.engine import MediaEngine
from conf_server.runtime.legs import Leg
from conf_server.runtime.ports import PortAllocator
from media.dtmf import Digit
from media.g711 import ulaw_decode, ulaw_encode
from sip.sdp import PCMU, Direction, MediaParams

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
