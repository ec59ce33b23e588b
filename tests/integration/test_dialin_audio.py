"""Audio helpers for the dial-in tests: tone files for the phones to play, spectra of what
they recorded (ITU-T G.711 at 8 kHz: every tone used is well inside the 300–3400 Hz band)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

RATE = 8000


def write_tone(path: Path, freq: float, seconds: float = 4.0, level_dbfs: float = -10.0) -> Path:
    """A steady sine the phone loops (a whole number of cycles, so the loop does not click)."""
    n = int(seconds * RATE)
    cycles = round(freq * seconds)
    t = np.arange(n) / n
    peak = 32767 * 10 ** (level_dbfs / 20)
    samples = (peak * np.sin(2 * np.pi * cycles * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())
    return path


def read_recording(path: Path) -> NDArray[np.float64]:
    """A pjsua2 recording (WAV, 16-bit mono) as floats; the header is checked."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth()) != (1, 2):
            raise ValueError(f"{path}: expected 16-bit mono, got {wav.getparams()}")
        if wav.getframerate() != RATE:
            raise ValueError(f"{path}: expected {RATE} Hz, got {wav.getframerate()}")
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float64)


def window(samples: NDArray[np.float64], start: float, end: float) -> NDArray[np.float64]:
    """Samples between ``start`` and ``end`` seconds of the recording."""
    a, b = int(start * RATE), int(end * RATE)
    if not 0 <= a < b <= len(samples):
        raise ValueError(f"window {start}-{end} s outside a {len(samples) / RATE:.2f} s recording")
    return samples[a:b]


def tone_level(samples: NDArray[np.float64], freq: float) -> float:
    """Amplitude (linear, full scale 32767) of ``freq`` in ``samples``, Hann-windowed.

    The peak is taken over ±2 bins so a small clock difference between the phone and the
    server does not hide a tone between bins.
    """
    if len(samples) < RATE // 4:
        raise ValueError(f"need at least 0.25 s of audio, got {len(samples)} samples")
    hann = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * hann)) * 2 / hann.sum()
    k = round(freq * len(samples) / RATE)
    return float(spectrum[max(0, k - 2) : k + 3].max())


def rms(samples: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


# --- the helpers' own tests: a detector that cannot see a tone would pass every test above ---


def test_tone_level_finds_the_tone_and_not_others(tmp_path: Path) -> None:
    samples = read_recording(write_tone(tmp_path / "t.wav", 1100.0, level_dbfs=-20.0))
    part = window(samples, 1.0, 3.0)
    assert tone_level(part, 1100.0) > 3000  # -20 dBFS is ~3277
    assert tone_level(part, 1500.0) < 30
    assert 2000 < rms(part) < 2600


def test_window_and_reader_refuse_bad_input(tmp_path: Path) -> None:
    samples = read_recording(write_tone(tmp_path / "t.wav", 1100.0, seconds=1.0))
    with pytest.raises(ValueError, match=r"outside a 1\.00 s recording"):
        window(samples, 0.5, 2.0)
    with pytest.raises(ValueError, match=r"at least 0\.25 s"):
        tone_level(samples[:100], 1100.0)
    stereo = tmp_path / "s.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(b"\0" * 400)
    with pytest.raises(ValueError, match="expected 16-bit mono"):
        read_recording(stereo)
