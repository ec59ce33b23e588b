"""Jitter buffer bank on a virtual clock: loss, reorder, duplicates, drift, jumps, silence gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from media.errors import MediaConfigError
from media.jitter import FRAME, Counter, FrameStatus, JitterBank

TICK = 0.02
SEQ0 = 65530  # sequence and timestamp both wrap early in every stream
TS0 = 2**32 - 800


@dataclass(order=True)
class Packet:
    at: float
    leg: int = field(compare=False)
    n: int = field(compare=False)  # frame number within the sender's stream
    seq: int = field(compare=False)
    ts: int = field(compare=False)
    ssrc: int = field(compare=False, default=1)
    marker: bool = field(compare=False, default=False)


def stream(
    leg: int,
    count: int,
    *,
    rate: float = 1.0,
    delay: float = 0.005,
    jitter: NDArray[np.float64] | None = None,
    first: int = 0,
) -> list[Packet]:
    """Frames ``first..first+count-1`` sent every 20 ms / ``rate`` with network delay."""
    out = []
    for i in range(count):
        n = first + i
        extra = 0.0 if jitter is None else float(jitter[i])
        out.append(
            Packet(
                n * TICK / rate + delay + extra,
                leg,
                n,
                (SEQ0 + n) % 65536,
                (TS0 + n * FRAME) % 2**32,
            )
        )
    return out


def pcm(n: int) -> NDArray[np.int16]:
    """Frame n carries n + 1 in every sample, so the output tells which frame played."""
    return np.full(FRAME, n % 30000 + 1, dtype=np.int16)


@dataclass
class Trace:
    value: NDArray[np.int64]  # (ticks, legs) first sample of each output frame
    status: NDArray[np.uint8]  # (ticks, legs)

    def played(self, leg: int) -> list[int]:
        """Frame numbers played on ``leg``, in playout order."""
        rows = self.status[:, leg] == FrameStatus.PLAYED
        frames: list[int] = (self.value[rows, leg] - 1).tolist()
        return frames

    def count(self, leg: int, status: FrameStatus) -> int:
        """Frames of ``status`` on ``leg`` up to its last played frame (the stream's end is
        followed by concealment and comfort noise, which is not what a test is about)."""
        end = np.flatnonzero(self.status[:, leg] == FrameStatus.PLAYED)[-1]
        return int((self.status[:end, leg] == status).sum())


def run(bank: JitterBank, packets: list[Packet], ticks: int, start: float = 0.0) -> Trace:
    pending = sorted(packets)
    i = 0
    values = np.zeros((ticks, bank.legs), dtype=np.int64)
    status = np.zeros((ticks, bank.legs), dtype=np.uint8)
    for t in range(ticks):
        now = start + (t + 1) * TICK
        batch = []
        while i < len(pending) and pending[i].at <= now:
            batch.append(pending[i])
            i += 1
        if batch:
            bank.put(
                [p.leg for p in batch],
                [p.seq for p in batch],
                [p.ts for p in batch],
                np.array([pcm(p.n) for p in batch], dtype=np.int16),
                [p.at for p in batch],
                ssrc=[p.ssrc for p in batch],
                marker=[p.marker for p in batch],
            )
        frames, codes = bank.pop(now)
        values[t] = frames[:, 0]
        status[t] = codes
    return Trace(values, status)


def bank(legs: int = 1, **kwargs: int | float) -> JitterBank:
    return JitterBank(legs, rng=np.random.default_rng(5), **kwargs)  # type: ignore[arg-type]


def test_clean_stream_plays_every_frame_in_order() -> None:
    jb = bank()
    trace = run(jb, stream(0, 200, delay=0.03), 210)
    assert trace.played(0) == list(range(200))
    assert jb.counters[Counter.PLAYED, 0] == 200
    for c in (Counter.LATE, Counter.DUPLICATES, Counter.DROPPED, Counter.RESYNCS):
        assert jb.counters[c, 0] == 0
    assert jb.lost()[0] == 0
    # Startup is silent (EMPTY), not noise.
    assert trace.status[0, 0] == FrameStatus.EMPTY and trace.value[0, 0] == 0


def test_loss_is_concealed_then_comfort_noise() -> None:
    lost = {50, 100, 101, 150, 151, 152, 153, 154, 155}
    jb = bank(conceal_frames=3)
    trace = run(jb, [p for p in stream(0, 250) if p.n not in lost], 260)
    played = trace.played(0)
    assert played == [n for n in range(250) if n not in lost]
    assert jb.lost()[0] == len(lost)
    assert trace.count(0, FrameStatus.CONCEALED) == 1 + 2 + 3
    assert trace.count(0, FrameStatus.COMFORT) == 3  # 153..155: past the concealment budget
    # The concealed frame is a faded copy of the previous one, never louder.
    at = played.index(49)
    row = np.flatnonzero(trace.status[:, 0] == FrameStatus.PLAYED)[at] + 1
    assert trace.status[row, 0] == FrameStatus.CONCEALED
    assert 0 < trace.value[row, 0] < 50


def test_reordered_packets_play_in_order() -> None:
    packets = stream(0, 300)
    for p in packets[10::7]:
        p.at += 0.025  # overtaken by the next packet
    jb = bank(min_delay_ms=60)
    trace = run(jb, packets, 320)
    assert trace.played(0) == list(range(300))
    assert jb.counters[Counter.LATE, 0] == 0
    assert trace.count(0, FrameStatus.CONCEALED) == 0


def test_packets_reordered_at_stream_start_are_kept() -> None:
    packets = stream(0, 50, delay=0.03)
    packets[0].at, packets[1].at = packets[1].at + 0.001, packets[0].at
    jb = bank(min_delay_ms=40)
    trace = run(jb, packets, 60)
    assert trace.played(0) == list(range(50))
    assert jb.counters[Counter.LATE, 0] == 0


def test_duplicates_are_dropped_and_counted() -> None:
    packets = stream(0, 100)
    dups = [Packet(p.at + 0.004, p.leg, p.n, p.seq, p.ts) for p in packets[::5]]
    jb = bank(min_delay_ms=40)
    trace = run(jb, packets + dups, 110)
    assert trace.played(0) == list(range(100))
    assert jb.counters[Counter.DUPLICATES, 0] + jb.counters[Counter.LATE, 0] == len(dups)
    assert jb.lost()[0] == 0


def test_late_packet_is_counted_and_dropped() -> None:
    packets = stream(0, 100)
    packets[40].at += 0.3
    jb = bank()
    trace = run(jb, packets, 110)
    assert trace.played(0) == [n for n in range(100) if n != 40]
    assert jb.counters[Counter.LATE, 0] == 1
    assert trace.count(0, FrameStatus.CONCEALED) == 1


def test_several_packets_of_one_leg_in_one_put_keep_arrival_order() -> None:
    packets = stream(0, 60)
    for p in packets[20:30]:
        p.at = packets[30].at  # a burst: ten frames arrive together
    jb = bank(min_delay_ms=20)
    trace = run(jb, packets, 70)
    played = trace.played(0)
    assert played == sorted(played)
    assert len(set(played)) == len(played)
    assert jb.counters[Counter.RECEIVED, 0] == 60


@pytest.mark.parametrize("rate", [1.001, 0.999])
def test_clock_drift_over_five_minutes(rate: float) -> None:
    count = int(5 * 60 / TICK)
    rng = np.random.default_rng(3)
    jit = rng.uniform(0.0, 0.015, count)
    jb = bank(3, drift_hold=25)
    packets = (
        stream(0, count, rate=rate, jitter=jit)
        + stream(1, count, jitter=jit)  # a well-behaved neighbour in the same bank
        + stream(2, count, rate=2.0 - rate, jitter=jit)  # the opposite drift
    )
    ticks = count - 200
    trace = run(jb, packets, ticks)
    expected = ticks * 0.001  # one frame per 1,000
    fast, slow = (0, 2) if rate > 1 else (2, 0)
    inserted = jb.counters[Counter.INSERTED] + jb.counters[Counter.UNDERRUNS]
    dropped = jb.counters[Counter.DROPPED]
    assert 0.7 * expected <= dropped[fast] <= 1.5 * expected
    assert 0.7 * expected <= inserted[slow] <= 1.5 * expected
    assert dropped[slow] == inserted[fast] == 0
    assert dropped[1] == inserted[1] == 0
    # The buffer never runs away: the queue stays within the maximum delay, nothing is late.
    depth = jb.newest - jb.play + 1
    assert (depth <= jb.max_frames).all()
    assert jb.counters[Counter.LATE].sum() == 0
    for leg in range(3):
        played = trace.played(leg)
        assert played == sorted(played)
        assert len(played) >= ticks - 2 * expected - 5


def test_timestamp_jump_resyncs_without_a_flood_of_late_packets() -> None:
    packets = stream(0, 100)
    for p in packets[50:]:
        p.ts = (p.ts - 3_000_000) % 2**32  # the sender restarted its timestamp clock
    jb = bank()
    trace = run(jb, packets, 110)
    played = trace.played(0)
    assert played[:50] == list(range(50))
    assert played[-40:] == list(range(60, 100))
    assert jb.counters[Counter.RESYNCS, 0] == 1
    assert jb.counters[Counter.LATE, 0] == 0


def test_ssrc_change_resyncs() -> None:
    old = stream(0, 50)
    new = [
        Packet(p.at, 0, p.n, (p.seq + 20000) % 65536, (p.ts + 12345) % 2**32, ssrc=9)
        for p in stream(0, 50, first=50)
    ]
    jb = bank()
    trace = run(jb, old + new, 110)
    assert trace.played(0) == list(range(100))
    assert jb.counters[Counter.RESYNCS, 0] == 1
    assert jb.lost()[0] == 0


def test_silence_suppressed_gap_is_not_loss() -> None:
    talk = stream(0, 50)
    # One second of silence: no packets, timestamps jump 50 frames, sequence numbers continue.
    resume = stream(0, 50, first=100)
    for i, p in enumerate(resume):
        p.seq = (SEQ0 + 50 + i) % 65536
    resume[0].marker = True
    jb = bank()
    trace = run(jb, talk + resume, 160)
    assert trace.played(0) == list(range(50)) + list(range(100, 150))
    assert jb.lost()[0] == 0
    assert jb.counters[Counter.RESYNCS, 0] == 0
    assert trace.count(0, FrameStatus.CONCEALED) <= jb.conceal_frames  # before the gap was known
    assert trace.count(0, FrameStatus.COMFORT) >= 40


def test_short_silence_gap_inside_the_buffer_is_comfort_noise() -> None:
    packets = [p for p in stream(0, 100) if not 40 <= p.n < 43]
    for p in packets[40:]:
        p.seq = (p.seq - 3) % 65536  # contiguous sequence numbers across the gap
    jb = bank(min_delay_ms=100)
    trace = run(jb, packets, 120)
    assert trace.played(0) == [n for n in range(100) if not 40 <= n < 43]
    assert trace.count(0, FrameStatus.CONCEALED) == 0
    assert trace.count(0, FrameStatus.COMFORT) == 3
    assert jb.lost()[0] == 0


def test_target_delay_adapts_to_jitter() -> None:
    rng = np.random.default_rng(11)
    calm = bank()
    run(calm, stream(0, 500, jitter=rng.uniform(0, 0.002, 500)), 510)
    rough = bank()
    trace = run(rough, stream(0, 1500, jitter=rng.uniform(0, 0.08, 1500)), 1510)
    assert calm.target_frames()[0] == 1
    assert 3 <= rough.target_frames()[0] <= rough.max_frames
    assert 20 <= rough.stats(0)["jitter_ms"] <= 40
    # After adapting, late packets become rare.
    late_rows = trace.status[1000:, 0] != FrameStatus.PLAYED
    assert late_rows.mean() < 0.05


def test_reset_frees_a_slot_for_a_new_call() -> None:
    jb = bank(2)
    run(jb, stream(0, 50) + stream(1, 50), 60)
    jb.reset(0)
    assert jb.counters[:, 0].sum() == 0
    assert jb.counters[Counter.PLAYED, 1] == 50
    trace = run(
        jb,
        [
            Packet(p.at + 2.0, 0, p.n, (p.seq + 0x1234) % 65536, p.ts, ssrc=77)
            for p in stream(0, 50)
        ],
        60,
        1.9,
    )
    assert trace.played(0) == list(range(50))
    assert jb.counters[Counter.RESYNCS, 0] == 0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.floats(0.0, 0.3),
    st.floats(0.0, 0.3),
    st.floats(0.0, 0.06),
)
def test_random_network_never_plays_out_of_order(
    seed: int, loss: float, dup: float, spread: float
) -> None:
    rng = np.random.default_rng(seed)
    packets = [
        p for p in stream(0, 150, jitter=rng.uniform(0, spread, 150)) if rng.random() >= loss
    ]
    packets += [Packet(p.at + 0.01, 0, p.n, p.seq, p.ts) for p in packets if rng.random() < dup]
    jb = bank(min_delay_ms=20, max_delay_ms=200)
    trace = run(jb, packets, 170)
    played = trace.played(0)
    assert played == sorted(set(played))  # increasing, never twice
    sent = {p.n for p in packets}
    assert set(played) <= sent
    counted = jb.counters[:, 0]
    assert counted[Counter.PLAYED] == len(played)
    assert (trace.status[:, 0] <= FrameStatus.COMFORT).all()


def test_bad_input_is_named() -> None:
    jb = bank(2)
    frame = np.zeros((1, FRAME), dtype=np.int16)
    with pytest.raises(MediaConfigError, match="put leg outside \\[0, 2\\)"):
        jb.put([2], [1], [1], frame, 0.0)
    with pytest.raises(MediaConfigError, match="seq outside \\[0, 65535\\]"):
        jb.put([0], [70000], [1], frame, 0.0)
    with pytest.raises(MediaConfigError, match="frames must be int16 of shape \\(1, 160\\)"):
        jb.put([0], [1], [1], frame.astype(np.float32), 0.0)
    with pytest.raises(MediaConfigError, match="ts has shape \\(2,\\), expected \\(1,\\)"):
        jb.put([0], [1], [1, 2], frame, 0.0)
    with pytest.raises(MediaConfigError, match="leg 5 outside"):
        jb.reset(5)
    with pytest.raises(MediaConfigError, match="delays need 20 <= min \\(10\\)"):
        bank(min_delay_ms=10)
    with pytest.raises(MediaConfigError, match="8 slots cannot hold 200 ms"):
        bank(slots=8)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.4), st.floats(0.0, 0.2))
def test_a_tick_batch_ends_in_the_same_state_as_its_packets_one_by_one(
    seed: int, loss: float, dup: float
) -> None:
    # The engine puts a whole tick at once (legs ascending: the single-round path, with whole
    # array updates when every packet is in order); the reference puts each packet alone.
    rng = np.random.default_rng(seed)
    legs, ticks = 6, 90
    packets = []
    for leg in range(legs):
        jitter = rng.uniform(0, 0.05, ticks)
        kept = [p for p in stream(leg, ticks, jitter=jitter) if rng.random() >= loss]
        kept += [Packet(p.at + 0.01, leg, p.n, p.seq, p.ts) for p in kept if rng.random() < dup]
        packets += kept
    batched, single = bank(legs), bank(legs)
    pending = sorted(packets, key=lambda p: (p.at, p.leg))
    i = 0
    for t in range(ticks + 10):
        now = (t + 1) * TICK
        tick = []
        while i < len(pending) and pending[i].at <= now:
            tick.append(pending[i])
            i += 1
        tick.sort(key=lambda p: p.leg)  # stable: one leg's packets keep their arrival order
        _put(batched, tick, now)
        for p in tick:
            _put(single, [p], now)
        frames_b, status_b = batched.pop(now)
        frames_s, status_s = single.pop(now)
        np.testing.assert_array_equal(status_b, status_s)
        np.testing.assert_array_equal(frames_b, frames_s)
    np.testing.assert_array_equal(batched.counters, single.counters)
    np.testing.assert_array_equal(batched.jitter, single.jitter)
    np.testing.assert_array_equal(batched.lost(), single.lost())


def _put(jb: JitterBank, batch: list[Packet], now: float) -> None:
    jb.put(
        [p.leg for p in batch],
        [p.seq for p in batch],
        [p.ts for p in batch],
        np.array([pcm(p.n) for p in batch], dtype=np.int16).reshape(-1, FRAME),
        now,
        ssrc=[p.ssrc for p in batch],
    )


def test_parser_typed_fields_skip_the_range_check_but_wide_ones_do_not() -> None:
    jb = bank(1)
    frame = np.zeros((1, FRAME), dtype=np.int16)
    jb.put([0], np.array([65535], np.uint16), np.array([2**32 - 1], np.uint32), frame, 0.0)
    assert jb.counters[Counter.RECEIVED, 0] == 1
    with pytest.raises(MediaConfigError, match="seq outside \\[0, 65535\\]"):
        jb.put([0], np.array([65536], np.uint32), [1], frame, 0.0)
