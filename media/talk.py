"""Talker detection for every leg at once: frame energy in dBov with hysteresis and hangover.

References: RFC 6464 §3 (audio level in dBov: 0 dBov is the overload point of the codec, so a
full-scale square wave is 0 dBov and a full-scale sine −3 dBov); RFC 3389 §3 (the same scale for
comfort noise); ITU-T P.56 (why a speech detector needs a hangover: speech has short pauses
between syllables that must not toggle the talker state).

Theory of operation. All state lives in arrays of shape ``(N,)`` indexed by leg slot, so one
:meth:`TalkDetector.update` handles every leg of every meeting in a few numpy operations:

* the level of each 20 ms frame is ``10 log10(mean(x²) / 32768²)`` dBov;
* a silent leg starts talking after ``attack_frames`` consecutive frames at or above
  ``start_dbov`` (one loud click does not make a talker);
* a talking leg stops after ``hangover_frames`` consecutive frames below ``stop_dbov``; levels
  between the two thresholds keep the current state (hysteresis, so a level hovering near one
  threshold does not flap).

``update`` returns the legs that started and stopped this tick. Events always pair: a leg that is
removed (:meth:`remove`) or dropped by shrinking (:meth:`resize`) while talking yields its
``stopped`` event there, so a consumer that opens on ``started`` and closes on ``stopped`` never
leaks an open talker. Slots change between ticks only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from media.errors import MediaConfigError

FRAME = 160
_FULL_SCALE_POWER = 32768.0**2
_T = TypeVar("_T", bound=np.generic)
_FLOOR_DBOV = -127.0  # RFC 6464's lowest level; digital silence reports this, not -inf
_NO_LEGS = np.zeros(0, dtype=np.intp)


@dataclass(frozen=True, eq=False)
class TalkEvents:
    """Leg slots that started and stopped talking (ascending, disjoint)."""

    started: NDArray[np.intp]
    stopped: NDArray[np.intp]


def frame_levels(
    frames: NDArray[np.int16], scratch: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """Level of each ``(N, 160)`` int16 frame in dBov, floored at −127 dBov."""
    pcm = scratch if scratch is not None else np.empty(frames.shape, dtype=np.float32)
    np.copyto(pcm, frames)
    power = np.einsum("ij,ij->i", pcm, pcm) / np.float32(FRAME * _FULL_SCALE_POWER)
    np.maximum(power, np.float32(10.0 ** (_FLOOR_DBOV / 10.0)), out=power)
    levels: NDArray[np.float32] = (np.float32(10.0) * np.log10(power)).astype(np.float32)
    return levels


class TalkDetector:
    """Energy talker detector over N leg slots with hysteresis, attack and hangover."""

    def __init__(
        self,
        legs: int = 0,
        *,
        start_dbov: float = -40.0,
        stop_dbov: float = -50.0,
        attack_frames: int = 2,
        hangover_frames: int = 15,
    ) -> None:
        if not _FLOOR_DBOV < stop_dbov <= start_dbov <= 0.0:
            raise MediaConfigError(
                f"talk thresholds need -127 < stop ({stop_dbov}) <= start ({start_dbov}) <= 0 dBov"
            )
        if attack_frames < 1 or hangover_frames < 1:
            raise MediaConfigError(
                f"attack ({attack_frames}) and hangover ({hangover_frames}) must be >= 1 frame"
            )
        self.start_dbov = start_dbov
        self.stop_dbov = stop_dbov
        self.attack_frames = attack_frames
        self.hangover_frames = hangover_frames
        self._talking = np.zeros(0, dtype=np.bool_)
        self._attack = np.zeros(0, dtype=np.int32)
        self._quiet = np.zeros(0, dtype=np.int32)
        self._levels = np.zeros(0, dtype=np.float32)
        self._scratch = np.zeros((0, FRAME), dtype=np.float32)
        self.resize(legs)

    @property
    def legs(self) -> int:
        """Number of leg slots."""
        return len(self._talking)

    @property
    def talking(self) -> NDArray[np.bool_]:
        """Read-only ``(N,)`` view: which legs talk now (feed it to ``media.mixer.mix``)."""
        view = self._talking.view()
        view.flags.writeable = False
        return view

    @property
    def levels(self) -> NDArray[np.float32]:
        """Read-only ``(N,)`` view of the last tick's levels in dBov."""
        view = self._levels.view()
        view.flags.writeable = False
        return view

    def update(self, frames: NDArray[np.int16]) -> TalkEvents:
        """Feed one tick of ``(N, 160)`` int16 frames; returns who started and stopped."""
        if frames.dtype != np.int16 or frames.shape != (self.legs, FRAME):
            raise MediaConfigError(
                f"frames must be int16 of shape ({self.legs}, {FRAME}), "
                f"got {frames.dtype}{frames.shape}"
            )
        self._levels = frame_levels(frames, self._scratch)
        talking = self._talking
        loud = self._levels >= self.start_dbov
        quiet = self._levels < self.stop_dbov
        self._attack = np.where(~talking & loud, self._attack + 1, 0).astype(np.int32)
        self._quiet = np.where(talking & quiet, self._quiet + 1, 0).astype(np.int32)
        start = ~talking & (self._attack >= self.attack_frames)
        stop = talking & (self._quiet >= self.hangover_frames)
        self._attack[start] = 0
        self._quiet[stop] = 0
        talking |= start
        talking &= ~stop
        return TalkEvents(np.flatnonzero(start), np.flatnonzero(stop))

    def remove(self, leg: int) -> TalkEvents:
        """Free a slot (its call left); if it was talking, this is its ``stopped`` event."""
        if not 0 <= leg < self.legs:
            raise MediaConfigError(f"leg {leg} outside [0, {self.legs})")
        was_talking = bool(self._talking[leg])
        self._talking[leg] = False
        self._attack[leg] = 0
        self._quiet[leg] = 0
        self._levels[leg] = _FLOOR_DBOV
        stopped = np.array([leg], dtype=np.intp) if was_talking else _NO_LEGS
        return TalkEvents(_NO_LEGS, stopped)

    def resize(self, legs: int) -> TalkEvents:
        """Grow (new slots are silent) or shrink (dropped talkers yield ``stopped``)."""
        if legs < 0:
            raise MediaConfigError(f"leg count {legs} is negative")
        stopped = np.flatnonzero(self._talking[legs:]) + legs
        keep = min(legs, self.legs)
        self._talking = _resized(self._talking, legs, keep)
        self._attack = _resized(self._attack, legs, keep)
        self._quiet = _resized(self._quiet, legs, keep)
        self._levels = _resized(self._levels, legs, keep)
        self._levels[keep:] = _FLOOR_DBOV
        self._scratch = np.zeros((legs, FRAME), dtype=np.float32)
        return TalkEvents(_NO_LEGS, stopped.astype(np.intp))


def _resized(arr: NDArray[_T], legs: int, keep: int) -> NDArray[_T]:
    out = np.zeros(legs, dtype=arr.dtype)
    out[:keep] = arr[:keep]
    return out
