"""In-band DTMF: every key at several levels and twists once; speech, noise, single tones never."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from media.errors import MediaConfigError
from media.inband import COLS, KEYPAD, ROWS, InbandDetector

RATE = 8000
KEYS = "0123456789*#ABCD"


def _amp(dbm0: float) -> float:
    """Sine amplitude of a level in dBm0 (G.711: full scale is +3.17 dBm0)."""
    return 32767.0 * 10 ** ((dbm0 - 3.17) / 20)


def _dtmf(
    key: str, ms: float, row_dbm0: float = -10.0, col_dbm0: float = -10.0
) -> NDArray[np.float64]:
    r = next(i for i, row in enumerate(KEYPAD) if key in row)
    c = KEYPAD[r].index(key)
    n = np.arange(int(ms * RATE / 1000))
    low = _amp(row_dbm0) * np.sin(2 * np.pi * ROWS[r] * n / RATE + 0.3)
    high = _amp(col_dbm0) * np.sin(2 * np.pi * COLS[c] * n / RATE + 1.1)
    return low + high


def _silence(ms: float) -> NDArray[np.float64]:
    return np.zeros(int(ms * RATE / 1000))


def _detect(*parts: NDArray[np.float64]) -> list[str]:
    """Run the signal (plus 200 ms of trailing silence) through a detector in 160-sample frames."""
    signal = np.concatenate([*parts, _silence(200)])
    pcm = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    det = InbandDetector()
    keys: list[str] = []
    for start in range(0, pcm.size - 159, 160):
        keys += det.process(pcm[start : start + 160])
    return keys


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("level", [-3.0, -10.0, -20.0, -26.0])
@pytest.mark.parametrize("twist", [0.0, 6.0, -2.5], ids=["flat", "normal6dB", "reverse2.5dB"])
def test_every_key_is_detected_once(key: str, level: float, twist: float) -> None:
    # Positive twist: the high (column) tone is weaker, as on a long line.
    assert _detect(_silence(30), _dtmf(key, 100, level, level - twist)) == [key]


@pytest.mark.parametrize("offset_ms", [0.0, 3.0, 7.0, 11.0])
@pytest.mark.parametrize("key", ["1", "5", "9", "#", "D"])
def test_a_40ms_tone_is_caught_at_any_alignment(key: str, offset_ms: float) -> None:
    assert _detect(_silence(offset_ms), _dtmf(key, 40)) == [key]


def test_a_short_blip_is_not_a_digit() -> None:
    assert _detect(_dtmf("5", 15)) == []


def test_a_sequence_of_keys_with_short_pauses() -> None:
    parts = []
    for key in "159#*0":
        parts += [_dtmf(key, 60), _silence(60)]
    assert _detect(*parts) == list("159#*0")


def test_an_interruption_shorter_than_40ms_counts_once() -> None:
    assert _detect(_dtmf("5", 100), _silence(35), _dtmf("5", 100)) == ["5"]
    assert _detect(_dtmf("5", 100), _silence(60), _dtmf("5", 100)) == ["5", "5"]


def test_excessive_twist_is_rejected() -> None:
    assert _detect(_dtmf("8", 200, -5.0, -17.0)) == []  # normal twist 12 dB
    assert _detect(_dtmf("8", 200, -12.0, -5.0)) == []  # reverse twist 7 dB


def test_too_quiet_is_rejected() -> None:
    assert _detect(_dtmf("3", 200, -40.0, -40.0)) == []


def test_single_tones_are_not_digits() -> None:
    n = np.arange(RATE)
    for f in ROWS + COLS:
        assert _detect(_amp(-5) * np.sin(2 * np.pi * f * n / RATE)) == [], f


def test_strong_second_harmonics_are_rejected() -> None:
    # A DTMF pair whose tones carry their own octaves 2 dB down, as a voiced sound would. The
    # purity check is relaxed so that only the harmonic check can reject it.
    n = np.arange(RATE)
    pair = [np.sin(2 * np.pi * f * n / RATE) for f in (697, 1209)]
    octaves = [0.79 * np.sin(2 * np.pi * f * n / RATE) for f in (1394, 2418)]
    blocks = (_amp(-12) * sum(pair + octaves, np.zeros(RATE)))[: 102 * 40].reshape(40, 102)
    clean = (_amp(-12) * sum(pair, np.zeros(RATE)))[: 102 * 40].reshape(40, 102)
    det = InbandDetector(min_tone_fraction=0.3)
    assert set(det.classify(clean).tolist()) == {0}  # key "1"
    assert set(det.classify(blocks).tolist()) == {-1}
    assert _detect(_amp(-12) * sum(pair + octaves, np.zeros(RATE))) == []


def test_speech_like_harmonic_series_is_not_a_digit() -> None:
    t = np.arange(5 * RATE) / RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)  # a gliding voice pitch
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    speech = sum(((4000.0 / k) * np.sin(k * phase) for k in range(1, 30)), np.zeros(t.size))
    assert _detect(speech) == []


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(300.0, 8000.0))
def test_noise_is_not_a_digit(seed: int, sigma: float) -> None:
    rng = np.random.default_rng(seed)
    assert _detect(rng.normal(0.0, sigma, 2 * RATE)) == []


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(KEYS), st.floats(25.0, 40.0))
def test_a_key_in_moderate_noise_is_still_detected(key: str, snr_db: float) -> None:
    tone = _dtmf(key, 120, -10.0, -10.0)
    sigma = np.sqrt(np.mean(tone**2)) / 10 ** (snr_db / 20)
    noise = np.random.default_rng(7).normal(0.0, sigma, tone.size)
    assert _detect(tone + noise) == [key]


def test_frames_of_any_length_and_bad_input() -> None:
    signal = np.concatenate([_dtmf("7", 100), _silence(200)])
    pcm = np.round(signal).astype(np.int16)
    det = InbandDetector()
    keys: list[str] = []
    for start in range(0, pcm.size, 37):  # odd sizes exercise the carried remainder
        keys += det.process(pcm[start : start + 37])
    assert keys == ["7"]
    with pytest.raises(MediaConfigError, match="one 1-D frame"):
        det.process(np.zeros((2, 160), dtype=np.int16))
    with pytest.raises(MediaConfigError, match="tone fraction"):
        InbandDetector(min_tone_fraction=0.0)
