"""``conf-server mixdown``: the media engine on a virtual clock, fed by WAV files.

References: RFC 3550 §5.1 (each file leg is a phone sending one 20 ms G.711 RTP packet per tick,
with its own SSRC, sequence and timestamp), RFC 4733 §2.5.1 (digits of legs that negotiated
telephone-event are sent as event packets: start, updates, three end packets, in the same
sequence space as the audio), ITU-T Q.23 (other legs key their digits in-band as tone pairs),
ITU-T G.711 (every frame is encoded on the way in and decoded on the way out).

Theory of operation. A timeline (TOML) names the legs, each with an input WAV (8 kHz mono
16-bit, padded with silence when shorter than the run) and a codec, and lists timed events.
:func:`load_timeline` validates all of it up front; any problem is a :class:`TimelineError` whose
one-line message names the file, the key path (``events[3].meeting``) and the reason.
:class:`Mixdown` then runs the very ``MediaCore`` the live engine runs — there is no second
mixer. For tick ``k`` (``now = k × 20 ms``, no sleeping) it applies the events due at or before
``now`` in file order, encodes frame ``k`` of every input (and any due telephone-event packets)
into an ``RxBatch``, calls ``MediaCore.tick`` and decodes the payload each leg is sent into
frame ``k`` of ``<leg>.wav``. What a leg hears therefore lags the others' inputs by the jitter
buffer's playout delay, exactly as on the wire; topology changes (join, leave, flags) act from
the tick they are applied on. The callbacks the core queues (digits, talking started/stopped,
prompt done) are run after each tick and recorded with that tick's time in ``events.json``,
together with each leg's summary (packets, loss, jitter, digits, RTCP) taken when the leg is
removed at the end. Every random choice (SSRCs, sequence and timestamp origins, comfort noise)
comes from generators seeded by ``seed``, so the same inputs give byte-identical outputs.

Example timeline (paths are relative to the timeline file; ``at`` is in seconds; an event acts
from the first tick starting at or after it; the run stops before the one ``end`` event)::

    seed = 7                            # optional, default 0
    music_on_hold = "moh.wav"           # optional: what held legs hear
    # actions: join leave mute unmute deaf undeaf hold unhold gain digits prompt tone end
    events = [
      { at = 0.0, action = "join", leg = "alice", meeting = "standup" },
      { at = 0.0, action = "join", leg = "bob", meeting = "standup", listener = false },
      { at = 1.0, action = "digits", leg = "bob", digits = "12#", duration_ms = 100 },
      { at = 1.5, action = "gain", leg = "alice", out_db = -6.0 },    # in_db/out_db in [-20, 20]
      { at = 2.0, action = "tone", meeting = "standup", freqs = [440.0, 480.0], duration_ms = 500 },
      { at = 3.0, action = "prompt", leg = "alice", file = "moh.wav", exclusive = true },
      { at = 4.0, action = "end" },
    ]

    [legs.alice]
    input = "alice.wav"                 # optional (no input: silence); longer inputs are cut
    codec = "PCMU"                      # PCMU (default) or PCMA
    dtmf = "rfc4733"                    # rfc4733 (default) or inband

    [legs.bob]
    input = "bob.wav"
    codec = "PCMA"
    dtmf = "inband"
"""

from __future__ import annotations

import argparse
import json
import math
import re
import struct
import sys
import tomllib
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conf_server.engine.core import FRAME, TICK, MediaCore, RxBatch
from conf_server.engine.legs import Leg, Playback
from conf_server.prompts import PromptError, read_prompt
from media import g711, tones
from media.dtmf import KEYS, Digit, DtmfSender
from media.errors import MediaConfigError
from media.mixer import MAX_GAIN_DB, MIN_GAIN_DB
from media.playback import PromptPlayer
from sip.offer_answer import MediaParams
from sip.sdp import PCMA, PCMU, Codec, Direction

