"""The tick thread's real-time scheduling (``engine.realtime``): granted, refused, off."""

from __future__ import annotations

import os
import threading

import pytest
import structlog

from conf_server.runtime.engine import MediaEngine, realtime
from conf_server.runtime.ports import PortAllocator
from media.errors import MediaConfigError


def _in_thread(priority: int) -> tuple[bool, int, int]:
    """Ask for ``priority`` in a fresh thread; its result, policy and priority afterwards."""
    out: list[tuple[bool, int, int]] = []

    def run() -> None:
        granted = realtime(priority)
        out.append((granted, os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def test_the_calling_thread_alone_gets_fifo_scheduling() -> None:
    with structlog.testing.capture_logs() as logs:
        result = _in_thread(10)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own thread is untouched
    if os.geteuid() != 0:  # without root (or CAP_SYS_NICE) the kernel refuses: EPERM
        assert result[:2] == (False, os.SCHED_OTHER) and "not permitted" in logs[0]["error"]
        return
    assert result == (True, os.SCHED_FIFO, 10)
    assert [(e["event"], e["priority"]) for e in logs] == [("engine.realtime", 10)]


def test_a_refused_request_is_logged_and_leaves_normal_scheduling() -> None:
    with structlog.testing.capture_logs() as logs:
        granted, policy, _ = _in_thread(1000)  # no such FIFO priority: the kernel says EINVAL
    assert not granted and policy == os.SCHED_OTHER
    (refused,) = logs
    assert refused["event"] == "engine.realtime_refused" and refused["log_level"] == "warning"
    assert refused["priority"] == 1000 and refused["error"]


def test_an_engine_refuses_a_priority_outside_the_fifo_range() -> None:
    ports = PortAllocator("127.0.0.1", 47000, 47099)
    with pytest.raises(MediaConfigError, match="realtime priority 100"):
        MediaEngine(ports=ports, realtime_priority=100)
