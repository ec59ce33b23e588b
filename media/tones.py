"""Tone synthesis at 8 kHz: entry/exit tones, beeps, DTMF keys, ring-back and comfort noise.

References: ITU-T Q.23/Q.24 (DTMF frequency pairs and timing), ITU-T E.180 (ring-back tone,
North American 440+480 Hz, 2 s on / 4 s off), RFC 3389 §3 (comfort noise level in dBov).

Theory of operation: a tone is a sum of sines, each with its peak level in dBFS (0 dBFS is a
full-scale sine), switched on and off by a cadence. Every on-burst gets a short raised-cosine ramp
at both ends so switching never clicks. The result is padded with silence to a whole number of
160-sample frames (20 ms at 8 kHz) because everything downstream works frame by frame, and
returned as a 1-D int16 array; :func:`as_frames` reshapes it to ``(k, 160)`` without copying.
Synthesis is deterministic: noise only comes from a ``numpy.random.Generator`` the caller passes
in, so tests and the virtual-clock engine reproduce exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from media.errors import MediaConfigError

RATE = 8000
FRAME = 160
FULL_SCALE = 32767.0
_RAMP_SAMPLES = 16  # 2 ms: long enough to avoid a click, short enough not to blur a 40 ms DTMF
_MIN_LEVEL_DBFS = -90.0

# ITU-T Q.23: the low (row) and high (column) frequency of each key.
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    "1": (697.0, 1209.0),
    "2": (697.0, 1336.0),
    "3": (697.0, 1477.0),
    "A": (697.0, 1633.0),
    "4": (770.0, 1209.0),
    "5": (770.0, 1336.0),
    "6": (770.0, 1477.0),
    "B": (770.0, 1633.0),
    "7": (852.0, 1209.0),
    "8": (852.0, 1336.0),
    "9": (852.0, 1477.0),
    "C": (852.0, 1633.0),
    "*": (941.0, 1209.0),
    "0": (941.0, 1336.0),
    "#": (941.0, 1477.0),
    "D": (941.0, 1633.0),
}


@dataclass(frozen=True, slots=True)
class ToneStep:
    """One step of a tone sequence: frequencies (Hz) sounding together for ``on_ms``, then
    ``off_ms`` of silence."""

    freqs: tuple[float, ...]
    on_ms: int
    off_ms: int = 0


def _check_level(level_dbfs: float) -> float:
    if not _MIN_LEVEL_DBFS <= level_dbfs <= 0.0:
        raise MediaConfigError(f"tone level {level_dbfs} dBFS outside [{_MIN_LEVEL_DBFS}, 0] dBFS")
    return float(FULL_SCALE * 10.0 ** (level_dbfs / 20.0))


def _ms_to_samples(ms: int, what: str) -> int:
    if ms < 0:
        raise MediaConfigError(f"{what} {ms} ms is negative")
    return ms * RATE // 1000


def _burst(freqs: Sequence[float], samples: int, amplitude: float) -> NDArray[np.float64]:
    """Sum of sines with raised-cosine ramps; float so several bursts can be summed first."""
    for freq in freqs:
        if not 0.0 < freq < RATE / 2:
            raise MediaConfigError(f"tone frequency {freq} Hz outside (0, {RATE // 2}) Hz")
    t = np.arange(samples, dtype=np.float64) / RATE
    wave = np.zeros(samples, dtype=np.float64)
    for freq in freqs:
        wave += np.sin(2.0 * np.pi * freq * t)
    wave *= amplitude
    ramp = min(_RAMP_SAMPLES, samples // 2)
    if ramp:
        window = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp, dtype=np.float64) / ramp)
        wave[:ramp] *= window
        wave[samples - ramp :] *= window[::-1]
    return wave


def pad_to_frames(samples: NDArray[np.int16]) -> NDArray[np.int16]:
    """Pad a 1-D int16 signal with trailing silence to a multiple of 160 samples."""
    if samples.ndim != 1:
        raise MediaConfigError(f"expected a 1-D signal, got shape {samples.shape}")
    short = (-len(samples)) % FRAME
    if not short:
        return samples
    return np.concatenate([samples, np.zeros(short, dtype=np.int16)])


def as_frames(samples: NDArray[np.int16]) -> NDArray[np.int16]:
    """View a whole-frame 1-D signal as ``(k, 160)`` frames."""
    if samples.ndim != 1 or len(samples) % FRAME:
        raise MediaConfigError(f"signal of shape {samples.shape} is not whole 160-sample frames")
    return samples.reshape(-1, FRAME)


def sequence(steps: Sequence[ToneStep], level_dbfs: float = -12.0) -> NDArray[np.int16]:
    """Render tone steps one after another; each frequency peaks at ``level_dbfs``."""
    amplitude = _check_level(level_dbfs)
    parts: list[NDArray[np.float64]] = []
    for step in steps:
        on = _ms_to_samples(step.on_ms, "tone on-time")
        off = _ms_to_samples(step.off_ms, "tone off-time")
        parts.append(_burst(step.freqs, on, amplitude))
        parts.append(np.zeros(off, dtype=np.float64))
    if not parts:
        return np.zeros(0, dtype=np.int16)
    wave = np.concatenate(parts)
    # Several components can add above full scale; clip rather than wrap.
    np.clip(np.rint(wave), -32768, 32767, out=wave)
    return pad_to_frames(wave.astype(np.int16))


def tone(
    freqs: Sequence[float],
    duration_ms: int,
    level_dbfs: float = -12.0,
    cadence: tuple[int, int] | None = None,
) -> NDArray[np.int16]:
    """A steady or cadenced tone lasting ``duration_ms`` (cadence is ``(on_ms, off_ms)``)."""
    total = _ms_to_samples(duration_ms, "tone duration")
    if cadence is None:
        return sequence([ToneStep(tuple(freqs), duration_ms)], level_dbfs)
    on_ms, off_ms = cadence
    if on_ms <= 0:
        raise MediaConfigError(f"cadence on-time {on_ms} ms must be positive")
    period_ms = on_ms + off_ms
    cycles = -(-duration_ms // period_ms)
    wave = sequence([ToneStep(tuple(freqs), on_ms, off_ms)] * cycles, level_dbfs)
    return pad_to_frames(wave[:total].copy())


def entry_tone(level_dbfs: float = -12.0) -> NDArray[np.int16]:
    """The default join tone: three rising notes (an ascending major triad)."""
    steps = [ToneStep((523.25,), 90, 10), ToneStep((659.25,), 90, 10), ToneStep((783.99,), 140)]
    return sequence(steps, level_dbfs)


def exit_tone(level_dbfs: float = -12.0) -> NDArray[np.int16]:
    """The default leave tone: the entry tone's notes falling."""
    steps = [ToneStep((783.99,), 90, 10), ToneStep((659.25,), 90, 10), ToneStep((523.25,), 140)]
    return sequence(steps, level_dbfs)


