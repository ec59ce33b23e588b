"""Per-leg statistics: A.8 jitter, A.3 interval loss, counters, LSR/DLSR and remote view."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtp import SeqVerdict
from media.stats import ReceiveStats, SendStats


def _stream(stats: ReceiveStats, seqs: list[int], delays: list[float] | None = None) -> None:
    for i, seq in enumerate(seqs):
        late = delays[i] if delays else 0.0
        stats.on_packet(7, seq & 0xFFFF, (seq * 160) & 0xFFFF_FFFF, 160, 50.0 + seq * 0.02 + late)


def test_jitter_known_answer() -> None:
    s = ReceiveStats()
    _stream(s, [1, 2, 3], [0.0, 0.0, 0.010])
    # The third packet is 10 ms (80 samples) late: D = 80, J = 80 / 16.
    assert s.jitter == pytest.approx(5.0)
    assert s.jitter_ms == pytest.approx(0.625)


@given(st.integers(0, 0xFFFF), st.integers(3, 200))
def test_regular_stream_has_no_jitter_even_across_wraps(start: int, n: int) -> None:
    s = ReceiveStats()
    _stream(s, list(range(start, start + n)))
    assert s.jitter == pytest.approx(0.0, abs=1e-6)
    assert (s.lost, s.duplicates, s.late, s.packets, s.octets) == (0, 0, 0, n, 160 * n)


@given(st.lists(st.floats(0.0, 0.06), min_size=3, max_size=100))
def test_jitter_is_bounded_by_the_largest_delay_swing(delays: list[float]) -> None:
    s = ReceiveStats()
    _stream(s, list(range(len(delays))), delays)
    swing = (max(delays) - min(delays)) * 8000
    assert 0.0 <= s.jitter <= swing + 1e-6


def test_duplicates_do_not_move_jitter_and_are_counted() -> None:
    s = ReceiveStats()
    _stream(s, [1, 2, 3])
    before = s.jitter
    verdict = s.on_packet(7, 3, 480, 160, 99.0)  # a duplicate arriving very late
    assert verdict is SeqVerdict.DUPLICATE
    assert s.jitter == before
    assert (s.duplicates, s.packets) == (1, 4)


def test_interval_loss_moves_the_interval() -> None:
    s = ReceiveStats()
    _stream(s, [1, 2, 3, 5, 6, 9])  # base 2: expected 8, received 5
    assert s.cumulative_lost == 3
    assert s.interval_loss() == (3 << 8) // 8
    assert s.interval_loss() == 0  # nothing new since
    _stream(s, [10, 11, 13])
    assert s.interval_loss() == (1 << 8) // 4


def test_restart_resets_the_interval_and_jitter() -> None:
    s = ReceiveStats()
    _stream(s, [1, 2, 3], [0.0, 0.0, 0.02])
    assert s.jitter > 0
    s.on_packet(8, 500, 0, 160, 60.0)
    s.on_packet(8, 501, 160, 160, 60.02)
    assert (s.jitter, s.lost, s.seq.restarts) == (0.0, 0, 1)


def test_dlsr_and_concealed_counter_and_summary() -> None:
    s = ReceiveStats()
    assert s.dlsr(10.0) == 0
    s.on_sender_report(0x1122_3344_5566_7788, arrival=10.0)
    assert s.last_sr_ntp32 == 0x3344_5566
    assert s.dlsr(10.5) == 32768
    s.concealed += 2
    _stream(s, [1, 2, 4])
    assert s.summary() == {
        "rx_packets": 3,
        "rx_octets": 480,
        "rx_lost": 1,
        "rx_duplicates": 0,
        "rx_late": 0,
        "rx_jitter_ms": 0.0,
        "rx_concealed": 2,
    }


def test_send_stats_and_remote_view() -> None:
    t = SendStats()
    t.on_sent(160)
    t.on_sent(160)
    t.on_report(64, 3, 40, lsr=0x1000_0000, dlsr=0x0001_0000, now_ntp32=0x1002_8000)
    assert (t.packets, t.octets, t.reports) == (2, 320, 1)
    assert t.rtt == pytest.approx(1.5)
    assert t.summary()["rtt_ms"] == 1500.0
    assert t.remote_fraction_lost == 0.25
    t.on_report(0, 3, 40, lsr=0x1000_0000, dlsr=0x0010_0000, now_ntp32=0x1002_8000)
    assert t.rtt == 0.0  # a clock error never yields a huge RTT
    t.on_report(0, 3, 40, lsr=0, dlsr=0, now_ntp32=5)
    assert t.rtt == 0.0  # no LSR yet: the previous RTT stands
