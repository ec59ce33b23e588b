"""Prompt sequencing (padding, done, barge-in) and the shared music-on-hold stream."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from media.errors import MediaConfigError
from media.playback import FRAME, PromptPlayer, SharedStream


def _clip(length: int, start: int = 1) -> NDArray[np.int16]:
    return (np.arange(length) % 30000 + start).astype(np.int16)


def _drain(player: PromptPlayer) -> NDArray[np.int16]:
    frames = []
    while (frame := player.next_frame()) is not None:
        frames.append(frame.copy())
    return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)


def test_clips_play_in_order_with_gap_and_padding() -> None:
    a, b = _clip(200, 1), _clip(100, 1000)
    player = PromptPlayer([a, b], gap_ms=10)
    assert player.total_frames == 3  # 200 + 80 + 100 = 380 samples -> 3 frames
    out = _drain(player)
    assert len(out) == 480
    assert np.array_equal(out[:200], a)
    assert not out[200:280].any()
    assert np.array_equal(out[280:380], b)
    assert not out[380:].any()
    assert player.done and player.next_frame() is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 700), max_size=5), st.integers(0, 50))
def test_output_is_the_clips_then_silence(lengths: list[int], gap_ms: int) -> None:
    clips = [_clip(n, 7 * i + 1) for i, n in enumerate(lengths)]
    player = PromptPlayer(clips, gap_ms=gap_ms)
    out = _drain(player)
    gap = np.zeros(gap_ms * 8, dtype=np.int16)
    parts = [p for i, c in enumerate(clips) for p in ([gap, c] if i else [c])]
    expected = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    assert len(out) % FRAME == 0 and 0 <= len(out) - len(expected) < FRAME
    assert np.array_equal(out[: len(expected)], expected)
    assert not out[len(expected) :].any()
    assert player.position == player.total_frames


def test_barge_in_stops_an_interruptible_prompt() -> None:
    player = PromptPlayer([_clip(1600)])
    player.next_frame()
    assert player.interrupt()
    assert player.done and player.interrupted and player.next_frame() is None
    assert not player.interrupt()  # already stopped


def test_uninterruptible_prompt_plays_to_the_end() -> None:
    player = PromptPlayer([_clip(800)], interruptible=False)
    player.next_frame()
    assert not player.interrupt()
    assert len(_drain(player)) == 4 * FRAME


def test_prompt_frames_are_read_only_views() -> None:
    frame = PromptPlayer([_clip(160)]).next_frame()
    assert frame is not None
    with pytest.raises(ValueError, match="read-only"):
        frame[0] = 0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 40))
def test_stream_loops_sample_accurately(length: int, ticks: int) -> None:
    clip = _clip(length, 3)
    stream = SharedStream(clip)
    out = np.concatenate([stream.advance().copy() for _ in range(ticks)])
    expected = np.resize(clip, ticks * FRAME)  # np.resize repeats the clip
    assert np.array_equal(out, expected)
    assert not stream.done


def test_stream_with_two_loops_ends_in_silence() -> None:
    clip = _clip(250, 5)
    stream = SharedStream(clip, loops=2)
    out = np.concatenate([stream.advance().copy() for _ in range(5)])
    assert np.array_equal(out[:500], np.concatenate([clip, clip]))
    assert not out[500:].any()
    assert stream.done


def test_every_listener_gets_the_same_frame_object() -> None:
    stream = SharedStream(_clip(400))
    first = stream.advance()
    assert stream.frame is first
    second = stream.advance()
    assert second is first  # one buffer, overwritten once per tick
    assert stream.position == 2 * FRAME


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PromptPlayer([np.zeros(10, dtype=np.int32)]), "clip 0 must be a 1-D int16"),
        (lambda: PromptPlayer([_clip(10)], gap_ms=-1), "gap between clips -1 ms is negative"),
        (lambda: SharedStream(np.zeros(0, dtype=np.int16)), "stream clip is empty"),
        (lambda: SharedStream(np.zeros((2, 3), dtype=np.int16)), "1-D int16"),
        (lambda: SharedStream(_clip(10), loops=0), "loop count 0 must be at least 1"),
    ],
)
def test_bad_input_is_named(make: Callable[[], object], message: str) -> None:
    with pytest.raises(MediaConfigError, match=message):
        make()
