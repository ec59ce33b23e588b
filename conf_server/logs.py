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
