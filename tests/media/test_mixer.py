"""The N-1 mixer: properties against a slow reference, sharing, overlays, clipping, errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from media import tones
from media.errors import MediaConfigError
from media.mixer import (
    FRAME,
    GAIN_ONE,
    GAIN_SHIFT,
    MAX_GAIN_DB,
    MIN_GAIN_DB,
    WIDE_LIMIT,
    LegOverlays,
    MeetingOverlays,
    MixPlan,
    MixWorkspace,
    gain_db_to_q,
    mix,
)
from media.talk import TalkDetector


@dataclass
class Scene:
    """A random topology and tick input."""

    meeting: list[int]
    meetings: int
    in_db: list[float]
    out_db: list[float]
    muted: list[bool]
    deaf: list[bool]
    held: list[bool]
    listener: list[bool]
    talking: list[bool]
    frames: NDArray[np.int16]
    moh: NDArray[np.int16]
    overlay: dict[int, tuple[NDArray[np.int16], bool]]
    meeting_overlay: dict[int, NDArray[np.int16]]
    excluded: dict[int, NDArray[np.int16]]  # leg -> what it hears instead of its room's overlay

    def plan(self) -> MixPlan:
        return MixPlan.build(
            self.meeting,
            meetings=self.meetings,
            input_gain_db=self.in_db,
            output_gain_db=self.out_db,
            muted=self.muted,
            deaf=self.deaf,
            held=self.held,
            listener=self.listener,
        )

    def run(self, work: MixWorkspace | None = None) -> NDArray[np.int16]:
        legs = sorted(self.overlay)
        leg_ov = LegOverlays.of(
            legs,
            np.array([self.overlay[i][0] for i in legs], dtype=np.int16).reshape(-1, FRAME),
            [self.overlay[i][1] for i in legs],
            len(self.meeting),
        )
        rooms = sorted(self.meeting_overlay)
        meet_ov = MeetingOverlays.of(
            rooms,
            np.array([self.meeting_overlay[m] for m in rooms], dtype=np.int16).reshape(-1, FRAME),
            self.meetings,
            excluded=sorted(self.excluded),
            excluded_frames=np.array(
                [self.excluded[i] for i in sorted(self.excluded)], dtype=np.int16
            ).reshape(-1, FRAME),
            leg_count=len(self.meeting),
        )
        result = mix(
            self.plan(),
            self.frames,
            np.array(self.talking, dtype=np.bool_),
            moh=self.moh,
            leg_overlays=leg_ov,
            meeting_overlays=meet_ov,
            work=work,
        )
        return result.heard()


def _q(db: float) -> int:
    return int(gain_db_to_q(db))


def _clip(value: int, low: int = -32768, high: int = 32767) -> int:
    return max(low, min(high, value))


def _reference_base(s: Scene, j: int, k: int, totals: list[list[int]], own: list[list[int]]) -> int:
    """Sample ``k`` of what leg ``j`` hears before its own overlay and output gain."""
    if s.meeting[j] < 0 or s.deaf[j]:
        return 0
    if s.held[j]:
        return int(s.moh[k])
    base = totals[s.meeting[j]][k] - own[j][k]
    if j in s.excluded:  # its own frame in place of the room's overlay
        room_overlay = s.meeting_overlay.get(s.meeting[j])
        base += int(s.excluded[j][k])
        base -= 0 if room_overlay is None else int(room_overlay[k])
    return base


def reference(s: Scene) -> list[list[int]]:
    """Plain Python double loop over legs and samples: what each leg should hear."""
    n = len(s.meeting)
    contributing = [
        s.meeting[i] >= 0 and s.talking[i] and not (s.muted[i] or s.held[i] or s.listener[i])
        for i in range(n)
    ]
    own = [[0] * FRAME for _ in range(n)]
    totals = [[0] * FRAME for _ in range(s.meetings)]
    for m, frame in s.meeting_overlay.items():
        for k in range(FRAME):
            totals[m][k] += int(frame[k])
    for i in range(n):
        if contributing[i]:
            for k in range(FRAME):
                x = int(s.frames[i, k]) * _q(s.in_db[i]) + (1 << (GAIN_SHIFT - 1))
                own[i][k] = _clip(x >> GAIN_SHIFT)
                totals[s.meeting[i]][k] += own[i][k]
    heard = []
    for j in range(n):
        row = []
        for k in range(FRAME):
            base = _reference_base(s, j, k, totals, own)
            if j in s.overlay:
                frame, exclusive = s.overlay[j]
                base = int(frame[k]) if exclusive else base + int(frame[k])
            gain = _q(s.out_db[j])
            if gain != GAIN_ONE:
                base = _clip(base, -WIDE_LIMIT, WIDE_LIMIT) * gain + (1 << (GAIN_SHIFT - 1))
                base >>= GAIN_SHIFT
            row.append(_clip(base))
        heard.append(row)
    return heard


GAINS = st.one_of(st.just(0.0), st.sampled_from([-20.0, 20.0, 6.0, -6.0]), st.floats(-20.0, 20.0))


@st.composite
def scenes(draw: st.DrawFn, max_legs: int = 7, overlays: bool = True) -> Scene:
    n = draw(st.integers(1, max_legs))
    meetings = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loud = draw(st.booleans())
    scale = 32768 if loud else 3000
    frames = rng.integers(-scale, scale, size=(n, FRAME), endpoint=False).astype(np.int16)
    if draw(st.booleans()):
        frames[rng.random(n) < 0.5] = 32767  # full-scale rows provoke clipping
    bools = st.lists(st.booleans(), min_size=n, max_size=n)
    chance = st.lists(st.sampled_from([False, False, False, True]), min_size=n, max_size=n)
    overlay: dict[int, tuple[NDArray[np.int16], bool]] = {}
    meeting_overlay: dict[int, NDArray[np.int16]] = {}
    excluded: dict[int, NDArray[np.int16]] = {}
    if overlays:
        for leg in draw(st.sets(st.integers(0, n - 1), max_size=2)):
            overlay[leg] = (
                rng.integers(-20000, 20000, FRAME).astype(np.int16),
                draw(st.booleans()),
            )
        for room in draw(st.sets(st.integers(0, meetings - 1), max_size=1)):
            meeting_overlay[room] = rng.integers(-20000, 20000, FRAME).astype(np.int16)
        for leg in draw(st.sets(st.integers(0, n - 1), max_size=2)):
            silent = draw(st.booleans())  # usually left out of every overlay: silence instead
            excluded[leg] = rng.integers(-20000, 20000, FRAME).astype(np.int16) * (not silent)
    return Scene(
        meeting=draw(st.lists(st.integers(-1, meetings - 1), min_size=n, max_size=n)),
        meetings=meetings,
        in_db=draw(st.lists(GAINS, min_size=n, max_size=n)),
        out_db=draw(st.lists(GAINS, min_size=n, max_size=n)),
        muted=draw(chance),
        deaf=draw(chance),
        held=draw(chance),
        listener=draw(chance),
        talking=draw(bools),
        frames=frames,
        moh=rng.integers(-5000, 5000, FRAME).astype(np.int16),
        overlay=overlay,
        meeting_overlay=meeting_overlay,
        excluded=excluded,
    )


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_n_minus_one_equals_slow_reference(scene: Scene) -> None:
    assert scene.run().tolist() == reference(scene)


@settings(max_examples=60, deadline=None)
@given(st.lists(scenes(), min_size=2, max_size=4))
def test_reused_workspace_gives_the_same_answer(batch: list[Scene]) -> None:
    work = MixWorkspace()
    for scene in batch:
        assert np.array_equal(scene.run(work), scene.run(None))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 20), st.integers(0, 2**32 - 1))
def test_lone_talker_hears_nothing_of_themselves(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, FRAME), dtype=np.int16)
    speaker = int(rng.integers(n))
    frames[speaker] = rng.integers(-32768, 32767, FRAME, dtype=np.int16)
    talking = np.zeros(n, dtype=np.bool_)
    talking[speaker] = True
    heard = mix(MixPlan.build(np.zeros(n, dtype=np.intp)), frames, talking).heard()
    assert not heard[speaker].any()
    others = np.delete(heard, speaker, axis=0)
    assert (others == frames[speaker]).all()


@settings(max_examples=80, deadline=None)
@given(scenes(overlays=False), st.integers(0, 2**32 - 1))
def test_muted_and_listener_legs_contribute_nothing(scene: Scene, seed: int) -> None:
    silent = np.array(scene.muted) | np.array(scene.listener) | np.array(scene.held)
    quiet = scene.frames.copy()
    quiet[silent] = 0
    loud = scene.frames.copy()
    loud[silent] = np.random.default_rng(seed).integers(-32768, 32767, (int(silent.sum()), FRAME))
    heard_quiet = Scene(**{**scene.__dict__, "frames": quiet}).run()
    heard_loud = Scene(**{**scene.__dict__, "frames": loud}).run()
    assert np.array_equal(heard_quiet, heard_loud)


@settings(max_examples=80, deadline=None)
@given(scenes(overlays=False))
def test_silence_in_silence_out(scene: Scene) -> None:
    scene.frames[:] = 0
    scene.moh[:] = 0
    assert not scene.run().any()


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 300), st.sampled_from([32767, -32768]), st.sampled_from([0.0, 20.0]))
def test_full_scale_talkers_clip_and_never_wrap(n: int, value: int, gain: float) -> None:
    frames = np.full((n, FRAME), value, dtype=np.int16)
    plan = MixPlan.build(
        np.zeros(n + 1, dtype=np.intp),
        input_gain_db=[gain] * (n + 1),
        output_gain_db=[gain] * n + [0.0],
    )
    everyone = np.vstack([frames, np.zeros((1, FRAME), dtype=np.int16)])
    talking = np.array([True] * n + [False])
    heard = mix(plan, everyone, talking).heard()
    # Every talker hears n-1 full-scale peers (n >= 2), the listener hears all n.
    expected = 32767 if value > 0 else -32768
    assert (heard == expected).all()


@settings(max_examples=80, deadline=None)
@given(scenes(overlays=False), st.integers(0, 2))
def test_meetings_never_hear_each_other(scene: Scene, noisy_room: int) -> None:
    meeting = np.array(scene.meeting)
    scene.frames[meeting != noisy_room] = 0
    scene.moh[:] = 0
    heard = scene.run()
    assert not heard[meeting != noisy_room].any()


def _three_rooms() -> tuple[MixPlan, NDArray[np.int16]]:
    # Room 0: legs 0,1 talk, 2 listens, 3 is held, 4 is deaf, 5 has -6 dB output gain.
    # Room 1: leg 6 alone. Leg 7 is in no meeting (IVR).
    plan = MixPlan.build(
        [0, 0, 0, 0, 0, 0, 1, -1],
        output_gain_db=[0, 0, 0, 0, 0, -6.0, 0, 0],
        held=[False, False, False, True, False, False, False, False],
        deaf=[False, False, False, False, True, False, False, False],
        listener=[False, False, True, False, False, False, False, False],
    )
    frames = np.zeros((8, FRAME), dtype=np.int16)
    frames[0], frames[1], frames[2] = 1000, 200, 7777
    return plan, frames


def test_listeners_share_one_frame_and_talkers_get_n_minus_one() -> None:
    plan, frames = _three_rooms()
    talking = np.array([True, True, True, False, False, False, False, False])
    moh = np.full(FRAME, 50, dtype=np.int16)
    result = mix(plan, frames, talking, moh=moh)
    assert sorted(result.talkers.tolist()) == [0, 1]  # the listener talks but is not in the sum
    assert sorted(result.private_legs.tolist()) == [0, 1, 5]
    assert result.private_row[2] == -1 and result.shared_row[2] == 0
    assert (result.shared[0] == 1200).all()
    assert result.shared_row[3] == plan.moh_row and (result.shared[plan.moh_row] == 50).all()
    assert result.shared_row[4] == plan.silence_row and result.shared_row[7] == plan.silence_row
    assert result.shared_used.tolist() == [True, True, True, True]
    heard = result.heard()
    assert (heard[0] == 200).all() and (heard[1] == 1000).all()
    assert (heard[5] == round(1200 * int(gain_db_to_q(-6.0)) / GAIN_ONE)).all()
    assert not heard[4].any() and not heard[6].any() and not heard[7].any()
    # When room 1's only leg talks it gets a private N-1 frame, so room 1's mix is unused.
    talking[6] = True
    assert mix(plan, frames, talking).shared_used.tolist() == [True, False, True, True]


def test_exclusive_overlay_replaces_and_mixed_overlay_adds() -> None:
    plan, frames = _three_rooms()
    talking = np.array([True, True, False, False, False, False, False, False])
    prompt = np.full((3, FRAME), 300, dtype=np.int16)
    overlays = LegOverlays.of([2, 7, 4], prompt, [False, True, False], plan.legs)
    heard = mix(plan, frames, talking, leg_overlays=overlays).heard()
    assert (heard[2] == 1500).all()  # the mix plus the prompt
    assert (heard[7] == 300).all()  # IVR prompt alone
    assert (heard[4] == 300).all()  # deaf to the meeting, not to its own prompts
    assert (heard[0] == 200).all()  # nobody else is affected


def test_meeting_overlay_reaches_talkers_and_listeners_but_not_held_legs() -> None:
    plan, frames = _three_rooms()
    talking = np.array([True, True, False, False, False, False, False, False])
    tone = MeetingOverlays.of([0], np.full((1, FRAME), 10, dtype=np.int16), plan.meetings)
    heard = mix(plan, frames, talking, meeting_overlays=tone).heard()
    assert (heard[0] == 210).all() and (heard[1] == 1010).all() and (heard[2] == 1210).all()
    assert not heard[3].any() and not heard[6].any()


def test_excluded_legs_do_not_hear_the_meeting_overlay_but_hear_the_meeting() -> None:
    plan, frames = _three_rooms()
    talking = np.array([True, True, False, False, False, False, False, False])
    tone = MeetingOverlays.of(
        [0],
        np.full((1, FRAME), 10, dtype=np.int16),
        plan.meetings,
        excluded=[0, 2],
        excluded_frames=np.zeros((2, FRAME), np.int16),
        leg_count=plan.legs,
    )
    heard = mix(plan, frames, talking, meeting_overlays=tone).heard()
    assert (heard[0] == 200).all() and (heard[2] == 1200).all()  # the meeting, no tone
    assert (heard[1] == 1010).all()  # the others still hear the tone


def test_gain_limits_are_what_the_mixer_takes() -> None:
    """The one home of the gain range (the service and the REST API refuse beyond it)."""
    assert (MIN_GAIN_DB, MAX_GAIN_DB) == (-20.0, 20.0)
    gain_db_to_q([MIN_GAIN_DB, MAX_GAIN_DB])
    gains = [MIN_GAIN_DB, MAX_GAIN_DB]
    MixPlan.build([0, 0], input_gain_db=gains, output_gain_db=gains[::-1])
    for beyond in (np.nextafter(MAX_GAIN_DB, np.inf), np.nextafter(MIN_GAIN_DB, -np.inf)):
        with pytest.raises(MediaConfigError, match="outside"):
            gain_db_to_q(beyond)


def test_gain_conversion_is_accurate() -> None:
    q = gain_db_to_q([0.0, 6.0, -6.0, 20.0, -20.0]).astype(np.float64) / GAIN_ONE
    assert q[0] == 1.0
    assert 20 * np.log10(q[1:]) == pytest.approx([6.0, -6.0, 20.0, -20.0], abs=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_gain_db": [0.0, 20.5]}, "input gain 20.5 dB outside \\[-20.0, 20.0\\] dB"),
        ({"output_gain_db": [float("nan"), 0.0]}, "output gain nan dB outside"),
        ({"muted": [True]}, "muted has shape \\(1,\\), expected \\(2,\\)"),
        ({"meetings": 1}, "meeting index outside \\[-1, 1\\)"),
    ],
)
def test_bad_topology_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(MediaConfigError, match=message):
        MixPlan.build([0, 1], **kwargs)  # type: ignore[arg-type]


def test_bad_tick_input_is_refused() -> None:
    plan = MixPlan.build([0, 0])
    frames = np.zeros((2, FRAME), dtype=np.int16)
    with pytest.raises(MediaConfigError, match="frames must be int16 of shape \\(2, 160\\)"):
        mix(plan, frames.astype(np.int32), np.zeros(2, dtype=np.bool_))
    with pytest.raises(MediaConfigError, match="talking must be bool of shape \\(2,\\)"):
        mix(plan, frames, np.zeros(3, dtype=np.bool_))
    with pytest.raises(MediaConfigError, match="overlay legs repeats an entry"):
        LegOverlays.of([1, 1], np.zeros((2, FRAME), np.int16), [False, False], 2)
    with pytest.raises(MediaConfigError, match="overlay meetings outside \\[0, 1\\)"):
        MeetingOverlays.of([1], np.zeros((1, FRAME), np.int16), 1)
    with pytest.raises(MediaConfigError, match="overlay excluded legs outside \\[0, 2\\)"):
        MeetingOverlays.of([0], np.zeros((1, FRAME), np.int16), 1, excluded=[2], leg_count=2)
    with pytest.raises(MediaConfigError, match="excluded overlay frames must be int16"):
        MeetingOverlays.of([0], np.zeros((1, FRAME), np.int16), 1, excluded=[1], leg_count=2)


def test_empty_plan_mixes_nothing() -> None:
    result = mix(
        MixPlan.build(np.zeros(0, dtype=np.intp)),
        np.zeros((0, FRAME), np.int16),
        np.zeros(0, np.bool_),
    )
    assert result.heard().shape == (0, FRAME)


def test_three_tones_each_leg_hears_the_other_two() -> None:
    """Tones in, talker detection, mix: every leg's spectrum holds the others' tones only."""
    freqs = (400.0, 700.0, 1100.0)
    signals = np.stack([tones.tone((f,), 400, level_dbfs=-20.0) for f in freqs])
    frames = signals.reshape(3, -1, FRAME)  # (legs, ticks, 160)
    plan = MixPlan.build([0, 0, 0])
    detector = TalkDetector(3, attack_frames=1)
    work = MixWorkspace()
    heard = []
    for tick in range(frames.shape[1]):
        detector.update(frames[:, tick])
        heard.append(mix(plan, frames[:, tick], detector.talking, work=work).heard())
    out = np.concatenate(heard, axis=1)[:, 800:]  # skip the attack and the ramp-in
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64) * np.hanning(out.shape[1]), axis=1))
    bins = np.fft.rfftfreq(out.shape[1], 1 / 8000.0)
    for leg, own in enumerate(freqs):
        power = {f: spectrum[leg, np.argmin(np.abs(bins - f))] for f in freqs}
        others = [power[f] for f in freqs if f != own]
        assert min(others) > 1000 * max(power[own], 1.0)
