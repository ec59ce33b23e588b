"""Audio for the conference runtime: prompt lookup, per-call prompt queues, music on hold.

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
* :func:`music_on_hold` synthesises the hold music: a few bars of a soft I–vi–IV–V arpeggio
  with a bass note, loopable without a click; ``python -m conf_server.runtime.conference_media
  FILE`` writes it as the committed ``config/prompts/moh.wav``.
"""

from __future__ import annotations

import sys
import wave
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from conf_server.domain.meeting import Tone
from media import tones

Audio = NDArray[np.int16]
RATE: Final = 8000
Callback = Callable[[], None]


class PlayHandle(Protocol):
    """What the engine returns for a playback (``runtime.legs.Playback``)."""

    def cancel(self) -> None: ...


class Player(Protocol):
    """The slice of ``MediaEngine`` a speaker needs."""

    def play(
        self,
        leg: Any,
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

    def __init__(self, player: Player, leg: Any) -> None:
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


# --- music on hold ---------------------------------------------------------------------------

_BEAT: Final = 0.3  # seconds per arpeggio note (100 bpm in eighths)
# I–vi–IV–V in C: each bar is a bass note and a four-note arpeggio (Hz).
_BARS: Final = (
    (130.81, (261.63, 329.63, 392.00, 523.25)),
    (110.00, (220.00, 261.63, 329.63, 440.00)),
    (87.31, (174.61, 220.00, 261.63, 349.23)),
    (98.00, (196.00, 246.94, 293.66, 392.00)),
)


def _note(freq: float, seconds: float, level: float) -> NDArray[np.float64]:
    """A plucked note: fast attack, exponential decay, a soft second harmonic."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.exp(-3.0 * t / seconds) * np.minimum(1.0, t / 0.01)
    wave_ = np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)
    result: NDArray[np.float64] = level * envelope * wave_
    return result


def music_on_hold(repeats: int = 2, level_dbfs: float = -18.0) -> Audio:
    """A loopable hold tune (``repeats`` times the four bars); whole 20 ms frames."""
    peak = tones.FULL_SCALE * 10 ** (level_dbfs / 20.0)
    bar_len = int(4 * _BEAT * RATE)
    parts: list[NDArray[np.float64]] = []
    for _ in range(repeats):
        for bass, arpeggio in _BARS:
            bar = np.zeros(bar_len)
            bar += _note(bass, 4 * _BEAT, 0.5 * peak)
            for i, freq in enumerate(arpeggio):
                start = int(i * _BEAT * RATE)
                note = _note(freq, 2 * _BEAT, 0.45 * peak)[: bar_len - start]
                bar[start : start + len(note)] += note
            parts.append(bar)
    samples = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    return tones.pad_to_frames(samples)


def write_wav(path: Path, samples: Audio) -> None:
    """Write 8 kHz mono 16-bit PCM (the prompt format ``conf_server.prompts`` reads)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())


def main(argv: Sequence[str]) -> int:
    """``python -m conf_server.runtime.conference_media FILE``: write the hold music."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m conf_server.runtime.conference_media FILE.wav\n")
        return 2
    write_wav(Path(argv[0]), music_on_hold())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
