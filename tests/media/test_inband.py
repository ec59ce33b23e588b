"""In-band DTMF: every key at several levels and twists once; speech, noise, single tones never."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from media.errors import MediaConfigError
from media.inband import COLS, KEYPAD, ROWS, InbandBank, InbandDetector
from tests.media.inband_reference import ReferenceDetector

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


# --- the bank: many legs in one call detect exactly what each leg detects alone ---------------


def _random_signal(rng: np.random.Generator, frames: int) -> NDArray[np.int16]:
    """``frames`` 160-sample frames of keys (with twist, some in noise), pauses and noise."""
    parts: list[NDArray[np.float64]] = []
    size = 0
    while size < frames * 160:
        kind = rng.integers(0, 4)
        ms = float(rng.uniform(10.0, 150.0))
        if kind == 0:
            part = _silence(ms)
        elif kind == 1:
            part = rng.normal(0.0, float(rng.uniform(100.0, 6000.0)), int(ms * 8))
        else:
            level = float(rng.uniform(-28.0, -3.0))
            twist = float(rng.uniform(-3.0, 7.0))
            part = _dtmf(str(rng.choice(list(KEYS))), ms, level, level - twist)
            if kind == 3:
                part = part + rng.normal(0.0, float(rng.uniform(10.0, 600.0)), part.size)
        parts.append(part)
        size += part.size
    signal = np.concatenate(parts)[: frames * 160]
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def _alone(pcm: NDArray[np.int16], frame: int = 160) -> list[str]:
    det = InbandDetector()
    keys: list[str] = []
    for start in range(0, pcm.size, frame):
        keys += det.process(pcm[start : start + frame])
    return keys


def test_the_bank_matches_each_leg_alone_with_legs_coming_and_going() -> None:
    rng = np.random.default_rng(2024)
    legs, ticks = 48, 150
    signals = np.stack([_random_signal(rng, ticks) for _ in range(legs)])  # (legs, ticks * 160)
    # Each slot is detected over a few random windows of ticks; a window is a fresh leg.
    windows: list[tuple[int, int, int]] = []  # (slot, first tick, end tick)
    for slot in range(legs):
        edges = np.sort(
            rng.choice(np.arange(ticks + 1), size=2 * int(rng.integers(1, 3)), replace=False)
        )
        windows += [(slot, int(a), int(b)) for a, b in edges.reshape(-1, 2)]
    bank = InbandBank(legs)
    got: dict[tuple[int, int, int], list[str]] = {w: [] for w in windows}
    live: dict[int, tuple[int, int, int]] = {}
    for tick in range(ticks):
        for w in windows:
            if w[2] == tick:
                bank.remove(w[0])
                del live[w[0]]
        for w in windows:
            if w[1] == tick:
                bank.add(w[0])
                live[w[0]] = w
        slots = bank.slots
        assert slots.tolist() == sorted(live)
        frames = signals[slots, tick * 160 : (tick + 1) * 160]
        events = bank.process(frames, slots)
        assert [s for s, _ in events] == sorted(s for s, _ in events)
        for slot, key in events:
            got[live[slot]].append(key)
    expected = {w: _alone(signals[w[0], w[1] * 160 : w[2] * 160]) for w in windows}
    assert got == expected
    assert sum(len(keys) for keys in expected.values()) > 50  # the scene does key digits


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(0, 7), min_size=1, max_size=12),
    st.sampled_from([160, 37, 102, 250, 1]),
)
def test_a_legs_detection_does_not_depend_on_the_other_legs(
    seed: int, company: list[int], frame: int
) -> None:
    """Slot 0's presses are the same whoever shares the call, in whatever row order."""
    rng = np.random.default_rng(seed)
    ticks = 3000 // frame + 10
    n = ticks * frame
    pcm, *others = [_random_signal(rng, n // 160 + 1)[:n] for _ in range(9)]
    key = np.round(_dtmf(str(rng.choice(list(KEYS))), 80)).astype(np.int16)
    pcm = np.concatenate([key, pcm])[:n]  # at least one press to agree on
    bank = InbandBank(9)
    for slot in range(9):
        bank.add(slot)
    got: list[str] = []
    for tick in range(ticks):
        # A different company each tick: rows in any order, some other legs absent.
        size = company[tick % len(company)]
        chosen = rng.choice(8, size=size, replace=False) + 1
        for slot in chosen.tolist():  # a leg re-added starts afresh: detection state is per slot
            if rng.random() < 0.05:
                bank.remove(slot)
                bank.add(slot)
        slots = rng.permutation(np.concatenate([[0], chosen]))
        frames = np.stack([pcm if s == 0 else others[s - 1] for s in slots.tolist()])
        frames = frames[:, tick * frame : (tick + 1) * frame]
        got += [key for slot, key in bank.process(frames, slots) if slot == 0]
    assert got == _alone(pcm, frame) and got


def test_the_bank_reports_by_slot_and_in_keyed_order() -> None:
    # 300 ms frames: several blocks per call, so a leg can press twice within one call.
    two = np.concatenate([_dtmf("1", 60), _silence(60), _dtmf("2", 60), _silence(120)])
    one = np.concatenate([_silence(30), _dtmf("9", 80), _silence(190)])
    pcm = np.round(np.stack([two, one, two[::-1] * 0])).astype(np.int16)
    bank = InbandBank(5)
    for slot in (4, 1, 2):
        bank.add(slot)
    assert bank.slots.tolist() == [1, 2, 4]
    assert bank.process(pcm, [4, 1, 2]) == [(1, "9"), (4, "1"), (4, "2")]


def test_bank_membership_and_bad_input() -> None:
    bank = InbandBank(3)
    assert bank.capacity == 3 and bank.slots.tolist() == []
    assert bank.process(np.zeros((0, 160), np.int16), []) == []
    bank.add(2)
    bank.add(0)
    bank.add(2)  # again: starts over
    assert bank.slots.tolist() == [0, 2]
    with pytest.raises(ValueError, match="read-only"):
        bank.slots[0] = 1
    bank.remove(1)  # not there: nothing happens
    bank.remove(0)
    assert bank.slots.tolist() == [2]
    with pytest.raises(MediaConfigError, match="were not added"):
        bank.process(np.zeros((1, 160), np.int16), [0])
    with pytest.raises(MediaConfigError, match="once per call"):
        bank.add(0)
        bank.process(np.zeros((3, 160), np.int16), [0, 2, 0])
    with pytest.raises(MediaConfigError, match="outside"):
        bank.process(np.zeros((1, 160), np.int16), [3])
    with pytest.raises(MediaConfigError, match="M slots"):
        bank.process(np.zeros((2, 160), np.int16), [0])
    with pytest.raises(MediaConfigError, match="M slots"):
        bank.process(np.zeros(160, np.int16), [0])
    with pytest.raises(MediaConfigError, match="outside"):
        bank.add(-1)
    with pytest.raises(MediaConfigError, match="outside"):
        bank.remove(3)
    with pytest.raises(MediaConfigError, match="negative"):
        InbandBank(-1)
    with pytest.raises(MediaConfigError, match="tone fraction"):
        InbandBank(1, min_tone_fraction=1.5)
    with pytest.raises(MediaConfigError, match=r"\(B, 102\)"):
        bank.classify(np.zeros((2, 160)))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_bank_detects_what_the_old_per_leg_detector_did(seed: int) -> None:
    """Same rules as the per-leg loop the engine ran before: 24 legs, 2 s, same presses each."""
    rng = np.random.default_rng(seed)
    signals = np.stack([_random_signal(rng, 100) for _ in range(24)])
    bank = InbandBank(24)
    for slot in range(24):
        bank.add(slot)
    got: list[list[str]] = [[] for _ in range(24)]
    for tick in range(100):
        for slot, key in bank.process(signals[:, tick * 160 : (tick + 1) * 160], bank.slots):
            got[slot].append(key)
    old: list[list[str]] = []
    for signal in signals:
        det = ReferenceDetector()
        old.append([k for t in range(100) for k in det.process(signal[t * 160 : (t + 1) * 160])])
    assert got == old


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-45.0, 0.0), st.floats(-6.0, 10.0))
def test_block_classification_is_the_old_detectors(seed: int, level: float, twist: float) -> None:
    """Keys near and under the level floor, twisted, noisy, silent: the same verdict per block."""
    rng = np.random.default_rng(seed)
    key = str(rng.choice(list(KEYS)))
    tone = _dtmf(key, 102 * 60 / 8, level, level - twist)[: 102 * 60]
    noise = rng.normal(0.0, float(rng.uniform(0.0, 300.0)), tone.size) * (
        rng.random(tone.size) < 0.5
    )
    blocks = np.round(tone + noise).reshape(60, 102)
    blocks[::7] = 0.0
    assert InbandBank(1).classify(blocks).tolist() == ReferenceDetector().classify(blocks).tolist()


def test_hundreds_of_legs_as_the_engine_feeds_them() -> None:
    """Enough legs that the blocks are multiplied in several stacks, plus a remainder."""
    rng = np.random.default_rng(99)
    legs, ticks = 333, 40
    lead = rng.integers(0, 102, legs)  # each leg at its own block phase
    signals = np.stack([_random_signal(rng, ticks + 1)[s : s + ticks * 160] for s in lead])
    bank = InbandBank(legs + 7)
    slots = np.sort(rng.choice(legs + 7, legs, replace=False))
    for slot in slots.tolist():
        bank.add(slot)
    got: dict[int, list[str]] = {s: [] for s in slots.tolist()}
    for tick in range(ticks):
        for slot, key in bank.process(signals[:, tick * 160 : (tick + 1) * 160], slots):
            got[slot].append(key)
    expected: dict[int, list[str]] = {}
    for slot, signal in zip(slots.tolist(), signals, strict=True):
        det = ReferenceDetector()
        expected[slot] = [
            k for t in range(ticks) for k in det.process(signal[t * 160 : (t + 1) * 160])
        ]
    assert got == expected
    assert sum(len(keys) for keys in got.values()) > 100
