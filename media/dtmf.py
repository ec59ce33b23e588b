"""RFC 4733 telephone-events: payload format (§2.3), receiver (§2.5.2) and sender (§2.5.1).

Theory of operation
-------------------
A key press is sent as a run of RTP packets that all carry the RTP timestamp of the moment the
event began: the first with the marker bit, then updates every ~50 ms whose ``duration`` grows,
then three identical end packets with the E bit. The timestamp therefore identifies the event;
duplicates, reordering and any lost packet other than all of them must still yield one digit.

``DtmfReceiver`` has two states: idle (no current event) and in an event; ``feed`` dispatches
to ``_handle_idle`` or ``_handle_in_event``. It reports a digit
when the event ends — on the first end packet, when a packet of a *newer* event shows that the
end packets of the current one were lost, or from ``poll(now)`` when no packet arrived for
``end_timeout`` seconds. Reported timestamps are remembered so retransmitted end packets and late
updates are ignored: one digit per event. Packets older than the current event are stale.

Events longer than the 16-bit duration (§2.5.1.3, ~8.2 s at 8 kHz) are sent as segments: the
next segment's timestamp is the previous one plus its duration (0xFFFF) and has no marker. The
receiver folds such a segment into the running event instead of reporting a new digit.

``DtmfSender`` produces the payload sequence for one digit (the caller stamps the RTP header with
the event's start timestamp and the stream's next sequence numbers); the post-dial digits of an
outbound call use it.

``Digit`` is shared with in-band detection (``media.inband``) and SIP INFO (``sip``): every
source feeds the IVR the same value.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from media.errors import MediaConfigError, MediaParseError
from media.rtp import ts_delta

KEYS = "0123456789*#ABCD"
"""DTMF keys in RFC 4733 §3.2 event order: event n is ``KEYS[n]`` for n < 16."""
SOURCES = frozenset({"rfc4733", "inband", "info"})
PAYLOAD_LEN = 4
MAX_DURATION = 0xFFFF
MAX_VOLUME = 63

_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class Digit:
    """One key press from any source: ``source`` is "rfc4733", "inband" or "info"."""

    key: str
    duration_ms: int
    source: str

    def __post_init__(self) -> None:
        if len(self.key) != 1 or self.key not in KEYS:
            raise MediaConfigError(f"DTMF key {self.key!r} is not one of {KEYS}")
        if self.source not in SOURCES:
            raise MediaConfigError(f"DTMF source {self.source!r} is not one of {sorted(SOURCES)}")
        if self.duration_ms < 0:
            raise MediaConfigError(f"DTMF duration {self.duration_ms} ms is negative")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte RFC 4733 §2.3 payload: event code, E bit, volume (−dBm0) and duration."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 0xFF:
            raise MediaConfigError(f"telephone-event code {self.event} is outside 0..255")
        if not 0 <= self.volume <= MAX_VOLUME:
            raise MediaConfigError(f"telephone-event volume {self.volume} is outside 0..63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise MediaConfigError(f"telephone-event duration {self.duration} is not 16-bit")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the payload; the R bit is ignored on receipt as §2.3 requires."""
        if len(payload) != PAYLOAD_LEN:
            raise MediaParseError(
                f"telephone-event payload of {len(payload)} bytes (expected {PAYLOAD_LEN})"
            )
        event, flags, duration = _PAYLOAD.unpack(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def key(self) -> str | None:
        """The DTMF key of this event, or None for other events (flash, modem tones…)."""
        return KEYS[self.event] if self.event < len(KEYS) else None


# --------------------------------------------------------------------------- receiver


@dataclass(slots=True)
class _Event:
    first_ts: int  # identifies the event (the digit)
    segment_ts: int  # timestamp of the current §2.5.1.3 segment
    key: str
    base: int  # samples covered by earlier segments
    duration: int  # duration within the current segment
    last_seen: float


class DtmfReceiver:
    """Turns the telephone-event packets of one stream into ``Digit`` values (RFC 4733 §2.5.2)."""

    def __init__(self, clock_rate: int = 8000, end_timeout: float = 0.5, memory: int = 32) -> None:
        if clock_rate <= 0 or end_timeout <= 0:
            raise MediaConfigError(f"bad DTMF receiver setup: {clock_rate} Hz, {end_timeout} s")
        self._rate = clock_rate
        self._timeout = end_timeout
        self._event: _Event | None = None  # None: idle
        self._done: deque[int] = deque(maxlen=memory)  # timestamps already reported
        self.ignored = 0  # stale, duplicate, or non-DTMF event packets

    def feed(self, timestamp: int, marker: bool, payload: bytes, now: float) -> list[Digit]:
        """One telephone-event packet; returns the digits it completes (usually none or one)."""
        ev = TelephoneEvent.parse(payload)
        if ev.key is None or timestamp in self._done:
            self.ignored += 1
            return []
        if self._event is None:
            return self._handle_idle(timestamp, ev, now)
        return self._handle_in_event(self._event, timestamp, marker, ev, now)

    def poll(self, now: float) -> list[Digit]:
        """Report an event whose end packets were all lost, ``end_timeout`` after its last one."""
        cur = self._event
        if cur is not None and now - cur.last_seen >= self._timeout:
            return [self._finish(cur)]
        return []

    @property
    def next_deadline(self) -> float | None:
        """When ``poll`` may next report something (None when idle)."""
        return None if self._event is None else self._event.last_seen + self._timeout

    def _handle_idle(self, ts: int, ev: TelephoneEvent, now: float) -> list[Digit]:
        cur = self._event = _Event(ts, ts, KEYS[ev.event], 0, ev.duration, now)
        return [self._finish(cur)] if ev.end else []

    def _handle_in_event(
        self, cur: _Event, ts: int, marker: bool, ev: TelephoneEvent, now: float
    ) -> list[Digit]:
        if ts == cur.segment_ts:
            return self._update(cur, ev, now)
        if ts_delta(ts, cur.segment_ts) < 0:
            self.ignored += 1  # a late packet of an event already superseded
            return []
        if self._is_next_segment(cur, ts, marker, KEYS[ev.event]):
            cur.base += ts_delta(ts, cur.segment_ts)
            cur.segment_ts = ts
            cur.duration = 0
            return self._update(cur, ev, now)
        # A newer event started: the current one's end packets were lost.
        digits = [self._finish(cur)]
        return digits + self._handle_idle(ts, ev, now)

    def _is_next_segment(self, cur: _Event, ts: int, marker: bool, key: str) -> bool:
        gap = ts_delta(ts, cur.segment_ts)
        return not marker and key == cur.key and gap == cur.duration == MAX_DURATION

    def _update(self, cur: _Event, ev: TelephoneEvent, now: float) -> list[Digit]:
        cur.last_seen = now
        # Reordered updates carry a shorter duration; keep the longest seen.
        cur.duration = max(cur.duration, ev.duration)
        return [self._finish(cur)] if ev.end else []

    def _finish(self, cur: _Event) -> Digit:
        self._done.append(cur.first_ts)
        self._done.append(cur.segment_ts)
        self._event = None
        samples = cur.base + cur.duration
        return Digit(cur.key, samples * 1000 // self._rate, "rfc4733")


# --------------------------------------------------------------------------- sender


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of a digit: send at ``offset_ms`` after the event start with this marker."""

    offset_ms: int
    marker: bool
    payload: bytes


class DtmfSender:
    """RTP payload sequence for a digit (RFC 4733 §2.5.1): start, updates, three end packets."""

    END_COPIES = 3
    END_SPACING_MS = 20

    def __init__(self, clock_rate: int = 8000, volume: int = 10, interval_ms: int = 50) -> None:
        if clock_rate <= 0 or interval_ms <= 0 or not 0 <= volume <= MAX_VOLUME:
            raise MediaConfigError(
                f"bad DTMF sender setup: {clock_rate} Hz, volume {volume}, {interval_ms} ms"
            )
        self._rate = clock_rate
        self._volume = volume
        self._interval = interval_ms

    def packets(self, key: str, duration_ms: int = 100) -> list[EventPacket]:
        """Packets for one press of ``key`` lasting ``duration_ms`` (one RTP timestamp for all).

        Each update announces the duration up to the end of its interval, as an audio packet
        covers its ptime; the end packets carry the full duration. Durations beyond one 16-bit
        segment are not produced here: post-dial digits are short.
        """
        if len(key) != 1 or key not in KEYS:
            raise MediaConfigError(f"DTMF key {key!r} is not one of {KEYS}")
        total = duration_ms * self._rate // 1000
        if not 0 < total <= MAX_DURATION:
            raise MediaConfigError(f"DTMF duration {duration_ms} ms is outside one event segment")
        event = KEYS.index(key)
        out = []
        for offset in range(0, duration_ms, self._interval):
            dur = min(total, (offset + self._interval) * self._rate // 1000)
            payload = bytes(TelephoneEvent(event, False, self._volume, dur))
            out.append(EventPacket(offset, offset == 0, payload))
        end = bytes(TelephoneEvent(event, True, self._volume, total))
        out += [
            EventPacket(duration_ms + i * self.END_SPACING_MS, False, end)
            for i in range(self.END_COPIES)
        ]
        return out
