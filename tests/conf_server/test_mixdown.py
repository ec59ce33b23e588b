"""``conf-server mixdown``: real timeline and WAV files in, what each leg hears and events out."""

from __future__ import annotations

import argparse
import json
import re
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from conf_server import mixdown as mixdown_module
from conf_server.mixdown import (
    EXIT_USAGE,
    TimelineError,
    add_parser,
    load_timeline,
    mixdown,
    run,
)
from media import tones

RATE = 8000
FRAME = 160
TONES = {"a": 400.0, "b": 700.0, "c": 1100.0}
HEARD = 1000.0  # amplitude; inputs are −12 dBFS sines (~8200)
QUIET = 60.0  # G.711 quantisation noise stays far below this in one bin


def write_wav(path: Path, samples: NDArray[np.int16], rate: int = RATE, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())


def read_wav(path: Path) -> NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.int16)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def timeline_text(
    top: dict[str, Any], legs: dict[str, dict[str, Any]], events: list[dict[str, Any]]
) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    for name, spec in legs.items():
        lines.append(f'[legs."{name}"]')
        lines += [f"{k} = {_toml_value(v)}" for k, v in spec.items()]
    for event in events:
        lines.append("[[events]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in event.items()]
    return "\n".join(lines) + "\n"


class Scene:
    """A directory with tone inputs and a timeline to mix down."""

    def __init__(self, root: Path, seconds: float = 1.0) -> None:
        self.root = root
        self.top: dict[str, Any] = {}
        self.legs: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.seconds = seconds

    def leg(self, name: str, freq: float | None, **spec: Any) -> None:
        if freq is not None:
            write_wav(self.root / f"{name}.wav", tones.tone([freq], int(self.seconds * 1000)))
            spec = {"input": f"{name}.wav"} | spec
        self.legs[name] = spec

    def at(self, t: float, action: str, **fields: Any) -> None:
        self.events.append({"at": t, "action": action} | fields)

    def room(self, legs: dict[str, float | None], meeting: str = "m") -> None:
        for name, freq in legs.items():
            self.leg(name, freq)
            self.at(0.0, "join", leg=name, meeting=meeting)

    def write(self, name: str = "timeline.toml") -> Path:
        events = [*self.events, {"at": self.seconds, "action": "end"}]
        path = self.root / name
        path.write_text(timeline_text(self.top, self.legs, events), encoding="utf-8")
        return path

    def run(self, out: str = "out") -> tuple[dict[str, NDArray[np.int16]], dict[str, Any]]:
        mixdown(self.write(), self.root / out)
        heard = {name: read_wav(self.root / out / f"{name}.wav") for name in self.legs}
        doc = json.loads((self.root / out / "events.json").read_text(encoding="utf-8"))
        return heard, doc


def amplitude(x: NDArray[np.int16], freq: float) -> float:
    """Peak amplitude of the ``freq`` component (Hann window, nearest bin ±1)."""
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * window)) * 2 / window.sum()
    bins = np.fft.rfftfreq(len(x), 1 / RATE)
    near = np.abs(bins - freq) <= RATE / len(x)
    return float(spectrum[near].max())


def frames(x: NDArray[np.int16], start: int, stop: int) -> NDArray[np.int16]:
    return x[start * FRAME : stop * FRAME]


# -- the mix ---------------------------------------------------------------------------------


