"""Tone synthesis: spectra, levels, cadence, frame alignment and determinism."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from media import tones
from media.errors import MediaConfigError


def _peaks(signal: NDArray[np.int16], count: int) -> list[float]:
    """The ``count`` strongest spectral peaks in Hz (Hann window, local maxima only)."""
    x = signal.astype(np.float64) * np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(signal), 1.0 / tones.RATE)
    local = (spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:])
    idx = np.flatnonzero(local) + 1
    best = idx[np.argsort(spectrum[idx])[::-1][:count]]
    return sorted(float(freqs[i]) for i in best)


def _rms_dbfs(signal: NDArray[np.int16]) -> float:
    rms = float(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))
    return float(20.0 * np.log10(rms / tones.FULL_SCALE))


@pytest.mark.parametrize("digit", list(tones.DTMF_FREQUENCIES))
def test_dtmf_key_has_its_row_and_column_frequencies(digit: str) -> None:
    signal = tones.dtmf(digit, on_ms=200, off_ms=0)
    low, high = tones.DTMF_FREQUENCIES[digit]
    found = _peaks(signal, 2)
    assert found[0] == pytest.approx(low, abs=8.0)
    assert found[1] == pytest.approx(high, abs=8.0)


def test_dtmf_sequence_timing_and_gaps() -> None:
    signal = tones.dtmf("12", on_ms=100, off_ms=100)
    assert len(signal) == 4 * 800
    # The gaps are silent, the tones are not.
    assert not signal[800:1600].any()
    assert np.abs(signal[100:700]).max() > 1000
    assert _peaks(signal[1600:2400], 2) == pytest.approx([697.0, 1336.0], abs=12.0)


def test_dtmf_rejects_a_non_key() -> None:
    with pytest.raises(MediaConfigError, match="'X' is not a DTMF key"):
        tones.dtmf("1X")


def test_entry_tone_rises_and_exit_tone_falls() -> None:
    def dominant(chunk: NDArray[np.int16]) -> float:
        return _peaks(chunk, 1)[0]

    entry, exit_ = tones.entry_tone(), tones.exit_tone()
    # Each note is 90 ms + 10 ms gap = 800 samples; measure the middle of each note.
    entry_notes = [dominant(entry[i * 800 + 100 : i * 800 + 700]) for i in range(3)]
    exit_notes = [dominant(exit_[i * 800 + 100 : i * 800 + 700]) for i in range(3)]
    assert entry_notes[0] < entry_notes[1] < entry_notes[2]
    assert exit_notes[0] > exit_notes[1] > exit_notes[2]
    assert entry_notes == pytest.approx([523.25, 659.25, 783.99], abs=15.0)


def test_beep_level_matches_dbfs() -> None:
    signal = tones.beep(1000.0, 400, level_dbfs=-6.0)
    # A sine's RMS is 3 dB below its peak; the ramps cost a little at the ends.
    assert _rms_dbfs(signal[200:3000]) == pytest.approx(-9.03, abs=0.1)
    assert _peaks(signal, 1) == pytest.approx([1000.0], abs=5.0)


def test_ringback_cadence_two_on_four_off() -> None:
    signal = tones.ringback(cycles=2)
    assert len(signal) == 2 * 6 * tones.RATE
    on = signal[: 2 * tones.RATE]
    off = signal[2 * tones.RATE : 6 * tones.RATE]
    assert not off.any()
    assert _peaks(on, 2) == pytest.approx([440.0, 480.0], abs=3.0)


def test_cadenced_tone_is_cut_to_its_duration() -> None:
    signal = tones.tone((425.0,), 1000, cadence=(200, 300))
    assert len(signal) == tones.RATE
    assert np.abs(signal[0:1600]).max() > 0
    assert not signal[1600:4000].any()
    assert np.abs(signal[4000:5600]).max() > 0


def test_full_scale_sum_clips_instead_of_wrapping() -> None:
    signal = tones.tone((500.0, 500.0), 100, level_dbfs=0.0)
    # Two in-phase full-scale sines would reach 2x full scale; the peak must stay positive.
    assert signal.max() == 32767
    assert signal.min() == -32768


@given(st.integers(min_value=0, max_value=3000))
def test_every_signal_is_whole_frames(duration_ms: int) -> None:
    signal = tones.tone((800.0,), duration_ms)
    assert len(signal) % tones.FRAME == 0
    assert len(signal) >= duration_ms * 8
    assert len(signal) - duration_ms * 8 < tones.FRAME
    assert tones.as_frames(signal).shape == (len(signal) // tones.FRAME, tones.FRAME)


def test_comfort_noise_is_deterministic_and_at_level() -> None:
    a = tones.comfort_noise(50, -50.0, np.random.default_rng(7))
    b = tones.comfort_noise(50, -50.0, np.random.default_rng(7))
    c = tones.comfort_noise(50, -50.0, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(a) == 50 * tones.FRAME
    assert _rms_dbfs(a) == pytest.approx(-50.0, abs=0.3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tones.tone((100.0,), 100, level_dbfs=3.0), "outside \\[-90.0, 0\\] dBFS"),
        (lambda: tones.tone((4000.0,), 100), "frequency 4000.0 Hz outside"),
        (lambda: tones.tone((400.0,), -5), "tone duration -5 ms is negative"),
        (lambda: tones.tone((400.0,), 100, cadence=(0, 10)), "on-time 0 ms must be positive"),
        (lambda: tones.ringback(0), "at least one cycle"),
        (lambda: tones.comfort_noise(1, 5.0, np.random.default_rng(0)), "dBov outside"),
        (lambda: tones.as_frames(np.zeros(100, dtype=np.int16)), "not whole 160-sample"),
    ],
)
def test_bad_parameters_are_named(call: Callable[[], object], message: str) -> None:
    with pytest.raises(MediaConfigError, match=message):
        call()
