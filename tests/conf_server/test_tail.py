"""``conf-server tail``: readable lines, filters, colours, and ``tail -f`` on a growing file."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.cli import build_parser
from conf_server.tail import LEVELS, Filter, follow, format_record, parse, render, run

JOINED = {
    "call_id": "8f2c61d0a1b2c3d4e5f6@10.0.0.7",
    "peer": "10.0.0.7:5060",
    "caller": "+15550001",
    "did": "+12125550100",
    "meeting": "100001",
    "role": "host",
    "since_answer_ms": 912.4,
    "event": "call.joined",
    "component": "conference",
    "level": "info",
    "timestamp": "2026-11-23T18:42:07.125431Z",
}


def _line(**fields: Any) -> str:
    return json.dumps({**JOINED, **fields}) + "\n"


def test_golden_line() -> None:
    assert format_record(JOINED) == (
        "18:42:07.125 info    call.joined          call=8f2c61d0a1b2 meeting=100001 role=host "
        "did=+12125550100 caller=+15550001 peer=10.0.0.7:5060 since_answer_ms=912.4"
    )


def test_colour_marks_level_and_event_only_when_asked() -> None:
    plain = format_record({**JOINED, "level": "error"})
    coloured = format_record({**JOINED, "level": "error"}, colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[31merror  \x1b[0m" in coloured and "\x1b[1mcall.joined" in coloured


def test_values_with_spaces_and_non_strings_are_quoted_as_json() -> None:
    line = format_record({"event": "x", "level": "info", "reason": "too many", "n": None})
    assert line.endswith('reason="too many" n=null')


def test_filters_by_meeting_call_prefix_and_level() -> None:
    lines = [
        _line(),
        _line(meeting="100002", call_id="other"),
        _line(level="debug"),
        _line(level="warning", event="security.lockout_started"),
        "not json at all\n",
    ]
    shown = list(render(lines, Filter(meeting="100001", level="info"), colour=False))
    assert [s.split()[2] for s in shown[:2]] == ["call.joined", "security.lockout_started"]
    assert shown[-1] == "not json at all"  # never hidden
    by_call = list(render(lines[:2], Filter(call="8f2c"), colour=False))
    assert len(by_call) == 1 and "meeting=100001" in by_call[0]


def test_bad_level_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="level 'loud' is not one of debug, info"):
        Filter(level="loud")


def test_parse_accepts_objects_only() -> None:
    assert parse(_line()) == JOINED
    assert parse("[1, 2]") is None
    assert parse("{broken") is None
    assert parse("") is None


@given(st.sampled_from(LEVELS), st.sampled_from(LEVELS))
def test_level_threshold_is_monotonic(threshold: str, level: str) -> None:
    shown = Filter(level=threshold).matches({"level": level})
    assert shown == (LEVELS.index(level) >= LEVELS.index(threshold))


def test_follow_yields_appended_lines_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(_line(event="a"))

    def append(text: str) -> None:
        with log.open("a") as fh:
            fh.write(text)

    steps: list[Callable[[], object]] = [
        lambda: append(_line(event="b")[:40]),  # a partial line is held back
        lambda: append(_line(event="b")[40:]),
        lambda: log.write_text(_line(event="c")),  # truncated and rewritten (rotation)
        lambda: None,
    ]

    def sleep(_: float) -> None:
        steps.pop(0)()

    lines = follow(log, sleep=sleep, keep_going=lambda: bool(steps))
    assert [json.loads(x)["event"] for x in lines] == ["a", "b", "c"]


def test_run_reads_a_file_and_stdin(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(_line() + _line(meeting="100002"))
    out = io.StringIO()
    args = build_parser().parse_args(["tail", str(log), "--meeting", "100002"])
    assert run(args, out) == 0
    assert out.getvalue().count("\n") == 1 and "meeting=100002" in out.getvalue()

    out = io.StringIO()
    args = build_parser().parse_args(["tail", "--level", "warning", "--color", "always"])
    assert run(args, out, io.StringIO(_line() + _line(level="warning"))) == 0
    assert out.getvalue().count("\n") == 1 and "\x1b[33m" in out.getvalue()


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path, capsys: Any) -> None:
    args = build_parser().parse_args(["tail", str(tmp_path / "none.log")])
    assert run(args, io.StringIO()) == 2
    assert (
        capsys.readouterr().err
        == f"conf-server: {tmp_path / 'none.log'}: No such file or directory\n"
    )
