"""Prompts of the media tick: per-leg and per-meeting playbacks turned into mixer overlays.

References: RFC 3550 §5.1 (prompts go out as the leg's ordinary 20 ms stream); ITU-T G.711
(8 kHz 16-bit frames like everything the mixer handles); RFC 4579 §5 (the focus plays
announcements into the conference mix).

Theory of operation. :class:`PromptOverlays` keeps what is being played: at most one prompt per
leg (a new one cancels the old, because an IVR prompt replaces the previous one) and any number
of overlapping prompts per meeting (an entry tone over an announcement). Each tick
:meth:`PromptOverlays.leg_overlays` and :meth:`PromptOverlays.meeting_overlays` advance every
player by one frame and build the mixer's ``LegOverlays`` / ``MeetingOverlays``; a player that
ran out is dropped and its handle's ``on_done`` is handed to ``finish`` (the core queues it in
its outbox), a cancelled one is dropped silently. A meeting prompt may leave legs out (an
entrant does not hear its own entry tone): each such leg gets the sum of the meeting's other
running prompts in place of the meeting's overlay frame, only while it is still that live leg
and in that meeting. It is split from ``conf_server.engine.core`` to keep both modules short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from conf_server.engine.legs import Leg, Playback
from media.mixer import LegOverlays, MeetingOverlays
from media.playback import PromptPlayer

FRAME = 160
Finish = Callable[[Playback], None]


@dataclass(eq=False)
class _MeetingPlay:
    player: PromptPlayer
    handle: Playback
    exclude: tuple[Leg, ...] = ()  # legs that do not hear this overlay (an entrant's own tone)


@dataclass(eq=False)
class _LegPlay:
    player: PromptPlayer
    exclusive: bool
    handle: Playback


_Heard = list[tuple[_MeetingPlay, NDArray[np.int16]]]


class PromptOverlays:
    """The running per-leg and per-meeting prompts of one media core (see module docstring)."""

    def __init__(self, capacity: int, finish: Finish) -> None:
        self.capacity = capacity
        self._finish = finish
        self.leg_play: dict[int, _LegPlay] = {}
        self.meeting_play: dict[str, list[_MeetingPlay]] = {}

    def play(self, slot: int, player: PromptPlayer, *, exclusive: bool, handle: Playback) -> None:
        """Play to one leg, replacing (cancelling) what it was playing."""
        self.cancel(slot)
        self.leg_play[slot] = _LegPlay(player, exclusive, handle)

    def cancel(self, slot: int) -> None:
        """Cancel the leg's prompt, if any (the leg left or a new prompt replaces it)."""
        old = self.leg_play.pop(slot, None)
        if old is not None:
            old.handle.cancelled = True

    def play_meeting(
        self, meeting: str, player: PromptPlayer, handle: Playback, exclude: Sequence[Leg]
    ) -> None:
        """Play into a meeting beside what it already plays; ``exclude`` legs do not hear it."""
        play = _MeetingPlay(player, handle, tuple(exclude))
        self.meeting_play.setdefault(meeting, []).append(play)

    def leg_overlays(self) -> LegOverlays | None:
        """This tick's per-leg prompt frames, or None when no leg plays one."""
        if not self.leg_play:
            return None
        slots: list[int] = []
        frames: list[NDArray[np.int16]] = []
        exclusive: list[bool] = []
        for slot, play in list(self.leg_play.items()):
            frame = None if play.handle.cancelled else play.player.next_frame()
            if frame is None:
                del self.leg_play[slot]
                if not play.handle.cancelled:
                    self._finish(play.handle)
                continue
            slots.append(slot)
            frames.append(frame)
            exclusive.append(play.exclusive)
        if not slots:
            return None
        return LegOverlays.of(slots, np.stack(frames), exclusive, self.capacity)

    def meeting_overlays(
        self, legs: Sequence[Leg | None], index: Mapping[str, int], meetings: int
    ) -> MeetingOverlays | None:
        """This tick's meeting prompt frames for the plan's meetings (``index``: name → row)."""
        if not self.meeting_play:
            return None
        rows: list[int] = []
        frames: list[NDArray[np.int32]] = []
        instead: dict[int, NDArray[np.int32]] = {}  # excluded slot -> the prompts it hears
        for name, plays in list(self.meeting_play.items()):
            heard = self._next_frames(plays)
            if not plays:
                del self.meeting_play[name]
            if name not in index or not heard:
                continue
            rows.append(index[name])
            frames.append(_wide_sum(frame for _, frame in heard))
            for slot in _excluded_slots(legs, name, heard):
                instead[slot] = _wide_sum(
                    f for p, f in heard if all(leg.slot != slot for leg in p.exclude)
                )
        if not rows:
            return None
        slots = sorted(instead)
        return MeetingOverlays.of(
            rows,
            _clip16(np.stack(frames)),
            meetings,
            excluded=slots,
            excluded_frames=_clip16(
                np.array([instead[s] for s in slots], np.int32).reshape(-1, FRAME)
            ),
            leg_count=self.capacity,
        )

    def _next_frames(self, plays: list[_MeetingPlay]) -> _Heard:
        """This tick's frame of every running play; finished and cancelled ones are dropped."""
        out = []
        for play in list(plays):
            frame = None if play.handle.cancelled else play.player.next_frame()
            if frame is None:
                plays.remove(play)
                if not play.handle.cancelled:
                    self._finish(play.handle)
                continue
            out.append((play, frame))
        return out


def _excluded_slots(legs: Sequence[Leg | None], meeting: str, heard: _Heard) -> set[int]:
    """Slots of live legs of ``meeting`` left out of at least one of its running plays."""
    return {
        leg.slot
        for play, _ in heard
        for leg in play.exclude
        if legs[leg.slot] is leg and leg.meeting == meeting
    }


def _wide_sum(frames: Iterable[NDArray[np.int16]]) -> NDArray[np.int32]:
    total = np.zeros(FRAME, np.int32)
    for frame in frames:
        total += frame
    return total


def _clip16(wide: NDArray[np.int32]) -> NDArray[np.int16]:
    return np.clip(wide, -32768, 32767).astype(np.int16)
