"""Talker detection: levels, hysteresis, attack, hangover, and started/stopped pairing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from media.errors import MediaConfigError
from media.talk import FRAME, TalkDetector, TalkEvents, frame_levels


def _sine_at(dbov: float, legs: int = 1) -> NDArray[np.int16]:
    """Frames of a 500 Hz sine whose level is ``dbov`` (a full-scale sine is -3.01 dBov)."""
    amplitude = 32768.0 * np.sqrt(2.0) * 10.0 ** (dbov / 20.0)
    wave = amplitude * np.sin(2 * np.pi * 500.0 * np.arange(FRAME) / 8000.0)
    return np.tile(np.clip(np.rint(wave), -32768, 32767).astype(np.int16), (legs, 1))


def test_levels_in_dbov() -> None:
    frames = np.vstack(
        [
            np.full(FRAME, 32767, dtype=np.int16),
            _sine_at(-20.0),
            np.zeros((1, FRAME), dtype=np.int16),
        ]
    )
    levels = frame_levels(frames)
    assert levels[0] == pytest.approx(0.0, abs=0.01)
    assert levels[1] == pytest.approx(-20.0, abs=0.05)
    assert levels[2] == -127.0


def _run(detector: TalkDetector, levels: Sequence[float]) -> list[tuple[list[int], list[int]]]:
    out = []
    for level in levels:
        events = detector.update(_sine_at(level))
        out.append((events.started.tolist(), events.stopped.tolist()))
    return out


def test_attack_needs_consecutive_loud_frames() -> None:
    detector = TalkDetector(1, attack_frames=3)
    events = _run(detector, [-20, -20, -60, -20, -20, -20])
    assert events == [([], []), ([], []), ([], []), ([], []), ([], []), ([0], [])]
    assert detector.talking.tolist() == [True]


def test_hangover_and_hysteresis() -> None:
    detector = TalkDetector(1, start_dbov=-40, stop_dbov=-50, attack_frames=1, hangover_frames=3)
    # Start; -45 is between thresholds so it neither counts as quiet nor starts; 2 quiet frames
    # then a between-thresholds frame resets the hangover; then 3 quiet frames stop.
    levels = [-30, -45, -60, -60, -45, -60, -60, -60, -45]
    events = _run(detector, levels)
    started = [i for i, (s, _) in enumerate(events) if s]
    stopped = [i for i, (_, p) in enumerate(events) if p]
    assert started == [0]
    assert stopped == [7]
    assert detector.talking.tolist() == [False]  # -45 does not restart (below start)


def test_many_legs_in_one_update() -> None:
    detector = TalkDetector(4, attack_frames=1, hangover_frames=1)
    frames = np.vstack([_sine_at(-10.0), _sine_at(-70.0), _sine_at(-35.0), _sine_at(-45.0)])
    events = detector.update(frames)
    assert events.started.tolist() == [0, 2]
    assert detector.levels[1] == pytest.approx(-70.0, abs=0.3)  # 16-bit quantisation


def test_remove_of_talking_leg_yields_stopped() -> None:
    detector = TalkDetector(3, attack_frames=1)
    detector.update(_sine_at(-10.0, 3))
    assert detector.remove(1).stopped.tolist() == [1]
    assert detector.remove(1).stopped.tolist() == []
    assert detector.talking.tolist() == [True, False, True]


def test_shrink_stops_dropped_talkers_and_growth_is_silent() -> None:
    detector = TalkDetector(4, attack_frames=1)
    detector.update(np.vstack([_sine_at(-70.0), _sine_at(-10.0, 3)]))
    assert detector.resize(2).stopped.tolist() == [2, 3]
    assert detector.resize(5).stopped.tolist() == []
    assert detector.talking.tolist() == [False, True, False, False, False]


def test_talking_view_is_read_only() -> None:
    detector = TalkDetector(1)
    with pytest.raises(ValueError, match="read-only"):
        detector.talking[0] = True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_dbov": -60.0, "stop_dbov": -50.0}, "stop \\(-50.0\\) <= start \\(-60.0\\)"),
        ({"start_dbov": 3.0}, "<= 0 dBov"),
        ({"hangover_frames": 0}, "hangover \\(0\\) must be >= 1"),
    ],
)
def test_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(MediaConfigError, match=message):
        TalkDetector(1, **kwargs)  # type: ignore[arg-type]


def test_bad_input() -> None:
    detector = TalkDetector(2)
    with pytest.raises(MediaConfigError, match="frames must be int16 of shape \\(2, 160\\)"):
        detector.update(np.zeros((3, FRAME), dtype=np.int16))
    with pytest.raises(MediaConfigError, match="leg 2 outside \\[0, 2\\)"):
        detector.remove(2)
    with pytest.raises(MediaConfigError, match="leg count -1 is negative"):
        detector.resize(-1)


STEP = st.one_of(
    st.tuples(
        st.just("tick"), st.lists(st.sampled_from([-80.0, -45.0, -20.0]), min_size=8, max_size=8)
    ),
    st.tuples(st.just("remove"), st.integers(0, 7)),
    st.tuples(st.just("resize"), st.integers(0, 8)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, max_size=60), st.integers(1, 3), st.integers(1, 4))
def test_started_and_stopped_always_pair(
    steps: list[tuple[str, object]], attack: int, hang: int
) -> None:
    detector = TalkDetector(8, attack_frames=attack, hangover_frames=hang)
    open_talkers: set[int] = set()

    def apply(events: TalkEvents) -> None:
        for leg in events.stopped.tolist():
            assert leg in open_talkers, f"stopped {leg} without started"
            open_talkers.remove(leg)
        for leg in events.started.tolist():
            assert leg not in open_talkers, f"started {leg} twice"
            open_talkers.add(leg)

    for kind, arg in steps:
        if kind == "tick":
            assert isinstance(arg, list)
            levels = arg[: detector.legs]
            frames = (
                np.vstack([_sine_at(x) for x in levels])
                if levels
                else np.zeros((0, FRAME), np.int16)
            )
            apply(detector.update(frames))
        elif kind == "remove" and isinstance(arg, int) and arg < detector.legs:
            apply(detector.remove(arg))
        elif kind == "resize" and isinstance(arg, int):
            apply(detector.resize(arg))
        assert open_talkers == set(np.flatnonzero(detector.talking).tolist())
    apply(detector.resize(0))
    assert open_talkers == set()
