"""The media tick without I/O: packets in, packets out, for every leg and meeting at once.

References: RFC 3550 §5.1 (RTP header, SSRC/sequence/timestamp of our streams), §6.4 (SR/RR
report blocks built from the jitter bank's counters, A.3 loss), RFC 4733 §2.5.2 (telephone-event
packets diverted to the leg's ``DtmfReceiver``, and counted as received in the audio's sequence
space, §2.1), RFC 3264 §5.1 (direction decides who is sent
to), ITU-T G.711 (decode/encode through lookup tables).

Theory of operation. :class:`MediaCore` holds per-slot arrays (one slot per leg, fixed
capacity) and runs one 20 ms :meth:`MediaCore.tick`:

1. ``parse_batch`` reads the headers of every packet drained this tick; rows whose payload type
   is the leg's telephone-event type go to its ``DtmfReceiver`` (a few per second, so a Python
   loop), rows with the leg's audio type and a 160-byte payload are decoded with one
   ``np.take`` per law present (``g711`` decodes two codes per lookup) and put into the
   ``JitterBank``;
2. the bank pops one frame per slot (a leg being recorded, for a roll-call name, has its
   frames kept until the clip is complete); the frames of all legs without telephone-event go
   through one ``InbandBank`` call (a Python loop only over the presses it finds);
   ``TalkDetector`` updates who talks (events come out paired);
3. prompts become per-leg or per-meeting overlays (:mod:`conf_server.engine.overlays`), music
   on hold advances once, and ``media.mixer.mix`` mixes all meetings in one vectorised pass;
4. the shared mix rows are encoded once per codec present, private frames once each, and every
   sending leg's payload is gathered from those rows, so listeners of one meeting receive the
   very same bytes; headers for all senders are built with ``build_headers``.

RTCP reports are built and read by :mod:`conf_server.engine.rtcp` from these arrays.
The live engine (``conf_server/runtime/engine.py``: sockets, thread, clock) and the file mixdown
(``conf_server/mixdown.py``) both drive this class, so there is one tick code path. Callbacks
(digits, talking, prompt done) are not called here: they are queued in :attr:`MediaCore.outbox`
as zero-argument callables for the driver to run in its own thread.
Topology changes (join, leave, flags, gains) only mark the plan dirty; it is rebuilt at the start
of the next tick, so a tick always mixes one consistent topology.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from conf_server.engine.legs import Leg, LegSummary, Playback, RecordCallback
from conf_server.engine.overlays import PromptOverlays
from conf_server.engine.rtcp import RTCP_INTERVAL, RtcpBook
from media import g711
from media.dtmf import Digit, DtmfReceiver
from media.errors import MediaConfigError, MediaParseError
from media.inband import InbandBank
from media.jitter import MAX_DROPOUT, Counter, JitterBank, LegState
from media.mixer import (
    NO_MEETING,
    MixPlan,
    MixResult,
    MixWorkspace,
    mix,
)
from media.playback import PromptPlayer, SharedStream
from media.rtp import HEADER_LEN, build_headers, parse_batch
from media.stats import SendStats
from media.talk import TalkDetector

FRAME = 160
TICK = 0.02
PACKET_LEN = HEADER_LEN + FRAME
Callback = Callable[[], None]
# RFC 2543 hold: the peer names the unspecified address (compared, never bound).
_HOLD_ADDRS = frozenset({"0.0.0.0", "::"})  # noqa: S104


@dataclass(eq=False)
class RxBatch:
    """Packets drained in one tick: ``count`` rows of ``buf`` with their lengths and slots."""

    buf: NDArray[np.uint8]
    lengths: NDArray[np.int32]
    slots: NDArray[np.intp]
    count: int = 0

    @classmethod
    def empty(cls, rows: int, row_len: int = 2048) -> RxBatch:
        """A preallocated batch of ``rows`` packets of at most ``row_len`` bytes."""
        buf = np.zeros((rows, row_len), np.uint8)
        return cls(buf, np.zeros(rows, np.int32), np.zeros(rows, np.intp))


@dataclass(eq=False)
class TxBatch:
    """What one tick sends: row ``i`` of ``packets`` goes to leg slot ``slots[i]``."""

    slots: NDArray[np.intp]
    packets: NDArray[np.uint8]
    rtcp: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass(eq=False)
class _Recording:
    leg: Leg
    frames: int  # how many 20 ms frames to take
    on_done: RecordCallback
    parts: list[NDArray[np.int16]] = field(default_factory=list)


class MediaCore:
    """Per-slot state and the tick of the media engine (no sockets, no clock)."""

    def __init__(
        self,
        capacity: int,
        *,
        jitter_min_ms: int = 20,
        jitter_max_ms: int = 200,
        rng: np.random.Generator,
        wall_offset: float = 0.0,
    ) -> None:
        if capacity < 1:
            raise MediaConfigError(f"engine capacity {capacity} must be at least 1 leg")
        self.capacity = capacity
        self._rng = rng
        self.rtcp = RtcpBook(wall_offset)
        self.jitter = JitterBank(
            capacity, rng=rng, min_delay_ms=jitter_min_ms, max_delay_ms=jitter_max_ms
        )
        self.talk = TalkDetector(capacity)
        self.work = MixWorkspace()
        self.legs: list[Leg | None] = [None] * capacity
        self._free = list(range(capacity - 1, -1, -1))
        n = capacity
        self.active = np.zeros(n, np.bool_)
        self.sending = np.zeros(n, np.bool_)
        self.alaw = np.zeros(n, np.bool_)
        self.audio_pt = np.full(n, -1, np.int16)
        self.dtmf_pt = np.full(n, -1, np.int16)
        self.tx_ssrc = np.zeros(n, np.uint32)
        self.tx_seq = np.zeros(n, np.uint16)
        self.tx_ts = np.zeros(n, np.uint32)
        self.tx_marker = np.ones(n, np.bool_)
        self.packets_in = np.zeros(n, np.int64)
        self.packets_out = np.zeros(n, np.int64)
        self.malformed = np.zeros(n, np.int64)
        self.digits = np.zeros(n, np.int64)
        self.rtcp_in = np.zeros(n, np.int64)
        self.rtcp_out = np.zeros(n, np.int64)
        self.next_rtcp = np.full(n, np.inf)
        self.flags = {k: np.zeros(n, np.bool_) for k in ("muted", "deaf", "held", "listener")}
        self.gain_in = np.zeros(n, np.float64)
        self.gain_out = np.zeros(n, np.float64)
        self._dtmf: dict[int, DtmfReceiver] = {}
        self._dtmf_pending: set[int] = set()
        self._inband = InbandBank(capacity)
        self.send_stats: dict[int, SendStats] = {}
        self.prompts = PromptOverlays(capacity, self._finish)
        self._recordings: dict[int, _Recording] = {}
        self.moh: SharedStream | None = None
        self.outbox: list[Callback] = []
        self._dirty = True
        self._plan = MixPlan.build(np.full(n, NO_MEETING))
        self._meeting_index: dict[str, int] = {}
        self._senders = np.zeros(0, np.intp)
        self.ticks = 0

    # -- membership (between ticks) --------------------------------------------------------

    def reserve_slot(self) -> int:
        """Take a free slot for a new leg; raises ``MediaConfigError`` when the engine is full."""
        if not self._free:
            raise MediaConfigError(f"media engine full: all {self.capacity} leg slots in use")
        return self._free.pop()

    def add(self, leg: Leg, now: float) -> None:
        """Start a leg in its reserved slot with fresh stream state."""
        slot = leg.slot
        self.legs[slot] = leg
        self.jitter.reset(slot)
        self.active[slot] = True
        self.tx_ssrc[slot] = int(self._rng.integers(1, 2**32))
        self.tx_seq[slot] = int(self._rng.integers(0, 2**16))
        self.tx_ts[slot] = int(self._rng.integers(0, 2**32))
        self.tx_marker[slot] = True
        for counter in (self.packets_in, self.packets_out, self.malformed, self.digits):
            counter[slot] = 0
        self.rtcp_in[slot] = self.rtcp_out[slot] = 0
        for flags in self.flags.values():
            flags[slot] = False
        self.gain_in[slot] = self.gain_out[slot] = 0.0
        self.send_stats[slot] = SendStats()
        self.next_rtcp[slot] = now + RTCP_INTERVAL / 2 * (0.5 + float(self._rng.random()))
        self.update(leg)

    def update(self, leg: Leg) -> None:
        """Apply a leg's (new) media parameters: codec, telephone-event type, direction, hold."""
        slot, params = leg.slot, leg.params
        name = params.codec.name.upper()
        if name not in g711.SILENCE:
            raise MediaConfigError(f"codec {params.codec.name} is not G.711 (PCMU or PCMA)")
        if params.ptime != 20:
            raise MediaConfigError(f"ptime {params.ptime} ms: the engine runs 20 ms frames only")
        self.alaw[slot] = name == "PCMA"
        self.audio_pt[slot] = params.codec.payload_type
        pt = params.dtmf_payload_type
        self.dtmf_pt[slot] = -1 if pt is None else pt
        self._dtmf.pop(slot, None)
        if pt is None:
            self._inband.add(slot)  # fresh detection state, as for a new leg
        else:
            self._inband.remove(slot)
            self._dtmf[slot] = DtmfReceiver()
        reachable = params.remote_port != 0 and params.remote_addr not in _HOLD_ADDRS
        self.sending[slot] = params.direction.sends and reachable
        self._dirty = True

    def remove(self, slot: int, foreign_dropped: int = 0) -> LegSummary:
        """Free a slot; a talker's ``stopped`` event is queued so talking events pair."""
        leg = self.legs[slot]
        if leg is None:
            raise MediaConfigError(f"slot {slot} holds no leg")
        summary = self.summary(slot, foreign_dropped)
        self._talk_events(np.zeros(0, np.intp), self.talk.remove(slot).stopped)
        self.legs[slot] = None
        self.active[slot] = self.sending[slot] = False
        self.next_rtcp[slot] = np.inf
        for table in (self._dtmf, self.send_stats):
            table.pop(slot, None)
        self._inband.remove(slot)
        self.rtcp.forget(slot)
        self.prompts.cancel(slot)
        self._recordings.pop(slot, None)  # the caller is gone: nobody wants the clip
        self.jitter.reset(slot)
        self._free.append(slot)
        self._dirty = True
        return summary

    def summary(self, slot: int, foreign_dropped: int = 0) -> LegSummary:
        """The leg's figures so far (for the hang-up log line)."""
        leg = self.legs[slot]
        stats = self.send_stats.get(slot, SendStats())
        return LegSummary(
            leg_id=-1 if leg is None else leg.id,
            packets_in=int(self.packets_in[slot]),
            packets_out=int(self.packets_out[slot]),
            lost=int(self.lost()[slot]),
            jitter_ms=round(float(self.jitter.jitter[slot]) / 8.0, 2),
            late=int(self.jitter.counters[Counter.LATE, slot]),
            concealed=int(self.jitter.counters[Counter.CONCEALED, slot]),
            foreign_dropped=foreign_dropped,
            malformed=int(self.malformed[slot]),
            digits=int(self.digits[slot]),
            rtcp_in=int(self.rtcp_in[slot]),
            rtcp_out=int(self.rtcp_out[slot]),
            remote_fraction_lost=stats.remote_fraction_lost if stats.reports else None,
            rtt_ms=None if stats.rtt is None else round(stats.rtt * 1000.0, 1),
        )

    def set_meeting(self, leg: Leg, meeting: str | None) -> None:
        """Join (a name) or leave (None) a meeting; applied at the next tick."""
        leg.meeting = meeting
        self._dirty = True

    def set_flags(self, slot: int, **flags: bool | float | None) -> None:
        """Set muted/deaf/held/listener and gain_in_db/gain_out_db (None leaves one alone)."""
        gains = {"gain_in_db": self.gain_in, "gain_out_db": self.gain_out}
        for name, value in flags.items():
            if value is None:
                continue
            if name in gains:
                if not -20.0 <= float(value) <= 20.0:
                    raise MediaConfigError(f"{name} {value} outside [-20, 20] dB")
                gains[name][slot] = float(value)
            elif name in self.flags:
                self.flags[name][slot] = bool(value)
            else:
                raise MediaConfigError(f"unknown leg flag {name!r}")
        self._dirty = True

    def play(self, slot: int, player: PromptPlayer, *, exclusive: bool, handle: Playback) -> None:
        """Play a prompt to one leg, replacing (cancelling) the one it was playing."""
        self.prompts.play(slot, player, exclusive=exclusive, handle=handle)

    def play_meeting(
        self,
        meeting: str,
        player: PromptPlayer,
        handle: Playback,
        exclude: Sequence[Leg] = (),
    ) -> None:
        """Play a prompt into a whole meeting, mixed with its audio (several may overlap).

        Legs in ``exclude`` do not hear this prompt; they keep hearing the meeting.
        """
        self.prompts.play_meeting(meeting, player, handle, exclude)

    def record(self, leg: Leg, frames: int, on_done: RecordCallback) -> None:
        """Record the leg's next ``frames`` received frames (decoded, after the jitter buffer).

        ``on_done`` gets the clip through the outbox; a new recording of the leg replaces the
        one in progress, and a leg that is removed first delivers nothing.
        """
        if frames < 0:
            raise MediaConfigError(f"cannot record {frames} frames")
        if self.legs[leg.slot] is leg:
            self._recordings[leg.slot] = _Recording(leg, frames, on_done)

    def set_music_on_hold(self, samples: NDArray[np.int16]) -> None:
        """The looping clip every held leg hears (one shared position)."""
        self.moh = SharedStream(samples)

    # -- the tick --------------------------------------------------------------------------

    def tick(self, now: float, rx: RxBatch) -> TxBatch:
        """One 20 ms step: consume ``rx``, return what to send."""
        self.ticks += 1
        if self._dirty:
            self._build_plan()
        self._receive(now, rx)
        frames, _status = self.jitter.pop(now)
        if self._recordings:
            self._record(frames)
        self._detect_inband(frames)
        events = self.talk.update(frames)
        if len(events.started) or len(events.stopped):
            self._talk_events(events.started, events.stopped)
        self._poll_dtmf(now)
        result = mix(
            self._plan,
            frames,
            self.talk.talking & self.active,
            moh=self._moh_frame(),
            leg_overlays=self.prompts.leg_overlays(),
            meeting_overlays=self.prompts.meeting_overlays(
                self.legs, self._meeting_index, self._plan.meetings
            ),
            work=self.work,
        )
        tx = self._encode(result)
        tx.rtcp = self.rtcp.due(self, now)
        return tx

    def _build_plan(self) -> None:
        names: dict[str, int] = {}
        meeting = np.full(self.capacity, NO_MEETING, np.intp)
        held = self.flags["held"].copy()
        for leg in self.legs:
            if leg is not None and leg.meeting is not None:
                meeting[leg.slot] = names.setdefault(leg.meeting, len(names))
                held[leg.slot] |= leg.params.on_hold
        self._meeting_index = names
        self._plan = MixPlan.build(
            meeting,
            meetings=len(names),
            input_gain_db=self.gain_in,
            output_gain_db=self.gain_out,
            muted=self.flags["muted"],
            deaf=self.flags["deaf"],
            held=held,
            listener=self.flags["listener"],
        )
        self._senders = np.flatnonzero(self.sending)
        self._dirty = False

    def _receive(self, now: float, rx: RxBatch) -> None:
        k = rx.count
        if not k:
            return
        batch = parse_batch(rx.buf[:k], rx.lengths[:k])
        slots = rx.slots[:k]
        valid = batch.valid & self.active[slots]
        # bincount, not np.add.at: the latter is ~10x slower for a tick of packets.
        self.packets_in += np.bincount(slots[valid], minlength=self.capacity)
        if not bool(batch.valid.all()):
            self.malformed += np.bincount(slots[~batch.valid], minlength=self.capacity)
        pt = batch.payload_type.astype(np.int16)
        for i in np.flatnonzero(valid & (pt == self.dtmf_pt[slots])).tolist():
            start = int(batch.payload_offset[i])
            payload = rx.buf[i, start : start + int(batch.payload_len[i])].tobytes()
            self._count_event(int(slots[i]), int(batch.sequence[i]), int(batch.ssrc[i]))
            self._dtmf_packet(int(slots[i]), int(batch.timestamp[i]), bool(batch.marker[i]),
                              payload, now)  # fmt: skip
        audio = np.flatnonzero(valid & (pt == self.audio_pt[slots]) & (batch.payload_len == FRAME))
        if not len(audio):
            return
        pcm = self._decode(rx, audio, batch.payload_offset[audio], slots[audio])
        self.jitter.put(
            slots[audio],
            batch.sequence[audio],
            batch.timestamp[audio],
            pcm,
            now,
            ssrc=batch.ssrc[audio],
            marker=batch.marker[audio],
        )

    def _decode(
        self,
        rx: RxBatch,
        audio: NDArray[np.intp],
        offsets: NDArray[np.int32],
        slots: NDArray[np.intp],
    ) -> NDArray[np.int16]:
        """Payloads of the audio rows as PCM; one table lookup per law present."""
        if len(audio) == rx.count and bool((offsets == HEADER_LEN).all()):
            codes = rx.buf[: rx.count, HEADER_LEN:PACKET_LEN]  # the usual tick: a view, no copy
        elif bool((offsets == HEADER_LEN).all()):
            codes = rx.buf[audio, HEADER_LEN:PACKET_LEN]
        else:  # CSRCs or a header extension somewhere: gather each payload from its offset
            codes = rx.buf[audio[:, None], offsets[:, None] + np.arange(FRAME)]
        alaw = self.alaw[slots]
        if not alaw.any():
            return g711.ulaw_decode(codes)
        if alaw.all():
            return g711.alaw_decode(codes)
        pcm = np.empty((len(audio), FRAME), np.int16)
        pcm[~alaw] = g711.ulaw_decode(codes[~alaw])
        pcm[alaw] = g711.alaw_decode(codes[alaw])
        return pcm

    def _count_event(self, slot: int, seq: int, ssrc: int) -> None:
        """Account a diverted RFC 4733 packet as received in the audio's sequence space.

        Telephone-event packets of the audio's SSRC take sequence numbers from the same
        space (RFC 4733 §2.1, RFC 3550 §5.1); the jitter bank only sees the audio, so
        without this every event packet would count as lost (RFC 3550 A.3). The step is
        the one the bank takes for an audio packet: a newer number advances the extended
        highest sequence, an older one inside the stream fills its hole. Events of another
        SSRC, before the first audio, or beyond MAX_DROPOUT are outside the stream.
        """
        bank = self.jitter
        if bank.state[slot] == LegState.IDLE or int(bank.ssrc[slot]) not in (-1, ssrc):
            return
        step = (seq - int(bank.max_seq[slot]) + 0x8000) % 0x10000 - 0x8000
        if abs(step) > MAX_DROPOUT or int(bank.max_seq[slot]) + step < int(bank.base_seq[slot]):
            return
        if step > 0:
            bank.max_seq[slot] += step
        bank.stream_received[slot] += 1
        bank.counters[Counter.RECEIVED, slot] += 1

    def _dtmf_packet(self, slot: int, ts: int, marker: bool, payload: bytes, now: float) -> None:
        receiver = self._dtmf.get(slot)
        if receiver is None:
            return
        try:
            digits = receiver.feed(ts, marker, payload, now)
        except MediaParseError:
            self.malformed[slot] += 1
            return
        self._emit_digits(slot, digits)
        if receiver.next_deadline is not None:
            self._dtmf_pending.add(slot)

    def _poll_dtmf(self, now: float) -> None:
        # Only legs inside an event can time out: polling all receivers cost ~1 ms per tick.
        for slot in list(self._dtmf_pending):
            receiver = self._dtmf.get(slot)
            deadline = None if receiver is None else receiver.next_deadline
            if receiver is None or deadline is None:
                self._dtmf_pending.discard(slot)
            elif now >= deadline:
                self._emit_digits(slot, receiver.poll(now))

    def _detect_inband(self, frames: NDArray[np.int16]) -> None:
        slots = self._inband.slots
        if not len(slots):
            return
        for slot, key in self._inband.process(frames[slots], slots):  # presses only: rare
            self._emit_digits(slot, [Digit(key, 0, "inband")])

    def _emit_digits(self, slot: int, digits: list[Digit]) -> None:
        leg = self.legs[slot]
        if leg is None:
            return
        for digit in digits:
            self.digits[slot] += 1
            self.outbox.append(_bind_digit(leg.on_digit, digit))

    def _talk_events(self, started: NDArray[np.intp], stopped: NDArray[np.intp]) -> None:
        for value, slots in ((True, started), (False, stopped)):
            for slot in slots.tolist():
                leg = self.legs[slot]
                if leg is not None and leg.on_talking is not None:
                    self.outbox.append(_bind_talk(leg.on_talking, value))

    def _moh_frame(self) -> NDArray[np.int16] | None:
        if self.moh is None:
            return None
        return self.moh.advance()

    def _record(self, frames: NDArray[np.int16]) -> None:
        for slot, rec in list(self._recordings.items()):
            if len(rec.parts) < rec.frames:
                rec.parts.append(frames[slot].copy())
            if len(rec.parts) >= rec.frames:
                del self._recordings[slot]
                clip = np.concatenate(rec.parts) if rec.parts else np.zeros(0, np.int16)
                self.outbox.append(_bind_clip(rec.on_done, clip))

    def _finish(self, handle: Playback) -> None:
        handle.finished = True
        if handle.on_done is not None:
            self.outbox.append(handle.on_done)

    def _encode(self, result: MixResult) -> TxBatch:
        send = self._senders
        packets = np.empty((len(send), PACKET_LEN), np.uint8)
        if not len(send):
            return TxBatch(send, packets)
        shared, private = result.shared, result.private
        shared_rows = len(shared)
        # One encoded block per codec for the shared rows, then the private frames: every
        # listener of a meeting gathers the same encoded row.
        blocks = [g711.ulaw_encode(shared)]
        alaw = self.alaw[send]
        any_alaw = bool(alaw.any())
        if any_alaw:
            blocks.append(g711.alaw_encode(shared))
        private_row = result.private_row[send]
        is_private = private_row >= 0
        if len(private):
            private_codes = g711.ulaw_encode(private)
            if any_alaw:
                # A-law private legs are rare: re-encode only their rows.
                arow = private_row[is_private & alaw]
                private_codes[arow] = g711.alaw_encode(private[arow])
            blocks.append(private_codes)
        encoded = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        row = result.shared_row[send] + np.where(alaw, shared_rows, 0)
        private_base = shared_rows * (2 if any_alaw else 1)
        row = np.where(is_private, private_base + private_row, row)
        packets[:, HEADER_LEN:] = encoded[row]
        packets[:, :HEADER_LEN] = build_headers(
            self.audio_pt[send].astype(np.uint8),
            self.tx_seq[send],
            self.tx_ts[send],
            self.tx_ssrc[send],
            self.tx_marker[send],
        )
        self.tx_seq[send] += np.uint16(1)
        self.tx_ts[send] += np.uint32(FRAME)
        self.tx_marker[send] = False
        self.packets_out[send] += 1
        return TxBatch(send, packets)

    # -- RTCP (conf_server.engine.rtcp) -------------------------------------------------------

    def lost(self) -> NDArray[np.int64]:
        """Packets lost per slot (RFC 3550 A.3), as the summary and RTCP report it."""
        return self.jitter.lost()

    def random(self) -> float:
        """A uniform draw in [0, 1) from the injected generator (RTCP report times)."""
        return float(self._rng.random())

    def rtcp_received(self, slot: int, data: bytes, now: float) -> None:
        """A compound RTCP packet from the leg's peer: file SRs (for LSR) and reports on us."""
        self.rtcp.received(self, slot, data, now)


def _bind_clip(callback: RecordCallback, clip: NDArray[np.int16]) -> Callback:
    return lambda: callback(clip)


def _bind_digit(callback: Callable[[Digit], None], digit: Digit) -> Callback:
    return lambda: callback(digit)


def _bind_talk(callback: Callable[[bool], None], value: bool) -> Callback:
    return lambda: callback(value)