RATE = 8000
EXIT_USAGE = 2
DTMF_PT = 101
MAX_SECONDS = 3600.0  # an hour of virtual time is far beyond any debugging session
_LEG_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CODECS: dict[str, Codec] = {"PCMU": PCMU, "PCMA": PCMA}
_DTMF_MODES = ("rfc4733", "inband")
_RTP_HEADER = struct.Struct("!BBHII")
_ROW_LEN = 256  # audio packets are 172 bytes, event packets 16


class TimelineError(ValueError):
    """A bad timeline; the message is one line: ``<file>: <key path>: <reason>``."""


# -- the timeline ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegSpec:
    """One file leg: what it sends and how it negotiated."""

    name: str
    samples: NDArray[np.int16]
    codec: Codec
    inband: bool


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One timed action; ``fields`` holds the action's validated arguments."""

    index: int
    tick: int
    action: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Timeline:
    """A validated timeline: legs by name, events in application order, run length in ticks."""

    path: Path
    legs: dict[str, LegSpec]
    events: list[EventSpec]
    ticks: int
    seed: int
    music_on_hold: NDArray[np.int16] | None


class _Table:
    """Typed access to one TOML table; every error names the file and the key path."""

    def __init__(self, data: object, source: Path, where: str) -> None:
        if not isinstance(data, dict):
            raise TimelineError(f"{source}: {where or '(top)'}: expected a table")
        self.data: dict[str, object] = data
        self.source, self.where = source, where
        self.used: set[str] = set()

    def error(self, key: str, reason: str) -> TimelineError:
        path = f"{self.where}.{key}" if self.where else key
        return TimelineError(f"{self.source}: {path}: {reason}")

    def get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a flag written where a number belongs is still a mistake.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(key, f"expected {what}, got {value!r}")
        return value

    def need(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = self.get(key, kind, what)
        if value is None:
            raise self.error(key, f"missing ({what} required)")
        return value

    def number(self, key: str, lo: float, hi: float, default: float | None = None) -> float | None:
        value = self.get(key, (int, float), "a number")
        if value is None:
            return default
        if not lo <= float(value) <= hi:
            raise self.error(key, f"{value} outside [{lo:g}, {hi:g}]")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, "a string")
        if value is None:
            return default
        if value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    def audio(self, key: str, required: bool) -> NDArray[np.int16] | None:
        value = (self.need if required else self.get)(key, str, "a WAV file path")
        if value is None:
            return None
        try:
            return read_prompt(self.source.parent / value)
        except PromptError as exc:
            raise self.error(key, str(exc)) from None

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _target(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    leg, meeting = table.get("leg", str, "a leg name"), table.get("meeting", str, "a name")
    if (leg is None) == (meeting is None):
        raise table.error("leg", "name exactly one of leg or meeting")
    if meeting is not None:
        fields["meeting"] = meeting
        return
    _leg_field(table, legs, fields)
    exclusive = table.get("exclusive", bool, "true or false")
    fields["exclusive"] = bool(exclusive)


def _leg_field(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    name = table.need("leg", str, "a leg name")
    if name not in legs:
        raise table.error("leg", f"unknown leg {name!r} (legs: {', '.join(sorted(legs))})")
    fields["leg"] = name


def _parse_join(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    _leg_field(table, legs, fields)
    meeting = table.need("meeting", str, "a meeting name")
    if not meeting:
        raise table.error("meeting", "empty meeting name")
    fields["meeting"] = meeting
    fields["listener"] = bool(table.get("listener", bool, "true or false"))


def _parse_gain(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    _leg_field(table, legs, fields)
    fields["gain_in_db"] = table.number("in_db", MIN_GAIN_DB, MAX_GAIN_DB)
    fields["gain_out_db"] = table.number("out_db", MIN_GAIN_DB, MAX_GAIN_DB)
    if fields["gain_in_db"] is None and fields["gain_out_db"] is None:
        raise table.error("in_db", "a gain event needs in_db and/or out_db")


def _parse_digits(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    _leg_field(table, legs, fields)
    digits = table.need("digits", str, "a string of DTMF keys")
    bad = [key for key in digits.upper() if key not in KEYS]
    if not digits or bad:
        raise table.error("digits", f"{digits!r} is not a string of DTMF keys ({KEYS})")
    fields["digits"] = digits.upper()
    # RFC 4733 senders announce durations in one 16-bit segment; 40 ms is the Q.24 minimum.
    fields["duration_ms"] = int(table.number("duration_ms", 40, 2000, 100) or 0)
    fields["gap_ms"] = int(table.number("gap_ms", 40, 2000, 100) or 0)


def _parse_prompt(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    _target(table, legs, fields)
    fields["clip"] = table.audio("file", required=True)
    fields["name"] = table.data["file"]


def _parse_tone(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    _target(table, legs, fields)
    freqs = table.need("freqs", list, "a list of frequencies in Hz")
    duration = table.number("duration_ms", 20, MAX_SECONDS * 1000)
    if duration is None:
        raise table.error("duration_ms", "missing (a number required)")
    level = table.number("level_dbfs", -90.0, 0.0, -12.0)
    if not freqs or not all(isinstance(f, int | float) and not isinstance(f, bool) for f in freqs):
        raise table.error("freqs", f"expected a non-empty list of numbers, got {freqs!r}")
    try:
        fields["clip"] = tones.tone([float(f) for f in freqs], int(duration), float(level or 0))
    except MediaConfigError as exc:
        raise table.error("freqs", str(exc)) from None
    fields["name"] = "tone " + "+".join(f"{float(f):g}" for f in freqs)


def _parse_nothing(table: _Table, legs: Mapping[str, LegSpec], fields: dict[str, Any]) -> None:
    """``end`` takes no arguments."""


_EventParser = Callable[[_Table, Mapping[str, LegSpec], dict[str, Any]], None]
# Actions that only set one of the core's leg flags: action -> (flag, value).
# mute/unmute, deaf/undeaf, hold/unhold.
_FLAG_ACTIONS = {
    prefix + action: (flag, not prefix)
    for action, flag in (("mute", "muted"), ("deaf", "deaf"), ("hold", "held"))
    for prefix in ("", "un")
}
_LEG_ACTIONS = ("leave", *_FLAG_ACTIONS)
_EVENT_PARSERS: dict[str, _EventParser] = {
    "join": _parse_join,
    **dict.fromkeys(_LEG_ACTIONS, _leg_field),
    "gain": _parse_gain,
    "digits": _parse_digits,
    "prompt": _parse_prompt,
    "tone": _parse_tone,
    "end": _parse_nothing,
}


def _parse_leg(name: str, data: object, source: Path) -> LegSpec:
    table = _Table(data, source, f"legs.{name}")
    if not _LEG_NAME.fullmatch(name):
        raise TimelineError(f"{source}: legs.{name}: leg names are 1-64 of A-Z a-z 0-9 _ -")
    samples = table.audio("input", required=False)
    codec = table.choice("codec", tuple(_CODECS), "PCMU")
    dtmf = table.choice("dtmf", _DTMF_MODES, "rfc4733")
    table.finish()
    empty = np.zeros(0, np.int16)
    return LegSpec(name, empty if samples is None else samples, _CODECS[codec], dtmf == "inband")


def _parse_event(index: int, data: object, source: Path, legs: Mapping[str, LegSpec]) -> EventSpec:
    table = _Table(data, source, f"events[{index}]")
    at = table.number("at", 0.0, MAX_SECONDS)
    if at is None:
        raise table.error("at", "missing (seconds from the start required)")
    action = table.need("action", str, "an action name")
    parser = _EVENT_PARSERS.get(action)
    if parser is None:
        raise table.error(
            "action", f"unknown action {action!r} (one of {', '.join(_EVENT_PARSERS)})"
        )
    fields: dict[str, Any] = {}
    parser(table, legs, fields)
    table.finish()
    # The event acts on the first tick that starts at or after its time.
    tick = math.ceil(round(at / TICK, 6))
    return EventSpec(index, tick, action, fields)


def load_timeline(path: Path) -> Timeline:
    """Read and validate a timeline file; raises :class:`TimelineError` naming file and key."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise TimelineError(f"{path}: (file): cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TimelineError(f"{path}: (file): not valid TOML ({exc})") from None
    top = _Table(data, path, "")
    seed = top.get("seed", int, "an integer")
    moh = top.audio("music_on_hold", required=False)
    raw_legs = top.need("legs", dict, "a table of legs")
    if not raw_legs:
        raise top.error("legs", "no legs")
    legs = {name: _parse_leg(name, raw, path) for name, raw in raw_legs.items()}
    raw_events = top.need("events", list, "an array of [[events]] tables")
    top.finish()
    events = [_parse_event(i, raw, path, legs) for i, raw in enumerate(raw_events)]
    ends = [e for e in events if e.action == "end"]
    if len(ends) != 1:
        where = "events" if not ends else f"events[{ends[1].index}]"
        raise TimelineError(f"{path}: {where}: need exactly one 'end' event, got {len(ends)}")
    end = ends[0]
    late = [e for e in events if e.tick > end.tick]
    if late:
        raise TimelineError(f"{path}: events[{late[0].index}].at: after the 'end' event")
    if end.tick == 0:
        raise TimelineError(f"{path}: events[{end.index}].at: the run must last at least 20 ms")
    ordered = sorted((e for e in events if e.action != "end"), key=lambda e: (e.tick, e.index))
    return Timeline(path, legs, ordered, end.tick, int(seed or 0), moh)


# -- the run ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Phone:
    """A file leg seen from the network: its RTP stream in, what it is sent out."""

    spec: LegSpec
    leg: Leg
    samples: NDArray[np.int16]  # the whole run, padded; in-band digits are keyed into it
    ssrc: int
    seq: int
    ts: int
    heard: NDArray[np.int16]
    events: dict[int, list[tuple[int, bool, bytes]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MixdownResult:
    """What a run produced: per-leg audio heard (1-D int16), the event log, per-leg stats."""

    heard: dict[str, NDArray[np.int16]]
    events: list[dict[str, Any]]
    legs: dict[str, dict[str, float | int | None]]
    ticks: int

    def as_json(self) -> dict[str, Any]:
        """The ``events.json`` document."""
        return {"tick_ms": round(TICK * 1000), "ticks": self.ticks, "events": self.events,
                "legs": self.legs}  # fmt: skip


def _params(spec: LegSpec) -> MediaParams:
    # A file leg answers like a phone on loopback: sendrecv, G.711 at 20 ms.
    dtmf = None if spec.inband else DTMF_PT
    return MediaParams("127.0.0.1", 9, spec.codec, dtmf, 20, Direction.SENDRECV, on_hold=False)


class Mixdown:
    """Runs one timeline through a ``MediaCore`` tick by tick on a virtual clock."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        streams = np.random.default_rng([timeline.seed, 1])
        legs = timeline.legs
        self.core = MediaCore(len(legs), rng=np.random.default_rng([timeline.seed, 0]))
        if timeline.music_on_hold is not None and len(timeline.music_on_hold):
            self.core.set_music_on_hold(timeline.music_on_hold)
        self.log: list[dict[str, Any]] = []
        self.tick_index = 0
        self.phones: dict[str, _Phone] = {}
        total = timeline.ticks * FRAME
        for number, spec in enumerate(legs.values(), start=1):
            samples = np.zeros(total, np.int16)
            n = min(total, len(spec.samples))
            samples[:n] = spec.samples[:n]
            leg = Leg(number, "127.0.0.1", 0, _params(spec), self.core.reserve_slot(),
                      self._on_digit(spec.name), self._on_talking(spec.name))  # fmt: skip
            self.phones[spec.name] = _Phone(
                spec, leg, samples, int(streams.integers(1, 2**32)),
                int(streams.integers(0, 2**16)), int(streams.integers(0, 2**32)),
                np.zeros(total, np.int16),
            )  # fmt: skip
            self.core.add(leg, 0.0)
        rows = 4 * len(legs) + 4
        self.rx = RxBatch.empty(rows, _ROW_LEN)

    # -- callbacks the core queues, recorded with the tick they came out of ------------------

    def _record(self, kind: str, **data: Any) -> None:
        entry = {"tick": self.tick_index, "t": round(self.tick_index * TICK, 3), "type": kind}
        self.log.append(entry | data)

    def _on_digit(self, name: str) -> Callable[[Digit], None]:
        return lambda d: self._record("digit", leg=name, key=d.key, source=d.source,
                                      duration_ms=d.duration_ms)  # fmt: skip

    def _on_talking(self, name: str) -> Callable[[bool], None]:
        return lambda on: self._record("talking_started" if on else "talking_stopped", leg=name)

    def _on_done(self, event: EventSpec) -> Callable[[], None]:
        target = {"leg": event.fields["leg"]} if "leg" in event.fields else {
            "meeting": event.fields["meeting"]}  # fmt: skip
        return lambda: self._record("prompt_done", name=event.fields["name"], **target)

    # -- timeline actions (applied between ticks) --------------------------------------------

    def _slot(self, event: EventSpec) -> int:
        return self.phones[event.fields["leg"]].leg.slot

    def _handle_join(self, event: EventSpec) -> None:
        phone = self.phones[event.fields["leg"]]
        self.core.set_flags(phone.leg.slot, listener=event.fields["listener"])
        self.core.set_meeting(phone.leg, event.fields["meeting"])

    def _handle_leave(self, event: EventSpec) -> None:
        self.core.set_meeting(self.phones[event.fields["leg"]].leg, None)

    def _handle_gain(self, event: EventSpec) -> None:
        self.core.set_flags(self._slot(event), gain_in_db=event.fields["gain_in_db"],
                            gain_out_db=event.fields["gain_out_db"])  # fmt: skip

    def _handle_prompt(self, event: EventSpec) -> None:
        player = PromptPlayer([event.fields["clip"]])
        handle = Playback(on_done=self._on_done(event))
        if "meeting" in event.fields:
            self.core.play_meeting(event.fields["meeting"], player, handle)
        else:
            self.core.play(self._slot(event), player, exclusive=event.fields["exclusive"],
                           handle=handle)  # fmt: skip

    _handle_tone = _handle_prompt  # a tone is a prompt synthesised at load time

    def _handle_digits(self, event: EventSpec) -> None:
        phone = self.phones[event.fields["leg"]]
        on, off = event.fields["duration_ms"], event.fields["gap_ms"]
        digits: str = event.fields["digits"]
        if phone.spec.inband:
            # A keypad replaces the microphone while a key is down (Q.23 tone pairs).
            keyed = tones.dtmf(digits, on_ms=on, off_ms=off)
            start = self.tick_index * FRAME
            n = min(len(keyed), len(phone.samples) - start)
            phone.samples[start : start + n] = keyed[:n]
            return
        sender = DtmfSender()
        for i, key in enumerate(digits):
            start_ms = i * (on + off)
            # One event timestamp per key: the audio timestamp of the tick the key goes down.
            ts = (phone.ts + (start_ms // 20) * FRAME) & 0xFFFF_FFFF
            for packet in sender.packets(key, on):
                tick = self.tick_index + (start_ms + packet.offset_ms) // 20
                phone.events.setdefault(tick, []).append((ts, packet.marker, packet.payload))

    def _apply(self, event: EventSpec) -> None:
        flag = _FLAG_ACTIONS.get(event.action)
        if flag is not None:
            self.core.set_flags(self._slot(event), **{flag[0]: flag[1]})
            return
        handler: Callable[[EventSpec], None] = getattr(self, f"_handle_{event.action}")
        handler(event)

    # -- the tick ------------------------------------------------------------------------------

    def _packets(self, phone: _Phone) -> list[bytes]:
        k = self.tick_index
        out = []
        for ts, marker, payload in phone.events.pop(k, []):
            out.append(_RTP_HEADER.pack(0x80, DTMF_PT | (0x80 if marker else 0),
                                        phone.seq, ts, phone.ssrc) + payload)  # fmt: skip
            phone.seq = (phone.seq + 1) & 0xFFFF
        frame = phone.samples[k * FRAME : (k + 1) * FRAME]
        encode = g711.alaw_encode if phone.spec.codec is PCMA else g711.ulaw_encode
        header = _RTP_HEADER.pack(0x80, phone.spec.codec.payload_type | (0x80 if k == 0 else 0),
                                  phone.seq, phone.ts, phone.ssrc)  # fmt: skip
        out.append(header + encode(frame).tobytes())
        phone.seq = (phone.seq + 1) & 0xFFFF
        phone.ts = (phone.ts + FRAME) & 0xFFFF_FFFF
        return out

    def _fill_rx(self) -> None:
        rows = [(p.leg.slot, data) for p in self.phones.values() for data in self._packets(p)]
        if len(rows) > len(self.rx.lengths):
            self.rx = RxBatch.empty(2 * len(rows), _ROW_LEN)
        for i, (slot, data) in enumerate(rows):
            self.rx.buf[i, : len(data)] = np.frombuffer(data, np.uint8)
            self.rx.lengths[i] = len(data)
            self.rx.slots[i] = slot
        self.rx.count = len(rows)

    def _run_outbox(self) -> None:
        callbacks = list(self.core.outbox)
        self.core.outbox.clear()
        for callback in callbacks:
            callback()

    def step(self, pending: list[EventSpec]) -> None:
        """One tick: apply the due events, send every leg's frame, keep what each leg hears."""
        k = self.tick_index
        while pending and pending[0].tick <= k:
            self._apply(pending.pop(0))
        self._fill_rx()
        tx = self.core.tick(k * TICK, self.rx)
        by_slot = {int(slot): row for slot, row in zip(tx.slots.tolist(), tx.packets, strict=True)}
        for phone in self.phones.values():
            row = by_slot.get(phone.leg.slot)
            if row is not None:
                decode = g711.alaw_decode if phone.spec.codec is PCMA else g711.ulaw_decode
                phone.heard[k * FRAME : (k + 1) * FRAME] = decode(row[-FRAME:])
        self._run_outbox()
        self.tick_index += 1

    def run(self) -> MixdownResult:
        """Every tick of the timeline, then hang every leg up for its summary."""
        pending = list(self.timeline.events)
        while self.tick_index < self.timeline.ticks:
            self.step(pending)
        # The summary's numeric leg id means nothing to the user: the leg's name keys it.
        stats = {
            name: {k: v for k, v in self.core.remove(phone.leg.slot).as_log().items() if k != "leg"}
            for name, phone in self.phones.items()
        }
        self._run_outbox()  # talkers still talking at the end get their "stopped"
        heard = {name: phone.heard for name, phone in self.phones.items()}
        return MixdownResult(heard, self.log, stats, self.timeline.ticks)


def write_outputs(result: MixdownResult, out: Path) -> None:
    """``<leg>.wav`` (8 kHz mono 16-bit) for every leg and ``events.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, samples in result.heard.items():
        with wave.open(str(out / f"{name}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(samples.astype("<i2").tobytes())
    text = json.dumps(result.as_json(), indent=2, sort_keys=True)
    (out / "events.json").write_text(text + "\n", encoding="utf-8")


def mixdown(timeline_path: Path, out: Path) -> MixdownResult:
    """Load, run and write one timeline (raises :class:`TimelineError` for a bad timeline)."""
    result = Mixdown(load_timeline(timeline_path)).run()
    write_outputs(result, out)
    return result


# -- command line ----------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    """Register ``conf-server mixdown TIMELINE.toml --out DIR``."""
    p = subparsers.add_parser(
        "mixdown",
        help="run the media engine on a virtual clock over input WAVs",
        description="Feed each leg's WAV through the media engine following a timeline and "
        "write what every leg hears (DIR/<leg>.wav) and DIR/events.json.",
    )
    p.add_argument("timeline", type=Path, metavar="TIMELINE.toml", help="legs and timed events")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")


def run(args: argparse.Namespace) -> int:
    """The ``mixdown`` command: 0 on success, 2 with one line on stderr for a bad timeline."""
    try:
        mixdown(args.timeline, args.out)
    except TimelineError as exc:
        sys.stderr.write(f"conf-server mixdown: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"conf-server mixdown: {args.out}: cannot write output ({exc})\n")
        return EXIT_USAGE
    return 0