def test_three_tones_each_leg_hears_the_other_two_and_not_its_own(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.room(dict(TONES))
    scene.legs["b"]["codec"] = "PCMA"  # one A-law leg: the codec groups must not leak
    heard, _ = scene.run()
    for name, own in TONES.items():
        tail = heard[name][10 * FRAME :]
        assert len(heard[name]) == 50 * FRAME  # 1 s of 20 ms ticks
        assert amplitude(tail, own) < QUIET, name
        for other, freq in TONES.items():
            if other != name:
                assert amplitude(tail, freq) > HEARD, (name, other)


def test_muted_leg_and_listener_are_heard_by_nobody(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.leg("talker", 400.0)
    scene.leg("muted", 700.0)
    scene.leg("listener", 1100.0)
    scene.at(0.0, "join", leg="talker", meeting="m")
    scene.at(0.0, "join", leg="muted", meeting="m")
    scene.at(0.0, "mute", leg="muted")
    scene.at(0.0, "join", leg="listener", meeting="m", listener=True)
    heard, _ = scene.run()
    for name, x in heard.items():
        tail = x[10 * FRAME :]
        assert amplitude(tail, 700.0) < QUIET, name
        assert amplitude(tail, 1100.0) < QUIET, name
    assert amplitude(heard["muted"][10 * FRAME :], 400.0) > HEARD
    assert amplitude(heard["listener"][10 * FRAME :], 400.0) > HEARD


def test_unmute_brings_a_leg_back_from_its_tick(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.room({"a": 400.0, "b": 700.0})
    scene.at(0.0, "mute", leg="b")
    scene.at(0.5, "unmute", leg="b")
    heard, _ = scene.run()
    assert amplitude(frames(heard["a"], 15, 25), 700.0) < QUIET
    assert amplitude(frames(heard["a"], 30, 50), 700.0) > HEARD


def test_a_leg_that_leaves_stops_being_heard_at_its_tick(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.room(dict(TONES))
    scene.at(0.5, "leave", leg="c")  # tick 25
    heard, _ = scene.run()
    a, c = heard["a"], heard["c"]
    for k in range(20, 25):
        assert amplitude(frames(a, k, k + 1), 1100.0) > HEARD, k
    for k in range(25, 50):
        assert amplitude(frames(a, k, k + 1), 1100.0) < QUIET, k
        assert amplitude(frames(a, k, k + 1), 700.0) > HEARD, k
    assert np.abs(frames(c, 25, 50)).max() == 0  # out of every meeting: silence
    assert np.abs(frames(c, 20, 25)).max() > HEARD


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tick=st.integers(min_value=3, max_value=20))
def test_an_event_acts_from_the_first_tick_at_or_after_its_time(tmp_path: Path, tick: int) -> None:
    scene = Scene(tmp_path / f"t{tick}", seconds=0.6)
    scene.root.mkdir(exist_ok=True)
    scene.leg("a", None)
    scene.leg("b", 700.0)
    scene.at(0.0, "join", leg="b", meeting="m")
    scene.at(round(tick * 0.02 - 0.013, 3), "join", leg="a", meeting="m")  # inside tick-1
    heard, _ = scene.run()
    assert np.abs(frames(heard["a"], 0, tick)).max() == 0
    for k in range(tick, 30):
        assert amplitude(frames(heard["a"], k, k + 1), 700.0) > HEARD, k


def test_hold_plays_music_and_takes_the_voice_out(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    write_wav(tmp_path / "moh.wav", tones.tone([300.0], 500))
    scene.top["music_on_hold"] = "moh.wav"
    scene.room({"a": 400.0, "b": 700.0})
    scene.at(0.0, "hold", leg="a")
    scene.at(0.6, "unhold", leg="a")
    heard, _ = scene.run()
    held = frames(heard["a"], 5, 30)
    assert amplitude(held, 300.0) > HEARD and amplitude(held, 700.0) < QUIET
    assert amplitude(frames(heard["b"], 5, 30), 400.0) < QUIET
    assert amplitude(frames(heard["b"], 35, 50), 400.0) > HEARD


def test_deaf_leg_hears_nothing_but_is_heard(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.room({"a": 400.0, "b": 700.0})
    scene.at(0.0, "deaf", leg="a")
    heard, _ = scene.run()
    assert np.abs(frames(heard["a"], 2, 50)).max() == 0
    assert amplitude(frames(heard["b"], 5, 50), 400.0) > HEARD


def test_gain_out_halves_what_the_leg_hears(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.room({"a": 400.0, "b": 700.0})
    scene.at(0.5, "gain", leg="a", out_db=-6.0)
    heard, _ = scene.run()
    before = amplitude(frames(heard["a"], 10, 25), 700.0)
    after = amplitude(frames(heard["a"], 30, 50), 700.0)
    assert after == pytest.approx(before / 2, rel=0.05)


def test_exclusive_prompt_replaces_the_meeting_and_reports_done(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    write_wav(tmp_path / "hello.wav", tones.tone([1500.0], 300))
    scene.room({"a": 400.0, "b": 700.0})
    scene.at(0.2, "prompt", leg="a", file="hello.wav", exclusive=True)
    scene.at(0.2, "tone", meeting="m", freqs=[1300.0], duration_ms=200)
    heard, doc = scene.run()
    during = frames(heard["a"], 11, 19)
    assert amplitude(during, 1500.0) > HEARD and amplitude(during, 700.0) < QUIET
    assert amplitude(frames(heard["b"], 11, 19), 1300.0) > HEARD
    assert amplitude(frames(heard["b"], 11, 19), 1500.0) < QUIET  # a private prompt
    assert amplitude(frames(heard["a"], 30, 50), 700.0) > HEARD
    done = [e for e in doc["events"] if e["type"] == "prompt_done"]
    assert [(e["tick"], e.get("leg"), e.get("meeting"), e["name"]) for e in done] == [
        (20, None, "m", "tone 1300"),
        (25, "a", None, "hello.wav"),
    ]


# -- events.json -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtmf", ["rfc4733", "inband"])
def test_a_digit_in_the_timeline_appears_once(tmp_path: Path, dtmf: str) -> None:
    scene = Scene(tmp_path)
    scene.leg("a", None, dtmf=dtmf)
    scene.leg("b", 700.0)
    scene.at(0.0, "join", leg="a", meeting="m")
    scene.at(0.0, "join", leg="b", meeting="m")
    scene.at(0.3, "digits", leg="a", digits="5")
    _, doc = scene.run()
    digits = [e for e in doc["events"] if e["type"] == "digit"]
    assert [(e["leg"], e["key"], e["source"]) for e in digits] == [("a", "5", dtmf)]
    assert 15 <= digits[0]["tick"] <= 25  # after the key went down, within its 100 ms + ends
    assert doc["legs"]["a"]["digits"] == 1 and doc["legs"]["b"]["digits"] == 0


def test_digit_sequence_keeps_its_order(tmp_path: Path) -> None:
    scene = Scene(tmp_path, seconds=1.5)
    scene.room({"a": None})
    scene.at(0.1, "digits", leg="a", digits="*12#")
    _, doc = scene.run()
    assert [e["key"] for e in doc["events"] if e["type"] == "digit"] == ["*", "1", "2", "#"]


def test_talking_events_pair_and_stats_count_every_packet(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.leg("a", None)
    scene.leg("b", 700.0)
    write_wav(tmp_path / "short.wav", tones.tone([900.0], 300))
    scene.legs["c"] = {"input": "short.wav"}  # 0.3 s, then padded with silence
    for name in ("a", "b", "c"):
        scene.at(0.0, "join", leg=name, meeting="m")
    _, doc = scene.run()
    talk = [(e["leg"], e["type"]) for e in doc["events"] if e["type"].startswith("talking")]
    for name in ("b", "c"):
        assert [t for leg, t in talk if leg == name] == ["talking_started", "talking_stopped"]
    assert [t for leg, t in talk if leg == "a"] == []
    stop_c = next(e for e in doc["events"] if e["type"] == "talking_stopped" and e["leg"] == "c")
    stop_b = next(e for e in doc["events"] if e["type"] == "talking_stopped" and e["leg"] == "b")
    assert 15 <= stop_c["tick"] < 50 and stop_b["tick"] == 50  # b still talks at the end
    for name in ("a", "b", "c"):
        assert doc["legs"][name]["packets_in"] == doc["legs"][name]["packets_out"] == 50
        assert doc["legs"][name]["lost"] == 0
    assert doc["ticks"] == 50 and doc["tick_ms"] == 20


def test_same_inputs_give_byte_identical_outputs(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    write_wav(tmp_path / "moh.wav", tones.tone([300.0], 200))
    scene.top["music_on_hold"] = "moh.wav"
    scene.room(dict(TONES))
    scene.legs["b"] |= {"codec": "PCMA", "dtmf": "inband"}
    scene.at(0.1, "digits", leg="a", digits="9")
    scene.at(0.1, "digits", leg="b", digits="4")
    scene.at(0.2, "hold", leg="c")
    scene.at(0.3, "gain", leg="a", in_db=3.5, out_db=-2)
    scene.at(0.4, "tone", meeting="m", freqs=[1500.0, 1700.0], duration_ms=100)
    scene.at(0.7, "leave", leg="b")
    scene.run("one")
    scene.run("two")
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == ["a.wav", "b.wav", "c.wav", "events.json"]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_the_docstring_example_runs(tmp_path: Path) -> None:
    doc = mixdown_module.__doc__ or ""
    example = doc.split("Example timeline", 1)[1].split("::", 1)[1]
    text = "\n".join(line[4:] for line in example.splitlines())
    for name, freq in (("alice", 400.0), ("bob", 700.0), ("moh", 300.0)):
        write_wav(tmp_path / f"{name}.wav", tones.tone([freq], 1000))
    (tmp_path / "example.toml").write_text(text, encoding="utf-8")
    timeline = load_timeline(tmp_path / "example.toml")
    assert sorted(timeline.legs) == ["alice", "bob"] and timeline.ticks == 200
    result = mixdown(tmp_path / "example.toml", tmp_path / "out")
    assert [e["key"] for e in result.events if e["type"] == "digit"] == ["1", "2", "#"]


def test_cli_runs_and_returns_zero(tmp_path: Path) -> None:
    scene = Scene(tmp_path, seconds=0.2)
    scene.room({"a": 400.0})
    args = _parse([str(scene.write()), "--out", str(tmp_path / "cli")])
    assert run(args) == 0
    assert len(read_wav(tmp_path / "cli" / "a.wav")) == 10 * FRAME


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="conf-server")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["mixdown", *argv])


# -- bad timelines: one line naming the file, the key path and the reason --------------------

Edit = Callable[[Scene], None]


def _set_leg(**fields: Any) -> Edit:
    return lambda s: s.legs["a"].update(fields)


def _add_event(**fields: Any) -> Edit:
    return lambda s: s.events.append(fields)


def _stereo(s: Scene) -> None:
    write_wav(s.root / "a.wav", np.zeros(320, np.int16), rate=16000)


BAD: list[tuple[str, Edit, str, str]] = [
    ("seed-type", lambda s: s.top.update(seed="x"), "seed", "expected an integer"),
    ("top-unknown", lambda s: s.top.update(speed=2), "speed", "unknown key"),
    ("moh-missing", lambda s: s.top.update(music_on_hold="no.wav"), "music_on_hold", "no.wav"),
    ("no-legs", lambda s: s.legs.clear(), "legs", "missing"),
    ("leg-name", lambda s: s.legs.update({"a b": {}}), "legs.a b", "leg names"),
    ("codec", _set_leg(codec="G729"), "legs.a.codec", "'G729' is not one of PCMU, PCMA"),
    ("dtmf", _set_leg(dtmf="info"), "legs.a.dtmf", "not one of rfc4733, inband"),
    ("leg-unknown", _set_leg(volume=3), "legs.a.volume", "unknown key"),
    ("input-missing", _set_leg(input="none.wav"), "legs.a.input", "none.wav"),
    ("input-rate", _stereo, "legs.a.input", "need mono 16-bit 8000 Hz"),
    ("at-missing", _add_event(action="mute", leg="a"), "events[1].at", "missing"),
    ("at-negative", _add_event(at=-1, action="mute", leg="a"), "events[1].at", "outside"),
    ("at-bool", _add_event(at=True, action="mute", leg="a"), "events[1].at", "a number"),
    ("action", _add_event(at=0, action="dance", leg="a"), "events[1].action", "'dance'"),
    ("leg-ref", _add_event(at=0, action="mute", leg="zed"), "events[1].leg", "unknown leg"),
    ("meeting", _add_event(at=0, action="join", leg="a"), "events[1].meeting", "missing"),
    (
        "listener",
        _add_event(at=0, action="join", leg="a", meeting="m", listener="yes"),
        "events[1].listener",
        "true or false",
    ),
    (
        "gain-range",
        _add_event(at=0, action="gain", leg="a", out_db=30),
        "events[1].out_db",
        "outside [-20, 20]",
    ),
    ("gain-none", _add_event(at=0, action="gain", leg="a"), "events[1].in_db", "needs in_db"),
    (
        "digits",
        _add_event(at=0, action="digits", leg="a", digits="12x"),
        "events[1].digits",
        "not a string of DTMF keys",
    ),
    (
        "digit-len",
        _add_event(at=0, action="digits", leg="a", digits="1", duration_ms=5),
        "events[1].duration_ms",
        "outside",
    ),
    (
        "tone-freq",
        _add_event(at=0, action="tone", meeting="m", freqs=[5000], duration_ms=100),
        "events[1].freqs",
        "5000",
    ),
    (
        "tone-list",
        _add_event(at=0, action="tone", meeting="m", freqs=[], duration_ms=100),
        "events[1].freqs",
        "non-empty list",
    ),
    (
        "tone-len",
        _add_event(at=0, action="tone", meeting="m", freqs=[440]),
        "events[1].duration_ms",
        "missing",
    ),
    (
        "target",
        _add_event(at=0, action="tone", leg="a", meeting="m", freqs=[440], duration_ms=100),
        "events[1].leg",
        "exactly one",
    ),
    (
        "prompt-file",
        _add_event(at=0, action="prompt", leg="a", file="gone.wav"),
        "events[1].file",
        "gone.wav",
    ),
    (
        "event-unknown",
        _add_event(at=0, action="leave", leg="a", loud=1),
        "events[1].loud",
        "unknown key",
    ),
    ("after-end", _add_event(at=9, action="mute", leg="a"), "events[1].at", "after the 'end'"),
    ("two-ends", _add_event(at=0.5, action="end"), "events[2]", "exactly one 'end'"),
]


@pytest.mark.parametrize("bad", BAD, ids=[b[0] for b in BAD])
def test_bad_timeline_is_one_line_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: tuple[str, Edit, str, str]
) -> None:
    case, edit, key, reason = bad
    scene = Scene(tmp_path)
    scene.room({"a": 400.0})
    edit(scene)
    path = scene.write()
    with pytest.raises(TimelineError) as info:
        load_timeline(path)
    assert str(info.value).startswith(f"{path}: {key}: "), case
    assert reason in str(info.value)
    assert run(_parse([str(path), "--out", str(tmp_path / "out")])) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"conf-server mixdown: {info.value}\n" and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "cannot read"), ("legs = [", "not valid TOML"), ("[[events]]\nat = 0\n", "legs")],
)
def test_unreadable_timeline_names_the_file(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "t.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TimelineError, match=re.escape(str(path)) + ": .*" + reason):
        load_timeline(path)


def test_missing_end_names_events(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        timeline_text({}, {"a": {}}, [{"at": 0, "action": "mute", "leg": "a"}]), encoding="utf-8"
    )
    with pytest.raises(TimelineError, match=r"t\.toml: events: need exactly one 'end' event"):
        load_timeline(path)


def test_unwritable_output_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = Scene(tmp_path, seconds=0.1)
    scene.room({"a": 400.0})
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a directory", encoding="utf-8")
    assert run(_parse([str(scene.write()), "--out", str(blocker)])) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"conf-server mixdown: {blocker}: cannot write output")
    assert err.count("\n") == 1
