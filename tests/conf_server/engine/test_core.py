"""The media tick on a virtual clock: packets in, packets out, no sockets and no sleeps."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray

from conf_server.engine.core import FRAME, MediaCore, RxBatch
from conf_server.engine.legs import Leg, Playback
from media import tones
from media.dtmf import Digit, DtmfSender
from media.errors import MediaConfigError
from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.playback import PromptPlayer
from sip.offer_answer import MediaParams
from sip.sdp import PCMA, PCMU, Codec, Direction

RATE = 8000


def params(codec: Codec = PCMU, dtmf: int | None = 101, **kw: object) -> MediaParams:
    base: dict[str, object] = {
        "remote_addr": "127.0.0.1",
        "remote_port": 30000,
        "codec": codec,
        "dtmf_payload_type": dtmf,
        "ptime": 20,
        "direction": Direction.SENDRECV,
        "on_hold": False,
    }
    base.update(kw)
    return MediaParams(**base)  # type: ignore[arg-type]


def sine(freq: float, start: int, amp: float = 8000.0) -> NDArray[np.int16]:
    t = (np.arange(FRAME) + start) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@dataclass
class Phone:
    leg: Leg
    freq: float | None
    seq: int = 0
    samples: int = 0
    digits: list[Digit] = field(default_factory=list)
    talking: list[bool] = field(default_factory=list)
    heard: list[NDArray[np.int16]] = field(default_factory=list)


class Harness:
    """A MediaCore plus phones that each send one frame per tick."""

    def __init__(self, capacity: int = 8) -> None:
        self.core = MediaCore(capacity, rng=np.random.default_rng(7))
        self.phones: list[Phone] = []
        self.now = 0.0
        self.rx = RxBatch.empty(64, 256)
        self.extra: list[tuple[int, bytes]] = []

    def add(self, freq: float | None, p: MediaParams | None = None) -> Phone:
        slot = self.core.reserve_slot()
        phone = Phone(Leg(len(self.phones) + 1, "127.0.0.1", 20000, p or params(), slot,
                          lambda d: None), freq)  # fmt: skip
        phone.leg.on_digit = phone.digits.append
        phone.leg.on_talking = phone.talking.append
        self.core.add(phone.leg, self.now)
        self.phones.append(phone)
        return phone

    def packet(self, phone: Phone, pcm: NDArray[np.int16]) -> bytes:
        alaw = phone.leg.params.codec.name == "PCMA"
        codes = alaw_encode(pcm) if alaw else ulaw_encode(pcm)
        pt = phone.leg.params.codec.payload_type
        hdr = struct.pack("!BBHII", 0x80, pt, phone.seq & 0xFFFF, phone.samples, 77 + phone.leg.id)
        return hdr + codes.tobytes()

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            rows: list[tuple[int, bytes]] = list(self.extra)
            self.extra.clear()
            for phone in self.phones:
                if phone.freq is not None and self.core.legs[phone.leg.slot] is phone.leg:
                    rows.append(
                        (phone.leg.slot, self.packet(phone, sine(phone.freq, phone.samples)))
                    )
                    phone.seq += 1
                    phone.samples += FRAME
            for i, (slot, data) in enumerate(rows):
                self.rx.buf[i, : len(data)] = np.frombuffer(data, np.uint8)
                self.rx.lengths[i] = len(data)
                self.rx.slots[i] = slot
            self.rx.count = len(rows)
            tx = self.core.tick(self.now, self.rx)
            by_slot = {int(s): tx.packets[i] for i, s in enumerate(tx.slots)}
            for phone in self.phones:
                pkt = by_slot.get(phone.leg.slot)
                if pkt is not None:
                    alaw = phone.leg.params.codec.name == "PCMA"
                    phone.heard.append((alaw_decode if alaw else ulaw_decode)(pkt[12:]))
            for callback in self.core.outbox:
                callback()
            self.core.outbox.clear()
            self.now += 0.02


def level(pcm: list[NDArray[np.int16]], freq: float, last: int = 25) -> float:
    x = np.concatenate(pcm[-last:]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) / len(x)
    bins = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spectrum[np.abs(bins - freq) < 20].max())


def room(h: Harness, *freqs: float | None) -> list[Phone]:
    phones = [h.add(f) for f in freqs]
    for p in phones:
        h.core.set_meeting(p.leg, "m")
    return phones


HEARD = 500.0  # spectral magnitude of an 8000-amplitude tone is ~1000; leakage stays < 20
QUIET = 20.0


def test_n_minus_one_each_hears_the_others_not_itself() -> None:
    h = Harness()
    a, b, c = room(h, 400, 700, 1100)
    h.tick(40)
    assert level(a.heard, 700) > HEARD and level(a.heard, 1100) > HEARD
    assert level(a.heard, 400) < QUIET
    assert level(b.heard, 700) < QUIET and level(c.heard, 1100) < QUIET


def test_leg_in_no_meeting_hears_silence_until_it_joins() -> None:
    h = Harness()
    a, b = h.add(400), h.add(700)
    h.tick(20)
    assert max(np.abs(f).max() for f in a.heard) == 0
    h.core.set_meeting(a.leg, "m")
    h.core.set_meeting(b.leg, "m")
    h.tick(30)
    assert level(a.heard, 700) > HEARD


@pytest.mark.parametrize(
    ("flag", "a_hears_b", "b_hears_a"),
    [("muted", True, False), ("listener", True, False), ("deaf", False, True)],
)
def test_flags_change_who_hears_whom(flag: str, a_hears_b: bool, b_hears_a: bool) -> None:
    h = Harness()
    a, b = room(h, 400, 700)
    h.core.set_flags(a.leg.slot, **{flag: True})
    h.tick(40)
    assert (level(a.heard, 700) > HEARD) is a_hears_b
    assert (level(b.heard, 400) > HEARD) is b_hears_a
    h.core.set_flags(a.leg.slot, **{flag: False})
    h.tick(40)
    assert level(a.heard, 700) > HEARD and level(b.heard, 400) > HEARD


def test_leave_takes_a_leg_out_of_the_mix() -> None:
    h = Harness()
    a, _b, c = room(h, 400, 700, 1100)
    h.tick(30)
    h.core.set_meeting(c.leg, None)
    h.tick(30)
    assert level(a.heard, 1100) < QUIET and level(a.heard, 700) > HEARD
    assert max(np.abs(f).max() for f in c.heard[-10:]) == 0


def test_hold_plays_shared_music_and_removes_the_held_voice() -> None:
    h = Harness()
    a, b = room(h, 400, 700)
    h.core.set_music_on_hold(tones.tone([300], 1000))
    h.core.set_flags(a.leg.slot, held=True)
    h.tick(40)
    assert level(a.heard, 300) > 100 and level(a.heard, 700) < QUIET
    assert level(b.heard, 400) < QUIET and level(b.heard, 300) < QUIET


def test_peer_hold_from_sdp_counts_as_held() -> None:
    h = Harness()
    a, b = room(h, 400, 700)
    a.leg.params = params(on_hold=True)
    h.core.update(a.leg)
    h.tick(40)
    assert level(b.heard, 400) < QUIET


def test_output_gain_scales_what_the_leg_hears() -> None:
    h = Harness()
    a, _b = room(h, 400, 700)
    h.tick(30)
    loud = level(a.heard, 700)
    h.core.set_flags(a.leg.slot, gain_out_db=-6.0)
    h.tick(30)
    assert level(a.heard, 700) == pytest.approx(loud / 2, rel=0.1)
    with pytest.raises(MediaConfigError, match="gain_in_db 25"):
        h.core.set_flags(a.leg.slot, gain_in_db=25)


def test_exclusive_prompt_replaces_the_meeting_and_mixed_prompt_adds_to_it() -> None:
    h = Harness()
    a, b = room(h, 400, 700)
    done: list[str] = []
    h.core.play(a.leg.slot, PromptPlayer([tones.tone([1300], 2000)]), exclusive=True,
                handle=Playback(on_done=lambda: done.append("a")))  # fmt: skip
    h.core.play(b.leg.slot, PromptPlayer([tones.tone([1300], 2000)]), exclusive=False,
                handle=Playback(on_done=lambda: done.append("b")))  # fmt: skip
    h.tick(40)
    assert level(a.heard, 1300) > 100 and level(a.heard, 700) < QUIET
    assert level(b.heard, 1300) > 100 and level(b.heard, 400) > HEARD
    h.tick(100)
    assert sorted(done) == ["a", "b"]
    assert level(a.heard, 700) > HEARD and level(a.heard, 1300) < QUIET


def test_cancelled_prompt_stops_without_done() -> None:
    h = Harness()
    (a,) = room(h, None)
    done: list[int] = []
    handle = Playback(on_done=lambda: done.append(1))
    h.core.play(a.leg.slot, PromptPlayer([tones.tone([1300], 2000)]), exclusive=True, handle=handle)
    h.tick(5)
    handle.cancel()
    h.tick(20)
    assert done == [] and max(np.abs(f).max() for f in a.heard[-10:]) == 0


def test_meeting_prompt_reaches_every_member() -> None:
    h = Harness()
    a, b = room(h, None, None)
    done: list[int] = []
    h.core.play_meeting(
        "m", PromptPlayer([tones.tone([900], 500)]), Playback(lambda: done.append(1))
    )
    h.tick(20)
    assert level(a.heard, 900, 15) > 100 and level(b.heard, 900, 15) > 100
    h.tick(20)
    assert done == [1]


def test_excluded_leg_hears_the_meeting_but_not_the_tone() -> None:
    h = Harness()
    entrant, talker, other = room(h, None, 400, None)
    h.tick(20)
    h.core.play_meeting("m", PromptPlayer([tones.tone([900], 1000)]), Playback(), [entrant.leg])
    h.core.play_meeting("m", PromptPlayer([tones.tone([1400], 1000)]), Playback())
    h.tick(30)
    assert level(entrant.heard, 900) < QUIET and level(entrant.heard, 400) > HEARD
    assert level(entrant.heard, 1400) > 100  # only the overlay it was left out of is missing
    for phone in (talker, other):
        assert level(phone.heard, 900) > 100 and level(phone.heard, 1400) > 100
    assert level(other.heard, 400) > HEARD


def _send_noise(h: Harness, phone: Phone, ticks: int, rng: np.random.Generator) -> list[bytes]:
    """Random audio from ``phone``, one packet a tick; returns the payloads as sent."""
    sent = []
    for _ in range(ticks):
        pcm = rng.integers(-8000, 8000, FRAME).astype(np.int16)
        data = h.packet(phone, pcm)
        h.extra.append((phone.leg.slot, data))
        sent.append(data[12:])
        phone.seq += 1
        phone.samples += FRAME
        h.tick()
    return sent


def test_recording_is_what_the_leg_sent_after_decode() -> None:
    h = Harness()
    a, b = room(h, None, None)
    rng = np.random.default_rng(3)
    clips: list[NDArray[np.int16]] = []
    sent = _send_noise(h, a, 20, rng)
    h.core.record(a.leg, 25, clips.append)
    h.core.record(b.leg, 25, lambda clip: None)
    sent += _send_noise(h, a, 40, rng)
    (clip,) = clips
    decoded = [ulaw_decode(np.frombuffer(p, np.uint8)) for p in sent]
    start = [i for i, frame in enumerate(decoded) if np.array_equal(frame, clip[:FRAME])]
    assert len(clip) == 25 * FRAME and len(start) == 1 and 10 <= start[0] <= 20  # jitter delay
    np.testing.assert_array_equal(clip, np.concatenate(decoded[start[0] : start[0] + 25]))


def test_recording_of_a_removed_leg_delivers_nothing() -> None:
    h = Harness()
    a = h.add(400)
    clips: list[NDArray[np.int16]] = []
    h.core.record(a.leg, 10, clips.append)
    h.tick(5)
    h.core.remove(a.leg.slot)
    h.tick(10)
    assert clips == []
    with pytest.raises(MediaConfigError, match="cannot record -1 frames"):
        h.core.record(a.leg, -1, clips.append)


def test_talking_events_pair_also_when_a_talker_leaves() -> None:
    h = Harness()
    a, b = room(h, 400, None)
    h.tick(20)
    assert a.talking == [True] and b.talking == []
    h.core.remove(a.leg.slot)
    for cb in h.core.outbox:
        cb()
    assert a.talking == [True, False]


def test_rfc4733_digits_reach_on_digit_once() -> None:
    h = Harness()
    a = h.add(None)
    sender = DtmfSender()
    for i, ev in enumerate(sender.packets("5", 120)):
        hdr = struct.pack("!BBHII", 0x80 | 0, (0x80 if ev.marker else 0) | 101, i, 4000, 99)
        h.extra.append((a.leg.slot, hdr + ev.payload))
        h.tick()
    h.tick(5)
    assert [d.key for d in a.digits] == ["5"] and a.digits[0].source == "rfc4733"


def _talk_and_dial(h: Harness, a: Phone, keys: str, *, skip_audio: int | None = None) -> None:
    """Audio from ``a`` with RFC 4733 digits in its sequence space (one SSRC, as phones do)."""
    h.tick(10)
    for key in keys:
        a.freq = None  # the phone sends events instead of audio while the key is down
        for ev in DtmfSender().packets(key, 100):
            hdr = struct.pack("!BBHII", 0x80, (0x80 if ev.marker else 0) | 101, a.seq & 0xFFFF,
                              a.samples, 77 + a.leg.id)  # fmt: skip
            h.extra.append((a.leg.slot, hdr + ev.payload))
            a.seq += 1
            h.tick()
        a.samples += 800
        a.freq = 400
        h.tick(5)
    if skip_audio is not None:
        a.seq += skip_audio  # packets the network lost
    h.tick(10)


def test_rfc4733_packets_in_the_audio_sequence_are_not_counted_lost() -> None:
    h = Harness()
    a = h.add(400)
    _talk_and_dial(h, a, "12")
    summary = h.core.summary(a.leg.slot)
    assert [d.key for d in a.digits] == ["1", "2"]
    assert summary.lost == 0 and summary.packets_in == a.seq


def test_real_loss_beside_rfc4733_digits_is_still_counted() -> None:
    h = Harness()
    a = h.add(400)
    _talk_and_dial(h, a, "12", skip_audio=3)
    assert [d.key for d in a.digits] == ["1", "2"] and h.core.summary(a.leg.slot).lost == 3


def test_inband_digits_for_legs_without_telephone_event() -> None:
    h = Harness()
    a = h.add(None, params(dtmf=None))
    clip = np.concatenate([tones.dtmf("7", 120), np.zeros(800, np.int16)])
    frames = clip[: len(clip) // FRAME * FRAME].reshape(-1, FRAME)
    for frame in frames:
        h.extra.append((a.leg.slot, h.packet(a, frame)))
        a.seq += 1
        a.samples += FRAME
        h.tick()
    h.tick(10)
    assert [(d.key, d.source) for d in a.digits] == [("7", "inband")]


def _key_in(phones: list[Phone], clips: list[NDArray[np.int16]], h: Harness) -> None:
    """Send each phone its clip as audio, one frame per tick, all phones in the same ticks."""
    for start in range(0, min(len(c) for c in clips) - FRAME + 1, FRAME):
        for phone, clip in zip(phones, clips, strict=True):
            h.extra.append((phone.leg.slot, h.packet(phone, clip[start : start + FRAME])))
            phone.seq += 1
            phone.samples += FRAME
        h.tick()
    h.tick(10)


def test_inband_digits_of_many_legs_in_the_same_ticks() -> None:
    h = Harness()
    keys = "159#*"
    inband = [h.add(None, params(dtmf=None)) for _ in keys]
    rfc = h.add(None)  # telephone-event offered: its tones are audio, not digits
    phones = [*inband, rfc]
    # Each leg keys after its own lead-in, so their 102-sample blocks are not aligned.
    clips = [
        np.concatenate([np.zeros(37 * i, np.int16), tones.dtmf(k, 120), np.zeros(4000, np.int16)])
        for i, k in enumerate([*keys, "7"])
    ]
    _key_in(phones, clips, h)
    assert [[d.key for d in p.digits] for p in phones] == [[k] for k in keys] + [[]]
    assert all(d.source == "inband" for p in inband for d in p.digits)
    # One in-band leg leaves, one switches to telephone-event: neither detects any more.
    h.core.remove(inband[0].leg.slot)
    inband[1].leg.params = params()
    h.core.update(inband[1].leg)
    rest = inband[1:]
    _key_in(rest, [np.concatenate([tones.dtmf("0", 120), np.zeros(4000, np.int16)])] * 4, h)
    assert [[d.key for d in p.digits] for p in inband] == [
        ["1"],
        ["5"],
        ["9", "0"],
        ["#", "0"],
        ["*", "0"],
    ]


def test_alaw_and_ulaw_legs_share_a_meeting() -> None:
    h = Harness()
    a = h.add(400, params(PCMA))
    b = h.add(700, params(PCMU))
    for p in (a, b):
        h.core.set_meeting(p.leg, "m")
    h.tick(40)
    assert level(a.heard, 700) > HEARD and level(b.heard, 400) > HEARD


def test_listeners_of_one_meeting_get_identical_payloads() -> None:
    h = Harness()
    _talker, l1, l2 = room(h, 400, None, None)
    h.tick(30)
    np.testing.assert_array_equal(l1.heard[-1], l2.heard[-1])
    assert level(l1.heard, 400) > HEARD


def test_malformed_and_unknown_packets_are_counted_not_mixed() -> None:
    h = Harness()
    a, _b = room(h, None, None)
    h.extra += [(a.leg.slot, b"\x00" * 20), (a.leg.slot, b"\x80")]
    h.tick(2)
    summary = h.core.remove(a.leg.slot)
    assert summary.malformed == 2 and summary.packets_in == 0


def test_recvonly_and_unreachable_legs_are_not_sent_to() -> None:
    h = Harness()
    a = h.add(None, params(direction=Direction.RECVONLY))
    b = h.add(None, params(remote_addr="0.0.0.0"))
    c = h.add(None)
    h.tick(3)
    assert a.heard == [] and b.heard == [] and len(c.heard) == 3


def test_sequence_and_timestamp_advance_per_packet_and_marker_first() -> None:
    h = Harness()
    h.add(None)
    seqs, stamps, markers = [], [], []
    for _ in range(3):
        tx = h.core.tick(h.now, h.rx)
        seq, ts = struct.unpack("!HI", tx.packets[0, 2:8].tobytes())
        seqs.append(seq)
        stamps.append(ts)
        markers.append(bool(tx.packets[0, 1] & 0x80))
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 2]
    assert [(t - stamps[0]) & 0xFFFFFFFF for t in stamps] == [0, 160, 320]
    assert markers == [True, False, False]


def test_rtcp_sender_report_every_few_seconds_and_peer_reports_read() -> None:
    h = Harness()
    a, _b = room(h, 400, 700)
    reports = 0
    for _ in range(500):  # 10 s
        tx = h.core.tick(h.now, h.rx)
        reports += sum(1 for slot, _ in tx.rtcp if slot == a.leg.slot)
        h.now += 0.02
    assert 1 <= reports <= 4
    ssrc = int(h.core.tx_ssrc[a.leg.slot])
    rr = struct.pack("!BBHI", 0x81, 201, 7, 5) + struct.pack(
        "!IIIIII", ssrc, (64 << 24) | 3, 9, 2, 0, 0
    )
    h.core.rtcp_received(a.leg.slot, rr, h.now)
    h.core.rtcp_received(a.leg.slot, b"\x81\xc9", h.now)
    s = h.core.summary(a.leg.slot)
    assert s.rtcp_in == 1 and s.remote_fraction_lost == 0.25 and s.malformed == 1


def test_engine_full_is_an_error() -> None:
    core = MediaCore(1, rng=np.random.default_rng(0))
    core.reserve_slot()
    with pytest.raises(MediaConfigError, match="all 1 leg slots"):
        core.reserve_slot()


def test_non_g711_codec_is_refused() -> None:
    h = Harness()
    with pytest.raises(MediaConfigError, match=r"not G\.711"):
        h.add(None, params(Codec("G722", 9, 8000)))
