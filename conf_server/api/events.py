"""Meeting events for applications: JSON envelopes, the resumable SSE stream and webhooks.

Sources: the WHATWG HTML "Server-sent events" section (``id:``, ``event:``, ``data:`` fields,
``Last-Event-ID`` on reconnect); the issue's event list (meeting started/ended, call
joined/left, muted, talking, locked, hold, keypad sequences).

Theory of operation
-------------------
``EventHub.publish`` receives every domain event from ``LiveControl.subscribe``. It gives the
event a process-wide id (an increasing integer, the SSE id), builds its JSON envelope once::

    {"id": "17", "type": "call.muted", "time": 1700000000123, "meetingNumber": 100001,
     "instance": 1, "sequence": 4, "data": {"call": "…", "muted": true, "by": "api"}}

(``sequence`` is the meeting instance's own counter, so a receiver can order and spot gaps),
keeps it in a bounded ring (``event_window`` events) for SSE resumption, wakes the SSE
streams, and hands it to the webhook ``Deliverer`` for the room owner's callback URL. Publishing
does constant work and never waits; an event arriving from another thread is moved to the
loop first. An SSE client resuming with a ``Last-Event-ID`` older than the ring gets a
``reset`` event first, so it knows events were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Final

from conf_server.api.webhooks import Deliverer, Delivery
from conf_server.domain.meeting import (
    CallHeld,
    CallJoined,
    CallLeft,
    CallMuted,
    CallRefused,
    Event,
    KeypadSequence,
    LockChanged,
    MeetingEnded,
    MeetingStarted,
    TalkingChanged,
)
from conf_server.logs import get_logger
from conf_server.store import Store

HEARTBEAT: Final = 15.0
_CLIENT_QUEUE: Final = 1000
_OWNER_TTL: Final = 5.0
_COMMON: Final = frozenset({"room", "instance", "seq", "at"})
log = get_logger("api.events")


def _flag(on: str, off: str, attr: str) -> Callable[[Event], str]:
    return lambda e: on if getattr(e, attr) else off


EVENT_TYPES: Final[Mapping[type[Event], Callable[[Event], str]]] = {
    MeetingStarted: lambda e: "meeting.started",
    MeetingEnded: lambda e: "meeting.ended",
    CallJoined: lambda e: "call.joined",
    CallRefused: lambda e: "call.refused",
    CallLeft: lambda e: "call.left",
    CallMuted: _flag("call.muted", "call.unmuted", "muted"),
    CallHeld: _flag("call.held", "call.unheld", "held"),
    LockChanged: _flag("meeting.locked", "meeting.unlocked", "locked"),
    TalkingChanged: _flag("call.talking.started", "call.talking.stopped", "talking"),
    KeypadSequence: lambda e: "call.keypad",
}
"""Domain event class → the event ``type`` an application sees."""


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True, slots=True)
class Published:
    """One event as applications see it; ``body`` is the JSON sent to webhooks and SSE."""

    id: int
    room: str
    type: str
    body: bytes


def envelope(event: Event, event_id: int, wall_ms: int) -> dict[str, Any]:
    name = EVENT_TYPES[type(event)](event)
    data = {f.name: _plain(getattr(event, f.name)) for f in fields(event) if f.name not in _COMMON}
    number: int | str = int(event.room) if event.room.isdigit() else event.room
    return {
        "id": str(event_id),
        "type": name,
        "time": wall_ms,
        "meetingNumber": number,
        "instance": event.instance,
        "sequence": event.seq,
        "data": data,
    }


class EventHub:
    """Fan-out of meeting events (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer | None,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._deliverer = deliverer
        self._clock = clock
        self._ring: deque[Published] = deque(maxlen=max(1, window))
        self._next_id = 1
        self._clients: set[asyncio.Queue[Published | None]] = set()
        self._owners: dict[str, tuple[float, str]] = {}  # room → (expiry, callback url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._outbox: deque[Published] = deque()
        self._outbox_ready = asyncio.Event()
        self._router: asyncio.Task[None] | None = None

    def bind_loop(self) -> None:
        """Remember the loop publishing must run on (call from inside it)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        if self._deliverer is not None and self._router is None:
            self._router = self._loop.create_task(self._route(self._deliverer))

    def on_event(self, event: Event) -> None:
        """The ``LiveControl.subscribe`` listener: safe from any thread."""
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.publish, event)
        else:
            self.publish(event)

    def publish(self, event: Event) -> Published:
        wall_ms = int(self._clock() * 1000)
        body = json.dumps(envelope(event, self._next_id, wall_ms), separators=(",", ":"))
        item = Published(self._next_id, event.room, EVENT_TYPES[type(event)](event), body.encode())
        self._next_id += 1
        self._ring.append(item)
        for client in list(self._clients):
            if client.qsize() >= _CLIENT_QUEUE:
                # A stalled reader is cut off (the spare slot carries the end mark); it may
                # reconnect and resume by Last-Event-ID.
                self._clients.discard(client)
                client.put_nowait(None)
                continue
            client.put_nowait(item)
        if self._deliverer is not None:
            self._outbox.append(item)
            self._outbox_ready.set()
        return item

    async def _route(self, deliverer: Deliverer) -> None:
        """One task resolves callback URLs in publication order, so order survives lookups."""
        while True:
            while not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
            item = self._outbox.popleft()
            url = await self._callback_url(item.room)
            if url:
                deliverer.submit(url, Delivery(item.body, str(item.id)))

    async def _callback_url(self, room: str) -> str:
        """The room owner's callback URL, cached for a few seconds."""
        now = self._clock()
        cached = self._owners.get(room)
        if cached is not None and cached[0] > now:
            return cached[1]
        url = ""
        if room.isdigit():
            rooms = await self._store.list_rooms()
            owner = next(
                (r.subscriber_sid for r in rooms.items if str(r.meeting_number) == room), None
            )
            if owner is not None:
                found = await self._store.get_subscriber(owner)
                url = found.callback_url
        self._owners[room] = (now + _OWNER_TTL, url)
        return url

    def since(self, last_id: int | None) -> tuple[list[Published], bool]:
        """Buffered events after ``last_id``, and whether some were already dropped."""
        if last_id is None:
            return [], False
        kept = [p for p in self._ring if p.id > last_id]
        oldest = self._ring[0].id if self._ring else self._next_id
        return kept, last_id + 1 < oldest

    async def stream(
        self, rooms: frozenset[str] | None, last_id: int | None
    ) -> AsyncIterator[bytes]:
        """SSE bytes for the events of ``rooms`` (None: all) after ``last_id``, then live ones."""
        queue: asyncio.Queue[Published | None] = asyncio.Queue(_CLIENT_QUEUE + 1)
        self._clients.add(queue)
        try:
            backlog, lost = self.since(last_id)
            if lost:
                yield b"event: reset\ndata: {}\n\n"
            for item in backlog:
                if rooms is None or item.room in rooms:
                    yield _sse(item)
            yield b": connected\n\n"
            while True:
                try:
                    arrived = await asyncio.wait_for(queue.get(), HEARTBEAT)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if arrived is None:
                    return
                if rooms is None or arrived.room in rooms:
                    yield _sse(arrived)
        finally:
            self._clients.discard(queue)

    async def close(self) -> None:
        if self._router is not None:
            self._router.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._router
        if self._deliverer is not None:
            await self._deliverer.close()


def _sse(item: Published) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (item.id, item.type.encode(), item.body)
