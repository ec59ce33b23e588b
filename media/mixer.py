"""The N-1 conference mixer: one vectorised pass over every leg of every meeting per 20 ms tick.

References: RFC 4353 §5 and RFC 4579 (the conference focus mixes media for its participants);
RFC 6464/6465 (per-leg audio levels in dBov feed talker detection in ``media.talk``); ITU-T
G.711 (the shared mixes are encoded once per codec by the engine).

Theory of operation. The topology — which meeting each leg is in, its flags and gains — changes
between ticks only, so it is compiled once into a :class:`MixPlan` (validated, gains turned into
fixed point, contributors pre-sorted by meeting). Each tick :func:`mix` then does, for all
meetings at once and without a Python loop per leg, per meeting or per sample:

1. gather the frames of the legs that may contribute *and* are talking this tick (muted, held,
   listener and meeting-less legs never contribute), apply input gain in int32 fixed point
   (Q9, rounded) and clip each contribution to 16 bits, as a real input stage would;
2. sum contributions per meeting with one ``np.add.reduceat`` over the meeting-sorted rows, in
   int32 (each term is ≤ 2**15, so up to 65,535 contributors per meeting cannot overflow), and
   add meeting-wide overlays (entry/exit tones, announcements) to those totals;
3. clip the totals to int16: these are the **shared** frames, one per meeting, which every
   non-talking leg that hears the meeting receives — the engine encodes each once per codec and
   sends the same payload to all of them, so a listener costs almost nothing. Two extra shared
   rows follow the meetings: the music-on-hold frame (held legs) and silence (deaf legs, legs in
   no meeting);
4. build **private** frames only where sharing is impossible: a talker hears ``total − own``
   (computed wide from the unclipped total, then clipped); a leg with output gain ≠ 0 dB or a
   per-leg prompt overlay (mixed into what it hears, or replacing it for an exclusive IVR prompt)
   gets its own copy, and so does a leg left out of its meeting's overlay (an entrant does not
   hear its own entry tone): its wide frame swaps the meeting's overlay for its own. Output
   gain is applied to the wide value, then clipped: never wrap.

Deaf legs hear silence but still get their per-leg prompts (a deaf leg can be told it is
muted). The result holds views into a reusable :class:`MixWorkspace`; they stay valid until the
next :func:`mix` with the same workspace. Nothing here keeps state between ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from media.errors import MediaConfigError

FRAME = 160
NO_MEETING = -1
# The one home of the gain limits: the meeting service and the REST API refuse what lies outside.
MIN_GAIN_DB = -20.0
MAX_GAIN_DB = 20.0
GAIN_SHIFT = 9
GAIN_ONE = 1 << GAIN_SHIFT
_GAIN_ROUND = 1 << (GAIN_SHIFT - 1)
_MAX_GAIN_Q = round(10.0 ** (MAX_GAIN_DB / 20.0) * GAIN_ONE)
# Before output gain a wide sum is clipped to this: large enough that any gain in range still
# drives it past full scale (so the final clip is unchanged), small enough that x * gain fits int32.
WIDE_LIMIT = (2**31 - 1 - _GAIN_ROUND) // _MAX_GAIN_Q
MAX_CONTRIBUTORS = 65535
_FLAGS = ("muted", "deaf", "held", "listener")
_I16_MIN, _I16_MAX = -32768, 32767


def gain_db_to_q(gain_db: ArrayLike, what: str = "gain") -> NDArray[np.int32]:
    """dB (``MIN_GAIN_DB``…``MAX_GAIN_DB``) to Q9, rounded; beyond raises ``MediaConfigError``."""
    db = np.asarray(gain_db, dtype=np.float64)
    bad = ~((db >= MIN_GAIN_DB) & (db <= MAX_GAIN_DB))  # NaN is bad too
    if bad.any():
        first = float(db.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]])
        raise MediaConfigError(f"{what} {first} dB outside [{MIN_GAIN_DB}, {MAX_GAIN_DB}] dB")
    q: NDArray[np.int32] = np.rint(10.0 ** (db / 20.0) * GAIN_ONE).astype(np.int32)
    return q


def _leg_vector(value: ArrayLike | None, legs: int, name: str) -> NDArray[np.generic]:
    arr = np.zeros(legs) if value is None else np.asarray(value)
    if arr.shape != (legs,):
        raise MediaConfigError(f"{name} has shape {arr.shape}, expected ({legs},)")
    return arr


def _leg_flags(value: ArrayLike | None, legs: int, name: str) -> NDArray[np.bool_]:
    flags: NDArray[np.bool_] = _leg_vector(value, legs, name).astype(np.bool_)
    return flags


def _leg_gains(value: ArrayLike | None, legs: int, name: str) -> NDArray[np.int32]:
    return gain_db_to_q(_leg_vector(value, legs, f"{name}_gain_db"), f"{name} gain")


@dataclass(frozen=True, eq=False)
class MixPlan:
    """Compiled topology for ``mix``; build it between ticks with :meth:`build`."""

    legs: int
    meetings: int
    meeting: NDArray[np.intp]
    contributor_order: NDArray[np.intp]
    hears_mix: NDArray[np.bool_]
    shared_row: NDArray[np.intp]
    in_gain_q: NDArray[np.int32]
    out_gain_q: NDArray[np.int32]
    any_in_gain: bool
    gain_private: NDArray[np.bool_]

    @property
    def moh_row(self) -> int:
        """Row of the shared frames that carries music on hold."""
        return self.meetings

    @property
    def silence_row(self) -> int:
        """Row of the shared frames that is always silent."""
        return self.meetings + 1

    @classmethod
    def build(
        cls,
        meeting_of_leg: ArrayLike,
        *,
        meetings: int | None = None,
        input_gain_db: ArrayLike | None = None,
        output_gain_db: ArrayLike | None = None,
        muted: ArrayLike | None = None,
        deaf: ArrayLike | None = None,
        held: ArrayLike | None = None,
        listener: ArrayLike | None = None,
    ) -> MixPlan:
        """Validate per-leg vectors (shape ``(N,)``; meeting −1 = in no meeting) into a plan."""
        meeting = np.asarray(meeting_of_leg)
        if meeting.ndim != 1 or not np.issubdtype(meeting.dtype, np.integer):
            raise MediaConfigError(
                f"meeting_of_leg must be a 1-D integer array, got {meeting.dtype}{meeting.shape}"
            )
        meeting = meeting.astype(np.intp)
        n = len(meeting)
        m = int(meeting.max(initial=-1)) + 1 if meetings is None else meetings
        if n and (meeting.min() < NO_MEETING or meeting.max() >= m):
            raise MediaConfigError(f"meeting index outside [-1, {m}) in meeting_of_leg")
        flags = {
            name: _leg_flags(value, n, name)
            for name, value in zip(_FLAGS, (muted, deaf, held, listener), strict=True)
        }
        in_q = _leg_gains(input_gain_db, n, "input")
        out_q = _leg_gains(output_gain_db, n, "output")
        present = meeting != NO_MEETING
        contributes = present & ~(flags["muted"] | flags["held"] | flags["listener"])
        if contributes.any() and np.bincount(meeting[contributes]).max() > MAX_CONTRIBUTORS:
            raise MediaConfigError(f"more than {MAX_CONTRIBUTORS} contributing legs in one meeting")
        candidates = np.flatnonzero(contributes)
        order = candidates[np.argsort(meeting[candidates], kind="stable")]
        hears = present & ~(flags["deaf"] | flags["held"])
        shared_row = np.where(hears, meeting, m + 1)
        shared_row[present & flags["held"] & ~flags["deaf"]] = m
        return cls(
            legs=n,
            meetings=m,
            meeting=meeting,
            contributor_order=order.astype(np.intp),
            hears_mix=hears,
            shared_row=shared_row.astype(np.intp),
            in_gain_q=in_q,
            out_gain_q=out_q,
            any_in_gain=bool((in_q != GAIN_ONE).any()),
            gain_private=(out_q != GAIN_ONE) & (shared_row != m + 1),
        )


def _frames_arg(frames: ArrayLike, rows: int, name: str) -> NDArray[np.int16]:
    arr = np.asarray(frames)
    if arr.dtype != np.int16 or arr.shape != (rows, FRAME):
        raise MediaConfigError(
            f"{name} must be int16 of shape ({rows}, {FRAME}), got {arr.dtype}{arr.shape}"
        )
    return arr


def _unique_index(values: ArrayLike, limit: int, name: str) -> NDArray[np.intp]:
    arr = np.asarray(values, dtype=np.intp)
    if arr.ndim != 1:
        raise MediaConfigError(f"{name} must be 1-D, got shape {arr.shape}")
    if len(arr) and (arr.min() < 0 or arr.max() >= limit):
        raise MediaConfigError(f"{name} outside [0, {limit})")
    if len(np.unique(arr)) != len(arr):
        raise MediaConfigError(f"{name} repeats an entry; merge frames before mixing")
    return arr


@dataclass(frozen=True, eq=False)
class LegOverlays:
    """Per-leg prompt frames this tick: added to what the leg hears, or replacing it."""

    legs: NDArray[np.intp]
    frames: NDArray[np.int16]
    exclusive: NDArray[np.bool_]

    @classmethod
    def of(
        cls, legs: ArrayLike, frames: ArrayLike, exclusive: ArrayLike, leg_count: int
    ) -> LegOverlays:
        idx = _unique_index(legs, leg_count, "overlay legs")
        excl = np.asarray(exclusive, dtype=np.bool_)
        if excl.shape != idx.shape:
            raise MediaConfigError(
                f"overlay exclusive flags have shape {excl.shape}, expected {idx.shape}"
            )
        return cls(idx, _frames_arg(frames, len(idx), "overlay frames"), excl)


@dataclass(frozen=True, eq=False)
class MeetingOverlays:
    """Frames played into whole meetings this tick (entry/exit tones, announcements).

    Leg ``excluded[i]`` hears ``excluded_frames[i]`` in place of its meeting's overlay frame:
    an entrant is left out of its own entry tone (silence when it is left out of every overlay
    of its meeting) and keeps hearing the meeting itself.
    """

    meetings: NDArray[np.intp]
    frames: NDArray[np.int16]
    excluded: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    excluded_frames: NDArray[np.int16] = field(
        default_factory=lambda: np.zeros((0, FRAME), np.int16)
    )

    @classmethod
    def of(
        cls,
        meetings: ArrayLike,
        frames: ArrayLike,
        meeting_count: int,
        *,
        excluded: ArrayLike = (),
        excluded_frames: ArrayLike | None = None,
        leg_count: int = 0,
    ) -> MeetingOverlays:
        idx = _unique_index(meetings, meeting_count, "overlay meetings")
        legs = _unique_index(excluded, leg_count, "overlay excluded legs")
        instead = np.zeros((0, FRAME), np.int16) if excluded_frames is None else excluded_frames
        return cls(
            idx,
            _frames_arg(frames, len(idx), "meeting overlay frames"),
            legs,
            _frames_arg(instead, len(legs), "excluded overlay frames"),
        )


@dataclass(eq=False)
class MixWorkspace:
    """Preallocated tick buffers, grown on demand and reused: a tick allocates almost nothing."""

    legs: int = 0
    meetings: int = 0
    contrib16: NDArray[np.int16] = field(default_factory=lambda: np.zeros((0, FRAME), np.int16))
    contrib32: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, FRAME), np.int32))
    private32: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, FRAME), np.int32))
    private16: NDArray[np.int16] = field(default_factory=lambda: np.zeros((0, FRAME), np.int16))
    totals32: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, FRAME), np.int32))
    shared16: NDArray[np.int16] = field(default_factory=lambda: np.zeros((0, FRAME), np.int16))
    private_row: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    extra: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    def ensure(self, legs: int, meetings: int) -> None:
        """Grow the buffers to hold ``legs`` legs and ``meetings`` meetings (+2 shared rows)."""
        if legs > self.legs:
            self.legs = legs
            self.contrib16 = np.zeros((legs, FRAME), np.int16)
            self.contrib32 = np.zeros((legs, FRAME), np.int32)
            self.private32 = np.zeros((legs, FRAME), np.int32)
            self.private16 = np.zeros((legs, FRAME), np.int16)
            self.private_row = np.zeros(legs, np.intp)
            self.extra = np.zeros(legs, np.bool_)
        if meetings + 2 > self.meetings:
            self.meetings = meetings + 2
            self.totals32 = np.zeros((meetings + 2, FRAME), np.int32)
            self.shared16 = np.zeros((meetings + 2, FRAME), np.int16)


@dataclass(frozen=True, eq=False)
class MixResult:
    """What every leg hears this tick, as shared rows plus private frames.

    Leg ``i`` hears ``private[private_row[i]]`` if ``private_row[i] >= 0``, else
    ``shared[shared_row[i]]``. ``shared_used[r]`` says whether any leg hears shared row ``r``,
    so the engine encodes only those, once per codec.
    """

    shared: NDArray[np.int16]
    shared_row: NDArray[np.intp]
    shared_used: NDArray[np.bool_]
    private: NDArray[np.int16]
    private_legs: NDArray[np.intp]
    private_row: NDArray[np.intp]
    talkers: NDArray[np.intp]

    def heard(self) -> NDArray[np.int16]:
        """Materialise ``(N, 160)``, one frame per leg (tests, file mixdown; not the hot path)."""
        out: NDArray[np.int16] = self.shared[self.shared_row]
        out[self.private_legs] = self.private
        return out


def _gain(wide: NDArray[np.int32], gain_q: NDArray[np.int32]) -> None:
    """In place: ``wide * gain`` in Q9 with rounding (rows scaled by their own gain)."""
    np.multiply(wide, gain_q[:, None], out=wide)
    np.add(wide, _GAIN_ROUND, out=wide)
    np.right_shift(wide, GAIN_SHIFT, out=wide)


def _contributions(
    plan: MixPlan, frames: NDArray[np.int16], idx: NDArray[np.intp], work: MixWorkspace
) -> NDArray[np.int32]:
    """Talking contributors' frames, input gain applied, each clipped to 16 bits, as int32."""
    c16 = work.contrib16[: len(idx)]
    c32 = work.contrib32[: len(idx)]
    np.take(frames, idx, axis=0, out=c16)
    np.copyto(c32, c16)
    if plan.any_in_gain:
        # Gains are rare: scale only the rows that have one rather than every talker.
        gain = plan.in_gain_q[idx]
        scaled = np.flatnonzero(gain != GAIN_ONE)
        if len(scaled):
            sub = c32[scaled]
            _gain(sub, gain[scaled])
            np.clip(sub, _I16_MIN, _I16_MAX, out=sub)
            c32[scaled] = sub
    return c32


