"""RFC 4733 telephone-events: payload vectors, receiver sequences, long events, sender."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media import dtmf
from media.dtmf import Digit, DtmfReceiver, DtmfSender, TelephoneEvent
from media.errors import MediaConfigError, MediaParseError
from media.rtp import RtpPacket, RtpStream

VECTORS = tomllib.loads((Path(__file__).parent / "vectors" / "dtmf.toml").read_text("utf-8"))


@pytest.mark.parametrize("vec", VECTORS["payload"], ids=lambda v: v["name"])
def test_golden_payloads(vec: dict[str, Any]) -> None:
    ev = TelephoneEvent.parse(bytes.fromhex(vec["hex"]))
    assert (ev.event, ev.end, ev.volume, ev.duration) == (
        vec["event"],
        vec["end"],
        vec["volume"],
        vec["duration"],
    )
    assert bytes(ev).hex() == vec.get("canonical", vec["hex"])


@pytest.mark.parametrize("vec", VECTORS["error"], ids=lambda v: v["message"])
def test_golden_payload_errors(vec: dict[str, str]) -> None:
    with pytest.raises(MediaParseError) as info:
        TelephoneEvent.parse(bytes.fromhex(vec["hex"]))
    assert str(info.value) == vec["message"]


@pytest.mark.parametrize("vec", VECTORS["sequence"], ids=lambda v: v["name"])
def test_golden_sequences(vec: dict[str, Any]) -> None:
    rx = DtmfReceiver()
    got: list[Digit] = []
    for ts, marker, hexpay, at in vec["packets"]:
        got += rx.feed(ts, marker, bytes.fromhex(hexpay), at)
    got += rx.poll(10.0)
    assert got == [Digit(k, ms, "rfc4733") for k, ms in vec["digits"]]


def test_event_keys_and_non_dtmf_events() -> None:
    assert [TelephoneEvent(n, False, 0, 0).key for n in (0, 9, 10, 11, 12, 15)] == list("09*#AD")
    assert TelephoneEvent(16, False, 0, 0).key is None  # flash
    rx = DtmfReceiver()
    assert rx.feed(0, True, bytes(TelephoneEvent(16, True, 10, 800)), 0.0) == []
    assert rx.ignored == 1


def test_constructor_range_checks() -> None:
    with pytest.raises(MediaConfigError, match=r"volume 64 is outside 0\.\.63"):
        TelephoneEvent(1, False, 64, 0)
    with pytest.raises(MediaConfigError, match="duration 65536 is not 16-bit"):
        TelephoneEvent(1, False, 0, 65536)
    with pytest.raises(MediaConfigError, match="DTMF key 'E'"):
        Digit("E", 100, "info")
    with pytest.raises(MediaConfigError, match="DTMF source 'sms'"):
        Digit("1", 100, "sms")
    with pytest.raises(MediaConfigError, match="negative"):
        Digit("1", -1, "inband")


def test_lost_end_packets_are_reported_once_after_the_timeout() -> None:
    rx = DtmfReceiver(end_timeout=0.5)
    assert rx.feed(800, True, bytes(TelephoneEvent(3, False, 10, 400)), 1.0) == []
    assert rx.next_deadline == 1.5
    assert rx.poll(1.49) == []
    assert rx.poll(1.5) == [Digit("3", 50, "rfc4733")]
    assert [rx.next_deadline] == [None]
    # The end packets limp in afterwards: the event was already reported.
    assert rx.feed(800, False, bytes(TelephoneEvent(3, True, 10, 1600)), 1.6) == []
    assert rx.poll(5.0) == []


def test_late_packet_of_a_superseded_event_is_stale() -> None:
    rx = DtmfReceiver()
    rx.feed(8000, True, bytes(TelephoneEvent(4, False, 10, 400)), 0.0)
    rx.feed(16000, True, bytes(TelephoneEvent(5, False, 10, 400)), 1.0)  # reports '4'
    assert rx.feed(12000, True, bytes(TelephoneEvent(7, False, 10, 400)), 1.01) == []
    assert rx.poll(9.0) == [Digit("5", 50, "rfc4733")]


def test_timestamp_wrap_between_events() -> None:
    rx = DtmfReceiver()
    first = rx.feed(0xFFFF_FF00, True, bytes(TelephoneEvent(1, False, 10, 400)), 0.0)
    second = rx.feed(0x100, True, bytes(TelephoneEvent(2, True, 10, 800)), 0.2)
    assert first == []
    assert second == [Digit("1", 50, "rfc4733"), Digit("2", 100, "rfc4733")]


def test_long_event_segments_make_one_digit() -> None:
    # §2.5.1.3: a press longer than 0xFFFF samples continues in a segment whose timestamp is the
    # previous one plus 0xFFFF, without the marker bit.
    rx = DtmfReceiver()
    ts0 = 0xFFFF_0000  # the segment boundary also wraps the 32-bit timestamp
    ts1 = (ts0 + 0xFFFF) & 0xFFFF_FFFF
    packets = [
        (ts0, True, TelephoneEvent(0, False, 10, 400), 0.0),
        (ts0, False, TelephoneEvent(0, False, 10, 0xFFFF), 8.1),
        (ts1, False, TelephoneEvent(0, False, 10, 400), 8.2),
        (ts1, False, TelephoneEvent(0, True, 10, 8000), 9.2),
        (ts1, False, TelephoneEvent(0, True, 10, 8000), 9.22),
    ]
    got = [d for ts, m, ev, at in packets for d in rx.feed(ts, m, bytes(ev), at)]
    assert got == [Digit("0", (0xFFFF + 8000) * 1000 // 8000, "rfc4733")]


def test_same_key_with_marker_after_a_full_segment_is_a_new_press() -> None:
    rx = DtmfReceiver()
    rx.feed(0, True, bytes(TelephoneEvent(0, False, 10, 0xFFFF)), 0.0)
    got = rx.feed(0xFFFF, True, bytes(TelephoneEvent(0, True, 10, 800)), 0.1)
    assert [d.duration_ms for d in got] == [0xFFFF * 1000 // 8000, 100]


def test_sender_sequence_shape() -> None:
    pkts = DtmfSender(volume=10).packets("#", 120)
    events = [TelephoneEvent.parse(p.payload) for p in pkts]
    assert [p.offset_ms for p in pkts] == [0, 50, 100, 120, 140, 160]
    assert [p.marker for p in pkts] == [True, False, False, False, False, False]
    assert [e.duration for e in events] == [400, 800, 960, 960, 960, 960]
    assert [e.end for e in events] == [False, False, False, True, True, True]
    assert {e.event for e in events} == {11}
    with pytest.raises(MediaConfigError, match="DTMF key 'x'"):
        DtmfSender().packets("x")
    with pytest.raises(MediaConfigError, match="outside one event segment"):
        DtmfSender().packets("1", 9000)


def test_sender_through_rtp_stream_keeps_one_timestamp() -> None:
    stream = RtpStream(ssrc=1, payload_type=0, sequence=10, timestamp=4000)
    rtp_pkts = [
        stream.event_packet(101, stream.timestamp, p.marker, p.payload)
        for p in DtmfSender().packets("7", 100)
    ]
    assert {p.timestamp for p in rtp_pkts} == {4000}
    assert [p.sequence for p in rtp_pkts] == list(range(10, 15))
    assert stream.timestamp == 4000
    wire = [RtpPacket.parse(bytes(p)) for p in rtp_pkts]
    rx = DtmfReceiver()
    got = [d for i, p in enumerate(wire) for d in rx.feed(p.timestamp, p.marker, p.payload, i)]
    assert got == [Digit("7", 100, "rfc4733")]


@st.composite
def _presses(draw: st.DrawFn) -> tuple[list[str], list[tuple[int, bool, bytes]]]:
    """Several presses through the sender, each with random loss (≥ 1 kept) and reordering."""
    keys = draw(st.lists(st.sampled_from(dtmf.KEYS), min_size=1, max_size=6))
    wire: list[tuple[int, bool, bytes]] = []
    for i, key in enumerate(keys):
        pkts = DtmfSender().packets(key, draw(st.integers(40, 400)))
        kept = draw(st.lists(st.sampled_from(pkts), min_size=1, max_size=len(pkts)))
        order = draw(st.permutations(kept))
        wire += [(0x7FFF_0000 + i * 8000, p.marker, p.payload) for p in order]
    return keys, wire


@given(_presses())
def test_every_press_yields_exactly_one_digit(
    case: tuple[list[str], list[tuple[int, bool, bytes]]],
) -> None:
    keys, wire = case
    rx = DtmfReceiver()
    got: list[Digit] = []
    for i, (ts, marker, payload) in enumerate(wire):
        got += rx.feed(ts, marker, payload, i * 0.01)
    got += rx.poll(1e6)
    assert [d.key for d in got] == keys
    assert all(d.source == "rfc4733" for d in got)
