"""Prompt sequencing and shared streams: turning clips into the 20 ms frames the mixer overlays.

References: RFC 4240 §3 (announcement service: a prompt is a sequence of clips played to one
leg), RFC 4730 §4.3 (prompt ``barge-in``: caller input interrupts an interruptible prompt);
RFC 3550 §5.1 (20 ms of 8 kHz audio = 160 samples per packet, the unit of every frame here).

Theory of operation. A :class:`PromptPlayer` concatenates its clips (e.g. "there are",
"twelve", "participants") once, with optional silence between them, and pads the end to a whole
frame, so each tick's :meth:`PromptPlayer.next_frame` is a view — no copy, no allocation. It
reports ``done`` after its last frame and can be interrupted (barge-in) unless the prompt is
marked uninterruptible (legal notices). The engine hands the frames to ``media.mixer`` as a
per-leg overlay, mixed with the meeting or exclusive (IVR), or as a meeting overlay.

A :class:`SharedStream` is one playback position for many listeners — music on hold. It is
advanced exactly once per tick, and every held leg receives the same frame object (the mixer
routes held legs to one shared row, so it is also encoded once per codec). Looping is
sample-accurate: the stream wraps inside a frame rather than padding each pass with silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from media.errors import MediaConfigError

FRAME = 160
RATE = 8000


def _clip_arg(clip: NDArray[np.int16], what: str) -> NDArray[np.int16]:
    if clip.dtype != np.int16 or clip.ndim != 1:
        raise MediaConfigError(f"{what} must be a 1-D int16 array, got {clip.dtype}{clip.shape}")
    return clip


class PromptPlayer:
    """Plays a sequence of clips as 160-sample frames, once, with optional barge-in."""

    def __init__(
        self,
        clips: Sequence[NDArray[np.int16]],
        *,
        gap_ms: int = 0,
        interruptible: bool = True,
    ) -> None:
        if gap_ms < 0:
            raise MediaConfigError(f"gap between clips {gap_ms} ms is negative")
        gap = np.zeros(gap_ms * RATE // 1000, dtype=np.int16)
        parts: list[NDArray[np.int16]] = []
        for i, clip in enumerate(clips):
            if i:
                parts.append(gap)
            parts.append(_clip_arg(clip, f"clip {i}"))
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        padded = np.zeros(-(-len(samples) // FRAME) * FRAME, dtype=np.int16)
        padded[: len(samples)] = samples
        self._frames = padded.reshape(-1, FRAME)
        self._frames.flags.writeable = False
        self._next = 0
        self.interruptible = interruptible
        self.interrupted = False

    @property
    def total_frames(self) -> int:
        """Frames in the whole prompt, padding included."""
        return len(self._frames)

    @property
    def position(self) -> int:
        """Frames already played."""
        return self._next

    @property
    def done(self) -> bool:
        """True once the last frame was played or the prompt was interrupted."""
        return self.interrupted or self._next >= len(self._frames)

    def next_frame(self) -> NDArray[np.int16] | None:
        """This tick's frame (a read-only view), or None when done."""
        if self.done:
            return None
        frame: NDArray[np.int16] = self._frames[self._next]
        self._next += 1
        return frame

    def interrupt(self) -> bool:
        """Barge-in: stop now if interruptible; returns whether the prompt stopped."""
        if self.interruptible and not self.done:
            self.interrupted = True
            return True
        return False


class SharedStream:
    """One looping playback position shared by every listener (music on hold)."""

    def __init__(self, clip: NDArray[np.int16], *, loops: int | None = None) -> None:
        self._clip = _clip_arg(clip, "stream clip").copy()
        if not len(self._clip):
            raise MediaConfigError("stream clip is empty")
        if loops is not None and loops < 1:
            raise MediaConfigError(f"stream loop count {loops} must be at least 1 (or None)")
        self._end = None if loops is None else loops * len(self._clip)
        self._position = 0
        self._offsets = np.arange(FRAME, dtype=np.intp)
        self._index = np.zeros(FRAME, dtype=np.intp)
        self._frame = np.zeros(FRAME, dtype=np.int16)

    @property
    def position(self) -> int:
        """Samples played since the start, across loops."""
        return self._position

    @property
    def done(self) -> bool:
        """True once a limited number of loops has been played (the frame is then silence)."""
        return self._end is not None and self._position >= self._end

    @property
    def frame(self) -> NDArray[np.int16]:
        """The current tick's frame, shared by all listeners; overwritten by ``advance``."""
        return self._frame

    def advance(self) -> NDArray[np.int16]:
        """Move one tick on (call once per tick) and return the frame every listener hears."""
        np.add(self._offsets, self._position, out=self._index)
        np.take(self._clip, self._index, mode="wrap", out=self._frame)
        if self._end is not None and self._position + FRAME > self._end:
            self._frame[max(self._end - self._position, 0) :] = 0
        self._position += FRAME
        return self._frame
