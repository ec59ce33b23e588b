"""Adaptive jitter buffer for a bank of N legs, vectorised: one ``put`` and one ``pop`` per tick.

References: RFC 3550 §6.4.1 and appendix A.8 (interarrival jitter estimate ``J += (|D| − J)/16``),
A.1 and A.3 (extended sequence numbers, MAX_DROPOUT, expected − received = lost); §5.1 (marker
bit: first packet of a talk spurt after silence suppression); RFC 3389 §4 (comfort noise in the
gaps of a discontinuous transmission); ITU-T G.711 appendix I (repeat the last frame with a fade
to conceal loss, then fall back to noise).

Theory of operation. Every leg owns a row of ring arrays — frames ``(N, SLOTS, 160)`` int16 plus
the frame index and a valid flag per slot — so a tick's packets from all legs are stored with a
few fancy-indexed assignments and a tick's playout is one gather. Frames are keyed by RTP
timestamp, not sequence number: ``index = round((ts − base_ts) / 160)`` with 32-bit wrap
arithmetic, so silence-suppressed gaps (timestamps jump, sequence numbers do not) need no special
playout path. Sequence numbers detect loss, duplicates and new streams.

Per leg, a small state machine (``IDLE → BUFFERING → PLAYING``, back to BUFFERING on underrun):

* BUFFERING waits until ``target`` frames are queued or ``target × 20 ms`` passed since the first
  one, then starts playout at the oldest queued frame (skipping whatever gap came before: it was
  either silence or already concealed);
* PLAYING outputs the frame at the play index and advances by one. A missing frame with newer
  frames queued is loss → repeat the last frame with a fade for ``conceal_frames`` frames, then
  comfort noise; a gap the sender marked as silence (marker bit, or a timestamp jump with
  contiguous sequence numbers) is comfort noise, not loss. Nothing queued at all is an underrun:
  the leg returns to BUFFERING without advancing, which is how a slow sender clock inserts;
* the target delay is ``4 J`` rounded up to whole frames, within [min, max]. An exponential
  average of the queue depth that stays above target + 1 for ``drift_hold`` ticks drops a frame
  (fast sender clock, or the target fell); below target − 1 inserts one (the target rose).

Packets behind the play index are late (counted, dropped). A new SSRC, a sequence jump beyond
MAX_DROPOUT, or a timestamp jump beyond the ring with newer sequence numbers resyncs the leg.
Several packets of one leg in one ``put`` are applied in arrival order by splitting the batch
into rounds with at most one packet per leg, so every round is a vectorised step.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from media.errors import MediaConfigError
from media.tones import comfort_noise

FRAME = 160
RATE = 8000
MAX_DROPOUT = 3000  # RFC 3550 A.1: a larger sequence jump is a new stream
LATE_WINDOW = 50  # frames (1 s): further behind with a newer sequence number is a timestamp jump
_START_SLACK = 2  # frames
_JITTER_MULT = 4.0
_EMA = 1.0 / 16.0
_NOISE_FRAMES = 64
_NEVER = np.inf
_FAR = np.iinfo(np.int64).max


class FrameStatus(IntEnum):
    """What ``pop`` produced for a leg this tick."""

    EMPTY = 0  # no stream yet: digital silence
    PLAYED = 1  # a received frame
    CONCEALED = 2  # loss or insertion: last frame repeated with a fade
    COMFORT = 3  # silence gap or long loss: comfort noise


class LegState(IntEnum):
    IDLE = 0
    BUFFERING = 1
    PLAYING = 2


class Counter(IntEnum):
    """Per-leg counters, rows of ``JitterBank.counters``."""

    PLAYED = 0
    CONCEALED = 1
    COMFORT = 2
    LATE = 3
    DROPPED = 4
    DUPLICATES = 5
    INSERTED = 6
    UNDERRUNS = 7
    RESYNCS = 8
    RECEIVED = 9


def _wrap(values: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    """Signed difference modulo 2**bits (sequence and timestamp arithmetic)."""
    half = 1 << (bits - 1)
    wrapped: NDArray[np.int64] = ((values + half) & ((1 << bits) - 1)) - half
    return wrapped


# Plain ints for the hot path: IntEnum member lookups cost microseconds each on Python 3.11.
_IDLE, _BUFFERING, _PLAYING = (int(s) for s in LegState)
_EMPTY, _PLAYED, _CONCEALED, _COMFORT = (int(s) for s in FrameStatus)
(
    _C_PLAYED,
    _C_CONCEALED,
    _C_COMFORT,
    _C_LATE,
    _C_DROPPED,
    _C_DUPLICATES,
    _C_INSERTED,
    _C_UNDERRUNS,
    _C_RESYNCS,
    _C_RECEIVED,
) = (int(c) for c in Counter)

# Per-leg state arrays: dtype and the value a fresh (or reset) leg starts with.
_STATE: dict[str, tuple[type[np.generic], float]] = {
    "state": (np.int8, _IDLE),
    "ssrc": (np.int64, -1),  # -1: not known (put without ssrc)
    "base_ts": (np.int64, 0),  # RTP timestamp of frame index 0 of the current stream
    "play": (np.int64, 0),  # frame index to play next
    "newest": (np.int64, -1),  # highest frame index stored
    "max_seq": (np.int64, 0),  # extended highest sequence number (RFC 3550 A.1)
    "base_seq": (np.int64, 0),
    "stream_received": (np.int64, 0),
    "lost_before": (np.int64, 0),  # loss of earlier streams on this leg
    "last_index": (np.int64, 0),  # frame index of the highest sequence number
    "quiet_until": (np.int64, 0),  # frames before this index were declared silence
    "first_arrival": (np.float64, _NEVER),  # when BUFFERING got its first frame
    "last_arrival": (np.float64, _NEVER),
    "last_ts": (np.int64, 0),
    "has_played": (np.bool_, False),
    "conceal_run": (np.int64, 0),
    "level": (np.float64, 0.0),  # averaged queue depth, frames
    "above": (np.int64, 0),  # ticks the depth has been above target
    "below": (np.int64, 0),
}


class JitterBank:
    """Jitter buffers for ``legs`` leg slots sharing one set of arrays."""

    state: NDArray[np.int8]
    ssrc: NDArray[np.int64]
    base_ts: NDArray[np.int64]
    play: NDArray[np.int64]
    newest: NDArray[np.int64]
    max_seq: NDArray[np.int64]
    base_seq: NDArray[np.int64]
    stream_received: NDArray[np.int64]
    lost_before: NDArray[np.int64]
    last_index: NDArray[np.int64]
    quiet_until: NDArray[np.int64]
    first_arrival: NDArray[np.float64]
    last_arrival: NDArray[np.float64]
    last_ts: NDArray[np.int64]
    has_played: NDArray[np.bool_]
    conceal_run: NDArray[np.int64]
    level: NDArray[np.float64]
    above: NDArray[np.int64]
    below: NDArray[np.int64]

    def __init__(
        self,
        legs: int,
        *,
        rng: np.random.Generator,
        slots: int = 16,
        min_delay_ms: int = 20,
        max_delay_ms: int = 200,
        conceal_frames: int = 3,
        comfort_dbov: float = -65.0,
        drift_hold: int = 50,
    ) -> None:
        if legs < 0:
            raise MediaConfigError(f"leg count {legs} is negative")
        if not 20 <= min_delay_ms <= max_delay_ms:
            raise MediaConfigError(
                f"delays need 20 <= min ({min_delay_ms}) <= max ({max_delay_ms}) ms"
            )
        self.min_frames = min_delay_ms // 20
        self.max_frames = max_delay_ms // 20
        if slots < self.max_frames + 2:
            raise MediaConfigError(f"{slots} slots cannot hold {max_delay_ms} ms plus reordering")
        if conceal_frames < 0 or drift_hold < 1:
            raise MediaConfigError(
                f"conceal_frames {conceal_frames} / drift_hold {drift_hold} out of range"
            )
        self.legs = legs
        self.slots = slots
        self.conceal_frames = conceal_frames
        self.drift_hold = drift_hold
        self._fade = 1.0 - np.arange(1, conceal_frames + 1) / (conceal_frames + 1.0)
        self._noise = comfort_noise(_NOISE_FRAMES, comfort_dbov, rng).reshape(-1, FRAME)
        self.buf = np.zeros((legs, slots, FRAME), dtype=np.int16)
        self.slot_index = np.zeros((legs, slots), dtype=np.int64)
        self.valid = np.zeros((legs, slots), dtype=np.bool_)
        self.counters = np.zeros((len(Counter), legs), dtype=np.int64)
        self.jitter = np.zeros(legs, dtype=np.float64)  # RFC 3550 J, timestamp units
        # Output frames and status are double-buffered: the previous tick's pair still holds
        # each leg's last played frame, so ``_last`` (what concealment repeats) is copied only
        # when a leg stops playing, not for every played frame of every tick.
        self._last = np.zeros((legs, FRAME), dtype=np.int16)
        self._out = np.zeros((legs, FRAME), dtype=np.int16)
        self._status = np.zeros(legs, dtype=np.uint8)
        self._prev_out = np.zeros((legs, FRAME), dtype=np.int16)
        self._prev_status = np.zeros(legs, dtype=np.uint8)
        self._tick = 0
        self._alloc_state(legs)

    # -- state -----------------------------------------------------------------------------

    def _alloc_state(self, legs: int) -> None:
        for name, (dtype, initial) in _STATE.items():
            setattr(self, name, np.full(legs, initial, dtype=dtype))

    def reset(self, leg: int) -> None:
        """Free a slot when its call leaves so a new call can reuse it (counters restart)."""
        if not 0 <= leg < self.legs:
            raise MediaConfigError(f"leg {leg} outside [0, {self.legs})")
        self.valid[leg] = False
        self.counters[:, leg] = 0
        self.jitter[leg] = 0.0
        self._last[leg] = 0
        self._status[leg] = self._prev_status[leg] = _EMPTY
        for name, (_, initial) in _STATE.items():
            getattr(self, name)[leg] = initial

    def target_frames(self) -> NDArray[np.int64]:
        """Per-leg target playout delay in frames, from the jitter estimate."""
        frames = np.ceil(_JITTER_MULT * self.jitter / FRAME).astype(np.int64)
        clipped: NDArray[np.int64] = np.clip(frames, self.min_frames, self.max_frames)
        return clipped

    def lost(self) -> NDArray[np.int64]:
        """Packets lost per leg (RFC 3550 A.3: expected − received, over all streams)."""
        expected = np.where(self.state != LegState.IDLE, self.max_seq - self.base_seq + 1, 0)
        lost: NDArray[np.int64] = self.lost_before + np.maximum(expected - self.stream_received, 0)
        return lost

    def stats(self, leg: int) -> dict[str, int]:
        """One leg's counters by name, for the call's summary log line."""
        out = {c.name.lower(): int(self.counters[c, leg]) for c in Counter}
        out["lost"] = int(self.lost()[leg])
        out["jitter_ms"] = round(float(self.jitter[leg]) / 8)
        return out

    # -- put -------------------------------------------------------------------------------

    def put(
        self,
        legs: ArrayLike,
        seq: ArrayLike,
        ts: ArrayLike,
        frames: ArrayLike,
        now: float | ArrayLike,
        *,
        ssrc: ArrayLike | None = None,
        marker: ArrayLike | None = None,
    ) -> None:
        """Store K decoded frames (``(K, 160)`` int16) for ``legs``.

        ``now`` is the arrival time in seconds: one value for the batch (the tick that drained
        the sockets) or one per packet (kernel receive timestamps give a finer jitter estimate).
        """
        leg = np.asarray(legs, dtype=np.int64)
        k = len(leg)
        pcm = np.asarray(frames)
        if pcm.dtype != np.int16 or pcm.shape != (k, FRAME):
            raise MediaConfigError(
                f"frames must be int16 of shape ({k}, {FRAME}), got {pcm.dtype}{pcm.shape}"
            )
        if k and (leg.min() < 0 or leg.max() >= self.legs):
            raise MediaConfigError(f"put leg outside [0, {self.legs})")
        seqs = _packet_field(seq, k, "seq", 0xFFFF)
        stamps = _packet_field(ts, k, "ts", 0xFFFFFFFF)
        sources = None if ssrc is None else _packet_field(ssrc, k, "ssrc", 0xFFFFFFFF)
        marks = np.zeros(k, np.bool_) if marker is None else np.asarray(marker, dtype=np.bool_)
        if marks.shape != (k,):
            raise MediaConfigError(f"marker has shape {marks.shape}, expected ({k},)")
        arrival = np.broadcast_to(np.asarray(now, dtype=np.float64), (k,))
        if k < 2 or bool((leg[1:] > leg[:-1]).all()):
            # The usual tick: one packet per leg, legs ascending (drained in slot order), so
            # the batch is one round as it stands, with no argsort and no gathers.
            self._put_round(leg, seqs, stamps, pcm, now=arrival, ssrc=sources, marker=marks)
            return
        for batch in _rounds(leg):
            self._put_round(
                leg[batch],
                seqs[batch],
                stamps[batch],
                pcm[batch],
                now=arrival[batch],
                ssrc=None if sources is None else sources[batch],
                marker=marks[batch],
            )

    def _put_round(
        self,
        leg: NDArray[np.int64],
        seq: NDArray[np.int64],
        ts: NDArray[np.int64],
        pcm: NDArray[np.int16],
        *,
        now: NDArray[np.float64],
        ssrc: NDArray[np.int64] | None,
        marker: NDArray[np.bool_],
    ) -> None:
        """Apply at most one packet per leg (``leg`` is unique here)."""
        dseq, index = self._resync_where_needed(leg, seq, ts, now=now, ssrc=ssrc)
        rel = index - self.play[leg]
        late = rel < 0
        too_far = rel >= self.slots
        slot = index % self.slots
        dup = self.valid[leg, slot] & (self.slot_index[leg, slot] == index)
        dup &= ~late & ~too_far
        store = ~(late | too_far | dup)
        if store.all():  # the usual tick: every packet is new and fits the ring
            self._store(leg, slot, index, pcm, now)
            fresh_leg, fresh_ts, fresh_now = leg, ts, now
        else:
            self.counters[_C_LATE, leg[late]] += 1
            self.counters[_C_DROPPED, leg[too_far]] += 1
            self.counters[_C_DUPLICATES, leg[dup]] += 1
            self._store(leg[store], slot[store], index[store], pcm[store], now[store])
            fresh = ~dup
            fresh_leg, fresh_ts, fresh_now = leg[fresh], ts[fresh], now[fresh]
        self.counters[_C_RECEIVED, fresh_leg] += 1
        self.stream_received[fresh_leg] += 1
        self._sequence(leg, dseq, index, marker)
        self._jitter(fresh_leg, fresh_ts, fresh_now)

    def _resync_where_needed(
        self,
        leg: NDArray[np.int64],
        seq: NDArray[np.int64],
        ts: NDArray[np.int64],
        *,
        now: NDArray[np.float64],
        ssrc: NDArray[np.int64] | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Start new streams (new SSRC, sequence or timestamp jump); return (dseq, index)."""
        dseq, index = self._position(leg, seq, ts)
        rel = index - self.play[leg]
        new = self.state[leg] == _IDLE
        if ssrc is not None:
            new |= self.ssrc[leg] != ssrc
        far = (rel >= self.slots) | (rel < -LATE_WINDOW)
        resync = new | (np.abs(dseq) > MAX_DROPOUT) | ((dseq > 0) & far)
        if not resync.any():
            return dseq, index
        # The next sequence number with a timestamp advanced by about the time that passed is
        # a long silence gap (RFC 3550 §5.1): re-anchor without calling it a resync.
        elapsed = (now - self.last_arrival[leg]) * RATE
        advance = _wrap(ts - self.last_ts[leg], 32)
        gap = (dseq == 1) & ~new & (np.abs(advance - elapsed) <= RATE)
        counted = resync & ~gap & (self.state[leg] != _IDLE)
        self.counters[_C_RESYNCS, leg[counted]] += 1
        chosen = None if ssrc is None else ssrc[resync]
        self._resync(leg[resync], seq[resync], ts[resync], now[resync], chosen)
        return self._position(leg, seq, ts)

    def _position(
        self, leg: NDArray[np.int64], seq: NDArray[np.int64], ts: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Sequence step from the highest seen, and frame index from the stream's base."""
        dseq = _wrap(seq - self.max_seq[leg], 16)
        offset = _wrap(ts - self.base_ts[leg], 32)
        index: NDArray[np.int64] = (offset + FRAME // 2) // FRAME
        return dseq, index

    def _resync(
        self,
        leg: NDArray[np.int64],
        seq: NDArray[np.int64],
        ts: NDArray[np.int64],
        now: NDArray[np.float64],
        ssrc: NDArray[np.int64] | None,
    ) -> None:
        """Start a new stream on these legs at this packet; loss so far is kept."""
        self.lost_before[leg] = self.lost()[leg]
        self.valid[leg] = False
        self.state[leg] = _BUFFERING
        self.ssrc[leg] = -1 if ssrc is None else ssrc
        self.base_ts[leg] = ts
        # Start a little before this packet so one that was overtaken still finds a slot.
        self.play[leg] = -_START_SLACK
        self.newest[leg] = -1
        self.max_seq[leg] = seq - 1  # so this packet is a step of +1
        self.base_seq[leg] = seq
        self.stream_received[leg] = 0
        self.last_index[leg] = -1
        self.quiet_until[leg] = 0
        self.first_arrival[leg] = now
        self.last_arrival[leg] = _NEVER  # transit times of the old stream mean nothing now

    def _store(
        self,
        leg: NDArray[np.int64],
        slot: NDArray[np.int64],
        index: NDArray[np.int64],
        pcm: NDArray[np.int16],
        now: NDArray[np.float64],
    ) -> None:
        self.buf[leg, slot] = pcm
        self.valid[leg, slot] = True
        self.slot_index[leg, slot] = index
        self.newest[leg] = np.maximum(self.newest[leg], index)
        waiting = np.isinf(self.first_arrival[leg])
        if waiting.any():  # only legs that start buffering
            self.first_arrival[leg[waiting]] = now[waiting]

    def _sequence(
        self,
        leg: NDArray[np.int64],
        dseq: NDArray[np.int64],
        index: NDArray[np.int64],
        marker: NDArray[np.bool_],
    ) -> None:
        """Advance the highest sequence number; note sender-declared silence before a packet."""
        ahead = dseq > 0
        silent_gap = ahead & ((dseq == 1) | marker) & (index > self.last_index[leg] + 1)
        if silent_gap.any():
            self.quiet_until[leg[silent_gap]] = index[silent_gap]
        if ahead.all():  # the usual tick: every packet is the next (or a newer) one
            self.max_seq[leg] += dseq
            self.last_index[leg] = index
        else:
            self.max_seq[leg[ahead]] += dseq[ahead]
            self.last_index[leg[ahead]] = index[ahead]

    def _jitter(
        self, leg: NDArray[np.int64], ts: NDArray[np.int64], now: NDArray[np.float64]
    ) -> None:
        """RFC 3550 A.8: D = (Rj − Ri) − (Sj − Si) in timestamp units; J += (|D| − J)/16."""
        last = self.last_arrival[leg]
        known = np.isfinite(last)
        if known.all():
            d = (now - last) * RATE - _wrap(ts - self.last_ts[leg], 32)
            self.jitter[leg] += (np.abs(d) - self.jitter[leg]) / 16.0
        else:
            old = leg[known]
            d = (now[known] - last[known]) * RATE - _wrap(ts[known] - self.last_ts[old], 32)
            self.jitter[old] += (np.abs(d) - self.jitter[old]) / 16.0
        self.last_arrival[leg] = now
        self.last_ts[leg] = ts

    # -- pop -------------------------------------------------------------------------------

    def pop(self, now: float) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
        """One tick: ``(N, 160)`` frames and ``(N,)`` ``FrameStatus`` codes.

        The arrays are the bank's own and valid until the next ``pop`` but one (two pairs
        alternate); copy them to keep them longer.
        """
        self._tick += 1
        self._out, self._prev_out = self._prev_out, self._out
        self._status, self._prev_status = self._prev_status, self._status
        self._status.fill(_EMPTY)
        target = self.target_frames()
        self._start_ready(target, now)
        # Legs still buffering after playing before fill the gap; decided before ``_play`` so a
        # leg that underruns in this tick is filled once, there.
        waiting = np.flatnonzero((self.state == _BUFFERING) & self.has_played)
        self._play(np.flatnonzero(self.state == _PLAYING), target)
        self._fill(waiting, waiting[:0])
        empty = self._status == _EMPTY
        self._out[empty] = 0
        for status, counter in _STATUS_COUNTERS:
            self.counters[counter] += self._status == status
        return self._out, self._status

    def _start_ready(self, target: NDArray[np.int64], now: float) -> None:
        """BUFFERING legs with enough queued (or waited long enough) start at the oldest frame."""
        legs = np.flatnonzero(self.state == _BUFFERING)
        if not len(legs):
            return
        index = self.slot_index[legs]
        usable = self.valid[legs] & (index >= self.play[legs, None])
        oldest = np.where(usable, index, _FAR).min(axis=1)
        queued = oldest != _FAR
        deep = self.newest[legs] - oldest + 1 >= target[legs]
        waited = now - self.first_arrival[legs] >= target[legs] * (FRAME / RATE) - 1e-9
        start = queued & (deep | waited)
        ready = legs[start]
        self.play[ready] = oldest[start]
        self.state[ready] = _PLAYING
        self.level[ready] = self.newest[ready] - self.play[ready] + 1
        self.above[ready] = 0
        self.below[ready] = 0

    def _play(self, legs: NDArray[np.int64], target: NDArray[np.int64]) -> None:
        """PLAYING legs: play the frame due, or conceal a loss, or fall back to BUFFERING."""
        play = self.play[legs]
        slot = play % self.slots
        hit = self.valid[legs, slot] & (self.slot_index[legs, slot] == play)
        underrun = ~hit & (self.newest[legs] < play)
        drop, insert = self._drift(legs, target[legs], underrun)
        plays = hit & ~insert
        out, out_slot = legs[plays], slot[plays]
        frames = self.buf[out, out_slot]
        self._out[out] = frames
        self._status[out] = _PLAYED
        self.valid[out, out_slot] = False
        self.has_played[out] = True
        self.conceal_run[out] = 0
        skip = legs[drop & plays]
        self.valid[skip, (self.play[skip] + 1) % self.slots] = False
        self.counters[_C_DROPPED, skip] += 1
        missing = ~hit & ~underrun & ~insert
        # Advance played and lost frames by one, dropped ones by two; hold inserts and underruns.
        step = plays.astype(np.int64) + missing + (drop & plays)
        self.play[legs] += step
        gone = legs[underrun]
        self.state[gone] = _BUFFERING
        self.first_arrival[gone] = _NEVER
        self.counters[_C_UNDERRUNS, gone] += 1
        self.counters[_C_INSERTED, legs[insert]] += 1
        lost = legs[missing]
        quiet = lost[self.play[lost] - 1 < self.quiet_until[lost]]
        self._fill(legs[~plays], quiet)

    def _drift(
        self, legs: NDArray[np.int64], target: NDArray[np.int64], underrun: NDArray[np.bool_]
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Average the queue depth; too deep for long drops a frame, too shallow inserts one."""
        depth = self.newest[legs] - self.play[legs] + 1
        level = self.level[legs] + (depth - self.level[legs]) * _EMA
        above = np.where(level > target + 1, self.above[legs] + 1, 0)
        below = np.where((level < target - 1) & ~underrun, self.below[legs] + 1, 0)
        drop = above >= self.drift_hold
        insert = below >= self.drift_hold
        level[drop] -= 1.0  # the measurement lags the action; do not act twice for one excess
        level[insert] += 1.0
        above[drop] = 0
        below[insert] = 0
        self.level[legs] = level
        self.above[legs] = above
        self.below[legs] = below
        return drop, insert

    def _fill(self, legs: NDArray[np.int64], quiet: NDArray[np.int64]) -> None:
        """Synthesise frames for legs with nothing to play: fading repeats, then comfort noise."""
        # A leg that played last tick and not now: its last played frame is last tick's output.
        stopped = legs[self._prev_status[legs] == _PLAYED]
        self._last[stopped] = self._prev_out[stopped]
        run = self.conceal_run[legs]
        conceal = run < self.conceal_frames
        conceal[np.isin(legs, quiet)] = False
        rep = legs[conceal]
        if len(rep):
            faded = self._last[rep] * self._fade[run[conceal]][:, None]
            self._out[rep] = faded.astype(np.int16)
            self._status[rep] = _CONCEALED
            self.conceal_run[rep] += 1
        noise = legs[~conceal]
        self._out[noise] = self._noise[(self._tick + noise) % _NOISE_FRAMES]
        self._status[noise] = _COMFORT


_STATUS_COUNTERS = (
    (_PLAYED, _C_PLAYED),
    (_CONCEALED, _C_CONCEALED),
    (_COMFORT, _C_COMFORT),
)


def _packet_field(values: ArrayLike, k: int, name: str, limit: int) -> NDArray[np.int64]:
    given = np.asarray(values)
    arr = given.astype(np.int64)
    if arr.shape != (k,):
        raise MediaConfigError(f"{name} has shape {arr.shape}, expected ({k},)")
    # Unsigned input no wider than the field (the parser's uint16/uint32) is in range by type.
    in_range = given.dtype.kind == "u" and np.iinfo(given.dtype).max <= limit
    if k and not in_range and (arr.min() < 0 or arr.max() > limit):
        raise MediaConfigError(f"{name} outside [0, {limit}]")
    return arr


def _rounds(leg: NDArray[np.int64]) -> list[NDArray[np.intp]]:
    """Split packet positions into rounds with at most one packet per leg, in arrival order."""
    if not len(leg):
        return []
    order = np.argsort(leg, kind="stable")
    ordered = leg[order]
    new_group = np.empty(len(leg), dtype=np.bool_)
    new_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_group[1:])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(leg)), 0))
    rank = np.arange(len(leg)) - group_start
    if rank.max() == 0:
        return [np.arange(len(leg))]
    return [order[rank == r] for r in range(int(rank.max()) + 1)]
