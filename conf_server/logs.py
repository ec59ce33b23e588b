"""Structured logging for operators (DESIGN.md convention 9).

JSON lines when stderr is not a terminal (or ``--log-format json``), a readable console
otherwise. Event names are dotted ``noun.verb`` strings; data goes in fields. Context such as
``call_id``, ``meeting``, ``did``, ``role`` and ``peer`` is bound with contextvars or
``log.bind`` so every line of a call carries it.

Secrets never reach a log line: the ``redact`` processor replaces the values of keys that
name credentials (passwords, Authorization headers, access codes, PINs).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["json", "console", "auto"]

_SECRET_KEYS = frozenset(
    {"password", "authorization", "proxy_authorization", "access_code", "pin", "secret", "code"}
)


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of every field that names a secret."""
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "***"
    return event


def configure(fmt: LogFormat = "auto", level: str = "info", stream: Any = None) -> None:
    """Configure structlog for the whole process; safe to call more than once."""
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(out, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=getattr(out, "isatty", lambda: False)())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger carrying ``component=name``; bind call context on it."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger


class Throttled:
    """One event that a stranger can trigger at will (a malformed SIP datagram, a drop): at most
    ``per_second`` lines a second, the rest counted into the next line's ``suppressed`` field.

    A flood then costs a few lines a second instead of one line per datagram, and the operator
    still sees how many there were.
    """

    __slots__ = ("_logger", "_sent", "_suppressed", "_window", "event", "level", "per_second")

    def __init__(
        self, logger: Any, event: str, *, level: str = "info", per_second: int = 10
    ) -> None:
        self._logger = logger
        self.event = event
        self.level = level
        self.per_second = per_second
        self._window = float("-inf")
        self._sent = 0
        self._suppressed = 0

    def __call__(self, now: float, **fields: Any) -> bool:
        """Log (True) or count (False) one occurrence at monotonic time ``now``."""
        if now - self._window >= 1.0:
            self._window, self._sent = now, 0
        if self._sent >= self.per_second:
            self._suppressed += 1
            return False
        self._sent += 1
        if self._suppressed:
            fields["suppressed"] = self._suppressed
            self._suppressed = 0
        getattr(self._logger, self.level)(self.event, **fields)
        return True
