"""logs.Throttled: a flood of one event costs a few lines a second, and the lines count the rest."""

from __future__ import annotations

import structlog

from conf_server.logs import Throttled, get_logger


def test_at_most_per_second_lines_then_the_next_line_counts_the_rest() -> None:
    throttled = Throttled(get_logger("test"), "sip.rejected", per_second=3)
    with structlog.testing.capture_logs() as lines:
        logged = [throttled(100.0 + n * 0.01, peer=f"p{n}") for n in range(10)]
        assert logged == [True] * 3 + [False] * 7
        assert throttled(101.0, peer="late")  # a new second: logged again, with the count
    assert [line["peer"] for line in lines] == ["p0", "p1", "p2", "late"]
    assert [line.get("suppressed") for line in lines] == [None, None, None, 7]
    assert {line["event"] for line in lines} == {"sip.rejected"}
    assert {line["log_level"] for line in lines} == {"info"}


def test_the_count_restarts_after_it_is_reported() -> None:
    throttled = Throttled(get_logger("test"), "sip.dropped", level="warning", per_second=1)
    with structlog.testing.capture_logs() as lines:
        for second in (0.0, 1.0, 2.0):
            throttled(second)
            throttled(second + 0.5)  # counted
    assert [line.get("suppressed") for line in lines] == [None, 1, 1]
    assert {line["log_level"] for line in lines} == {"warning"}
