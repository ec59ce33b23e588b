"""Audio for the conference runtime: prompt lookup and per-call prompt queues.

References: RFC 3550 §5.1 (prompts are sent as the leg's ordinary 20 ms RTP stream), ITU-T
G.711 (prompts are 8 kHz 16-bit like every frame the engine mixes); DESIGN.md §1 point 4.

Theory of operation
-------------------
* :class:`PromptLibrary` turns the prompt *names* the IVR and the meeting service emit into
  8 kHz int16 clips (``conf_server.prompts``), and the entry/exit tones into clips from
  ``media.tones``. A name it does not have (a roll-call name that was never recorded) is
  skipped and reported to the caller, never an exception in the middle of a meeting.
* :class:`Speaker` is one call's prompt queue. The engine plays one clip sequence per leg and a
  new ``play`` cancels the old one, so prompts that must follow each other ("conference_locked"
  then hang-up; "first_participant" after "waiting_for_host") are queued here and started one
  after the other from the engine's ``on_done``. ``stop`` empties the queue without callbacks
  (barge-in); ``when_idle`` runs an action once everything queued has played (a ``Hangup``
  waits for its farewell).

The hold music every held leg hears is read from ``config/prompts/moh.wav`` like any prompt;
``conf_server.prompts_build`` synthesises and writes that file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray

from conf_server.domain.meeting import Tone
from conf_server.engine.legs import Leg
from media import tones

Audio = NDArray[np.int16]
RATE: Final = 8000
Callback = Callable[[], None]


class PlayHandle(Protocol):
    """What the engine returns for a playback (``conf_server.engine.legs.Playback``)."""

    def cancel(self) -> None: ...


class Player(Protocol):
    """The slice of ``MediaEngine`` a speaker needs."""

    def play(
        self,
        leg: Leg,
        clips: Sequence[Audio],
        *,
        exclusive: bool,
        on_done: Callback | None = None,
    ) -> PlayHandle: ...


class PromptLibrary:
    """Prompt names → clips; tones synthesised once."""

    def __init__(self, prompts: Mapping[str, Audio]) -> None:
        self._prompts = dict(prompts)
        self._tones = {Tone.ENTRY: tones.entry_tone(), Tone.EXIT: tones.exit_tone()}

    def __contains__(self, name: object) -> bool:
        return name in self._prompts

    def add(self, name: str, clip: Audio) -> None:
        """Register a clip under ``name`` (a recorded roll-call name)."""
        self._prompts[name] = clip

    def discard(self, name: str) -> None:
        self._prompts.pop(name, None)

    def clips(self, names: Sequence[str]) -> tuple[list[Audio], list[str]]:
        """The clips of ``names`` in order, and the names that have no clip (skipped)."""
        found: list[Audio] = []
        missing: list[str] = []
        for name in names:
            clip = self._prompts.get(name)
            if clip is None:
                missing.append(name)
            else:
                found.append(clip)
        return found, missing

    def tone(self, tone: Tone) -> Audio:
        return self._tones[tone]

    def seconds(self, names: Sequence[str]) -> float:
        """How long ``names`` take to play (for logs that separate prompts from waiting)."""
        clips, _ = self.clips(names)
        return sum(len(c) for c in clips) / RATE


@dataclass(slots=True, eq=False)  # removed from the queue by identity
class _Item:
    clips: list[Audio]
    exclusive: bool
    on_done: Callback | None
    notice: bool = False


MAX_NOTICES: Final = 3  # notices waiting in one call's queue; older ones are dropped


class Speaker:
    """One call's prompt queue on top of the engine's one-playback-per-leg (module docstring)."""

    def __init__(self, player: Player, leg: Leg) -> None:
        self._player = player
        self._leg = leg
        self._queue: deque[_Item] = deque()
        self._current: PlayHandle | None = None
        self._current_item: _Item | None = None
        self._idle_actions: list[Callback] = []
        self.closed = False

    @property
    def idle(self) -> bool:
        return self._current is None and not self._queue

    def say(
        self,
        clips: list[Audio],
        *,
        exclusive: bool,
        on_done: Callback | None = None,
        notice: bool = False,
    ) -> None:
        """Queue ``clips``; ``on_done`` runs when they have played (not after ``stop``).

        A ``notice`` (the meeting telling a caller "you are muted" and the like) may be
        dropped: at most ``MAX_NOTICES`` wait, the oldest goes first. An API client toggling
        mute faster than the prompt plays would otherwise grow the queue without end.
        """
        if self.closed:
            return
        if notice:
            waiting = [item for item in self._queue if item.notice]
            if len(waiting) >= MAX_NOTICES:
                self._queue.remove(waiting[0])
        self._queue.append(_Item(clips, exclusive, on_done, notice))
        if self._current is None:
            self._next()

    def stop(self) -> None:
        """Barge-in: cut the current prompt and drop the queue; no ``on_done`` runs."""
        self._queue.clear()
        current, self._current, self._current_item = self._current, None, None
        if current is not None:
            current.cancel()
        self._run_idle_actions()

    def when_idle(self, action: Callback) -> None:
        """Run ``action`` once everything queued has played (at once if nothing is)."""
        self._idle_actions.append(action)
        if self.idle:
            self._run_idle_actions()

    def close(self) -> None:
        """The call is gone: nothing more is played and no callback runs."""
        self.closed = True
        self._queue.clear()
        self._idle_actions.clear()
        if self._current is not None:
            self._current.cancel()
            self._current = self._current_item = None

    def _next(self) -> None:
        while self._queue and not self.closed:
            item = self._queue.popleft()
            if not item.clips:  # nothing to play (all names missing): it is done at once
                if item.on_done is not None:
                    item.on_done()
                continue
            self._current_item = item
            self._current = self._player.play(
                self._leg, item.clips, exclusive=item.exclusive, on_done=self._finished
            )
            return
        self._run_idle_actions()

    def _finished(self) -> None:
        item = self._current_item
        self._current = self._current_item = None
        if self.closed:
            return
        if item is not None and item.on_done is not None:
            item.on_done()
        if self._current is None:  # on_done may have queued and started the next prompt
            self._next()

    def _run_idle_actions(self) -> None:
        if not self.idle:
            return
        actions, self._idle_actions = self._idle_actions, []
        for action in actions:
            action()
