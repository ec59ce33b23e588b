"""The typed seams of the runtime: what the conference wiring asks of the media engine, and what
a party in a meeting offers the conference.

Theory of operation
-------------------
The conference wiring (``conference.py``, ``conference_ivr.py``, ``conference_media.py``) sits
between three things that know nothing of each other: the media engine (``runtime/engine.py``
driving ``conf_server/engine``), the parties of a meeting, and the domain's meeting service. It
depends on the first two only through the protocols here, so a test can hand it a recording
double and a new kind of party needs no change to it.

* :class:`EngineControl` — the engine's commands. Every one is queued and applied between ticks
  by the engine thread (DESIGN: nothing touches a leg from the loop thread), including
  ``watch_talking``, which used to be a plain attribute write from the loop.
* :class:`Party` — one leg of a meeting as the conference sees it: an identity (``id``,
  ``caller``, ``did``, ``source_ip``), a :class:`Direction`, the media ``leg`` (its codec in
  ``leg.params``), a bound logger, and the two things only its own layer can do: run a task for
  it (``spawn``, cancelled when it ends) and end it (``hang_up``). Today the inbound SIP call
  (``calls.Call``) is the one kind; outbound SIP calls, WebRTC participants and cascade links
  are the next, each from its own layer, each a ``Party``. The role is the meeting's business
  (the domain's participant record), not the party's.

Because a party ends itself, the conference needs no handle on the call layer: the old
two-phase ``Conference.attach(manager)`` is gone and the objects are built once, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from enum import Enum
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from conf_server.engine.legs import DoneCallback, Leg, Playback, RecordCallback, TalkCallback
from conf_server.store.records import DidInfo


class Direction(Enum):
    """Who placed the call: the party dialled in, or we dialled out to it."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EngineControl(Protocol):
    """The media engine's commands the conference wiring uses (``runtime.engine.MediaEngine``)."""

    def join(self, leg: Leg, meeting: str) -> None: ...
    def leave(self, leg: Leg) -> None: ...
    def set_flags(
        self,
        leg: Leg,
        *,
        muted: bool | None = None,
        deaf: bool | None = None,
        held: bool | None = None,
        listener: bool | None = None,
        gain_in_db: float | None = None,
        gain_out_db: float | None = None,
    ) -> None: ...
    def play(
        self,
        leg: Leg,
        clips: Sequence[NDArray[np.int16]],
        *,
        exclusive: bool,
        on_done: DoneCallback | None = None,
    ) -> Playback: ...
    def play_meeting(
        self,
        meeting: str,
        clips: Sequence[NDArray[np.int16]],
        *,
        on_done: DoneCallback | None = None,
        exclude: Sequence[Leg] = (),
    ) -> Playback: ...
    def record(self, leg: Leg, seconds: float, on_done: RecordCallback) -> None: ...
    def set_music_on_hold(self, samples: NDArray[np.int16]) -> None: ...
    def watch_talking(self, leg: Leg, callback: TalkCallback | None) -> None: ...


class Party(Protocol):
    """One leg of a meeting as the conference sees it, whatever layer brought it in."""

    @property
    def id(self) -> str: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def caller(self) -> str: ...
    @property
    def did(self) -> str: ...
    @property
    def source_ip(self) -> str: ...
    @property
    def did_info(self) -> DidInfo | None: ...  # the DID record it reached us on (None outbound)
    @property
    def leg(self) -> Leg | None: ...
    @property
    def answered(self) -> float | None: ...  # loop time it was answered (joined the engine)

    log: Any  # a structlog bound logger with the party's context; the conference adds to it

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run a coroutine for this party; cancelled when it ends, a failure ends it."""

    def hang_up(self) -> None:
        """End this party's call from our side."""
