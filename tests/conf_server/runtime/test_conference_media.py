"""Prompt queues (``Speaker``) and prompt lookup, without an engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conf_server.domain.meeting import Tone
from conf_server.runtime.conference_media import MAX_NOTICES, PromptLibrary, Speaker
from media import tones

LEG: Any = "leg"  # the player double takes any leg


def clip(value: int, n: int = 160) -> NDArray[np.int16]:
    return np.full(n, value, np.int16)


class Handle:
    def __init__(self, clips: Sequence[NDArray[np.int16]], exclusive: bool,
                 on_done: Callable[[], None] | None) -> None:  # fmt: skip
        self.values = [int(c[0]) for c in clips]
        self.exclusive = exclusive
        self.on_done = on_done
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def finish(self) -> None:
        assert self.on_done is not None and not self.cancelled
        self.on_done()


class Player:
    """Records plays like the engine: one playback per leg at a time."""

    def __init__(self) -> None:
        self.plays: list[Handle] = []

    def play(self, leg: Any, clips: Sequence[NDArray[np.int16]], *, exclusive: bool,
             on_done: Callable[[], None] | None = None) -> Handle:  # fmt: skip
        handle = Handle(clips, exclusive, on_done)
        self.plays.append(handle)
        return handle


def test_prompts_play_one_after_the_other_with_their_callbacks() -> None:
    player, done = Player(), []
    speaker = Speaker(player, leg=LEG)
    speaker.say([clip(1), clip(2)], exclusive=True, on_done=lambda: done.append("a"))
    speaker.say([clip(3)], exclusive=False, on_done=lambda: done.append("b"))
    assert [h.values for h in player.plays] == [[1, 2]]  # the second waits its turn
    player.plays[0].finish()
    assert done == ["a"] and [h.values for h in player.plays] == [[1, 2], [3]]
    assert player.plays[1].exclusive is False
    player.plays[1].finish()
    assert done == ["a", "b"] and speaker.idle


def test_waiting_notices_are_bounded_oldest_dropped_and_other_prompts_kept() -> None:
    """An API toggling mute 100 times queues at most MAX_NOTICES announcements, the latest."""
    player, done = Player(), []
    speaker = Speaker(player, leg=LEG)
    speaker.say([clip(1)], exclusive=True, on_done=lambda: done.append("ivr"))  # playing
    speaker.say([clip(2)], exclusive=True, on_done=lambda: done.append("next"))  # not a notice
    for i in range(100):
        speaker.say([clip(100 + i)], exclusive=False, notice=True)
    while not speaker.idle:
        player.plays[-1].finish()
    heard = [h.values[0] for h in player.plays]
    assert heard == [1, 2, *range(200 - MAX_NOTICES, 200)]
    assert done == ["ivr", "next"]


def test_stop_cuts_and_drops_the_queue_without_callbacks() -> None:
    player, done = Player(), []
    speaker = Speaker(player, leg=LEG)
    speaker.say([clip(1)], exclusive=True, on_done=lambda: done.append("a"))
    speaker.say([clip(2)], exclusive=True, on_done=lambda: done.append("b"))
    speaker.stop()
    assert player.plays[0].cancelled and len(player.plays) == 1
    assert done == [] and speaker.idle


def test_when_idle_waits_for_the_queue() -> None:
    player, events = Player(), []
    speaker = Speaker(player, leg=LEG)
    speaker.when_idle(lambda: events.append("idle-at-once"))
    speaker.say([clip(1)], exclusive=True)
    speaker.say([clip(2)], exclusive=True)
    speaker.when_idle(lambda: events.append("hangup"))
    assert events == ["idle-at-once"]
    player.plays[0].finish()
    assert events == ["idle-at-once"]
    player.plays[1].finish()
    assert events == ["idle-at-once", "hangup"]


def test_a_callback_may_queue_the_next_prompt() -> None:
    """The IVR answers PromptFinished with a new prompt from inside the callback."""
    player = Player()
    speaker = Speaker(player, leg=LEG)
    speaker.say([clip(1)], exclusive=True, on_done=lambda: speaker.say([clip(2)], exclusive=True))
    player.plays[0].finish()
    assert [h.values for h in player.plays] == [[1], [2]]


def test_empty_prompt_completes_at_once_and_closed_speaker_is_silent() -> None:
    player, done = Player(), []
    speaker = Speaker(player, leg=LEG)
    speaker.say([], exclusive=True, on_done=lambda: done.append("empty"))
    assert done == ["empty"] and player.plays == []
    speaker.say([clip(1)], exclusive=True, on_done=lambda: done.append("never"))
    speaker.close()
    assert player.plays[0].cancelled
    speaker.say([clip(2)], exclusive=True)
    assert len(player.plays) == 1 and done == ["empty"]


def test_library_reports_missing_names_and_synthesises_tones() -> None:
    library = PromptLibrary({"a": clip(1), "b": clip(2)})
    found, missing = library.clips(["a", "rollcall/x", "b"])
    assert [int(c[0]) for c in found] == [1, 2] and missing == ["rollcall/x"]
    assert np.array_equal(library.tone(Tone.ENTRY), tones.entry_tone())
    assert np.array_equal(library.tone(Tone.EXIT), tones.exit_tone())
    assert library.seconds(["a", "b"]) == 320 / 8000
    library.add("rollcall/x", clip(5))
    assert "rollcall/x" in library
    library.discard("rollcall/x")
    assert "rollcall/x" not in library