def _segment_sums(
    contrib: NDArray[np.int32], meeting_of_talker: NDArray[np.intp], totals: NDArray[np.int32]
) -> None:
    """``totals[m] = sum of contrib rows of meeting m``; rows are sorted by meeting.

    ``np.add.reduceat`` and ``np.cumsum`` along axis 0 cost ~2.5 µs per segment (measured: 2.5 ms
    for 1,000 meetings), so meetings are grouped by their talker count k instead: every group is
    one ``(meetings, k, 160)`` block summed over axis 1. There are as many Python iterations as
    distinct talker counts — usually a handful, at most ~sqrt(2 x talkers).
    """
    first = np.empty(len(meeting_of_talker), dtype=np.bool_)
    first[0] = True
    np.not_equal(meeting_of_talker[1:], meeting_of_talker[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(meeting_of_talker))
    rooms = meeting_of_talker[starts]
    sizes = np.unique(counts)
    if len(sizes) == 1:  # every talking meeting has k talkers: a reshape, no gather
        k = int(sizes[0])
        totals[rooms] = contrib.reshape(-1, k, FRAME).sum(axis=1, dtype=np.int32)
        return
    for k in sizes.tolist():
        group = np.flatnonzero(counts == k)
        rows = (starts[group][:, None] + np.arange(k)).reshape(-1)
        block = contrib[rows].reshape(-1, k, FRAME)
        totals[rooms[group]] = block.sum(axis=1, dtype=np.int32)


def _totals(
    plan: MixPlan,
    contrib: NDArray[np.int32],
    *,
    meeting_of_talker: NDArray[np.intp],
    moh: NDArray[np.int16] | None,
    overlays: MeetingOverlays | None,
    work: MixWorkspace,
) -> NDArray[np.int32]:
    """Wide per-meeting sums plus the MOH and silence rows, shape ``(M + 2, 160)``."""
    totals = work.totals32[: plan.meetings + 2]
    totals.fill(0)
    if len(meeting_of_talker):
        _segment_sums(contrib, meeting_of_talker, totals)
    if overlays is not None:
        totals[overlays.meetings] += overlays.frames
    if moh is not None:
        totals[plan.moh_row] = moh
    return totals


def _private(
    plan: MixPlan,
    totals: NDArray[np.int32],
    *,
    contrib: NDArray[np.int32],
    talkers: NDArray[np.intp],
    overlays: LegOverlays | None,
    excluded: MeetingOverlays | None,
    work: MixWorkspace,
) -> tuple[NDArray[np.intp], NDArray[np.int16]]:
    """Private legs and their frames: N-1 for talkers who hear, then gain/overlay legs."""
    hearing = plan.hears_mix[talkers]
    all_hear = bool(hearing.all())
    n1_legs = talkers if all_hear else talkers[hearing]
    extra_mask = work.extra[: plan.legs]
    np.copyto(extra_mask, plan.gain_private)
    if overlays is not None:
        extra_mask[overlays.legs] = True
    if excluded is not None:
        extra_mask[excluded.excluded] = True
    extra_mask[n1_legs] = False
    extra = np.flatnonzero(extra_mask)
    t, p = len(n1_legs), len(n1_legs) + len(extra)
    legs = np.concatenate((n1_legs, extra))
    wide = work.private32[:p]
    np.take(totals, plan.meeting[n1_legs], axis=0, out=wide[:t])
    np.subtract(wide[:t], contrib if all_hear else contrib[hearing], out=wide[:t])
    np.take(totals, plan.shared_row[extra], axis=0, out=wide[t:])
    row = work.private_row[: plan.legs]
    row.fill(-1)
    row[legs] = np.arange(p)
    if excluded is not None:
        # Before leg overlays: an exclusive prompt still replaces everything.
        _swap_excluded(plan, wide, row, excluded)
    if overlays is not None:
        rows = row[overlays.legs]
        excl = overlays.exclusive
        wide[rows[excl]] = overlays.frames[excl]
        wide[rows[~excl]] += overlays.frames[~excl]
    gain = plan.out_gain_q[legs]
    scaled = np.flatnonzero(gain != GAIN_ONE)
    if len(scaled):
        sub = np.clip(wide[scaled], -WIDE_LIMIT, WIDE_LIMIT)
        _gain(sub, gain[scaled])
        wide[scaled] = sub
    out = work.private16[:p]
    np.clip(wide, _I16_MIN, _I16_MAX, out=out, casting="unsafe")
    return legs, out


def _swap_excluded(
    plan: MixPlan, wide: NDArray[np.int32], row: NDArray[np.intp], overlays: MeetingOverlays
) -> None:
    """Excluded legs that hear their meeting get their own overlay frame instead of its."""
    legs = overlays.excluded
    keep = plan.hears_mix[legs]  # deaf, held or meeting-less legs hear no meeting overlay
    position = np.full(plan.meetings, -1, np.intp)
    position[overlays.meetings] = np.arange(len(overlays.meetings))
    wide[row[legs[keep]]] += overlays.excluded_frames[keep]
    own = position[plan.meeting[legs[keep]]]
    has = own >= 0
    wide[row[legs[keep][has]]] -= overlays.frames[own[has]]


def _tick_inputs(
    plan: MixPlan,
    frames: ArrayLike,
    talking: ArrayLike,
    *,
    moh: ArrayLike | None,
    leg_overlays: LegOverlays | None,
    meeting_overlays: MeetingOverlays | None,
) -> tuple[NDArray[np.int16], NDArray[np.bool_], NDArray[np.int16] | None]:
    """Check one tick's inputs against the plan: (frames, talking, moh frame)."""
    n = plan.legs
    pcm = _frames_arg(frames, n, "frames")
    talk = np.asarray(talking)
    if talk.dtype != np.bool_ or talk.shape != (n,):
        raise MediaConfigError(
            f"talking must be bool of shape ({n},), got {talk.dtype}{talk.shape}"
        )
    hold = None if moh is None else _frames_arg(np.asarray(moh).reshape(1, -1), 1, "moh")[0]
    if leg_overlays is not None and len(leg_overlays.legs) and leg_overlays.legs.max() >= n:
        raise MediaConfigError(f"overlay leg outside [0, {n})")
    rooms = None if meeting_overlays is None else meeting_overlays.meetings
    if rooms is not None and len(rooms) and rooms.max() >= plan.meetings:
        raise MediaConfigError(f"overlay meeting outside [0, {plan.meetings})")
    out = None if meeting_overlays is None else meeting_overlays.excluded
    if out is not None and len(out) and out.max() >= n:
        raise MediaConfigError(f"overlay excluded leg outside [0, {n})")
    return pcm, talk, hold


def mix(
    plan: MixPlan,
    frames: ArrayLike,
    talking: ArrayLike,
    *,
    moh: ArrayLike | None = None,
    leg_overlays: LegOverlays | None = None,
    meeting_overlays: MeetingOverlays | None = None,
    work: MixWorkspace | None = None,
) -> MixResult:
    """Mix one tick: ``frames`` ``(N, 160)`` int16 input, ``talking`` ``(N,)`` bool.

    ``moh`` is the shared music-on-hold frame (silence if None). Pass the same ``work`` every
    tick to avoid allocation; the result's arrays are views into it.
    """
    n = plan.legs
    pcm, talk, hold = _tick_inputs(
        plan, frames, talking, moh=moh, leg_overlays=leg_overlays, meeting_overlays=meeting_overlays
    )
    ws = MixWorkspace() if work is None else work
    ws.ensure(n, plan.meetings)
    order = plan.contributor_order
    talkers = order[talk[order]]
    meeting_of_talker = plan.meeting[talkers]
    contrib = _contributions(plan, pcm, talkers, ws)
    totals = _totals(
        plan,
        contrib,
        meeting_of_talker=meeting_of_talker,
        moh=hold,
        overlays=meeting_overlays,
        work=ws,
    )
    shared = ws.shared16[: plan.meetings + 2]
    np.clip(totals, _I16_MIN, _I16_MAX, out=shared, casting="unsafe")
    private_legs, private = _private(
        plan,
        totals,
        contrib=contrib,
        talkers=talkers,
        overlays=leg_overlays,
        excluded=meeting_overlays if meeting_overlays and len(meeting_overlays.excluded) else None,
        work=ws,
    )
    private_row = ws.private_row[:n]
    used = np.zeros(plan.meetings + 2, dtype=np.bool_)
    used[plan.shared_row[private_row < 0]] = True
    return MixResult(shared, plan.shared_row, used, private, private_legs, private_row, talkers)