def beep(
    freq: float = 1000.0, duration_ms: int = 200, level_dbfs: float = -12.0
) -> NDArray[np.int16]:
    """A single sine beep (record start, 'you are muted' and similar cues)."""
    return tone((freq,), duration_ms, level_dbfs)


def dtmf(
    digits: str, on_ms: int = 100, off_ms: int = 100, level_dbfs: float = -10.0
) -> NDArray[np.int16]:
    """DTMF key tones per Q.23 for ``digits`` (``0-9 * # A-D``), each ``on_ms`` then a gap."""
    steps: list[ToneStep] = []
    for digit in digits.upper():
        pair = DTMF_FREQUENCIES.get(digit)
        if pair is None:
            raise MediaConfigError(f"{digit!r} is not a DTMF key (0-9, *, #, A-D)")
        steps.append(ToneStep(pair, on_ms, off_ms))
    return sequence(steps, level_dbfs)


def ringback(cycles: int = 1, level_dbfs: float = -16.0) -> NDArray[np.int16]:
    """North American ring-back (E.180): 440+480 Hz, 2 s on, 4 s off, ``cycles`` times."""
    if cycles < 1:
        raise MediaConfigError(f"ring-back needs at least one cycle, got {cycles}")
    return sequence([ToneStep((440.0, 480.0), 2000, 4000)] * cycles, level_dbfs)


def comfort_noise(frames: int, level_dbov: float, rng: np.random.Generator) -> NDArray[np.int16]:
    """White noise with RMS ``level_dbov`` (RFC 3389: 0 dBov is full scale), whole frames."""
    if frames < 0:
        raise MediaConfigError(f"comfort noise frame count {frames} is negative")
    if not -127.0 <= level_dbov <= 0.0:
        raise MediaConfigError(f"comfort noise level {level_dbov} dBov outside [-127, 0]")
    rms = FULL_SCALE * 10.0 ** (level_dbov / 20.0)
    noise = rng.standard_normal(frames * FRAME) * rms
    np.clip(np.rint(noise), -32768, 32767, out=noise)
    out: NDArray[np.int16] = noise.astype(np.int16)
    return out
