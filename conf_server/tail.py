"""``conf-server tail [FILE] [--meeting N] [--call ID] [--level L] [--follow]``: read the log.

The server writes one JSON object per line (``conf_server.logs``, DESIGN.md convention 9). This
command reads such a file (or stdin), keeps the lines that match the filters and prints each as
one readable line::

    18:42:07.125 info  call.joined      call=8f2c… meeting=100001 role=host  since_answer_ms=912.4

Time (UTC, from ``timestamp``), level, event, then the call context (``call_id`` shortened to
``call``, ``meeting``, ``role``, ``did``, ``caller``), then every other field as ``key=value``
in the order the server wrote them. On a terminal the level and event are coloured (ANSI SGR);
``--color`` forces it either way. A line that is not a JSON object is printed as it is, so
nothing the process wrote is hidden.

Filters: ``--meeting`` (the meeting number), ``--call`` (a call id, or a prefix of one),
``--level`` (this level and above: debug < info < warning < error < critical). ``--follow``
works like ``tail -f`` on a file: after the end it waits for more lines, and starts over at
the top when the file is truncated or replaced (log rotation). Reading stdin always follows
until end of file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
CONTEXT: Final = ("call_id", "meeting", "role", "did", "caller")
_SKIP: Final = frozenset({"timestamp", "level", "event", "component", "logger", *CONTEXT})
_COLOURS: Final = {
    "debug": "\x1b[2m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[1;31m",
}
_BOLD: Final = "\x1b[1m"
_RESET: Final = "\x1b[0m"
POLL_SECONDS: Final = 0.25
CALL_ID_SHOWN: Final = 12


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records to show; None means any."""

    meeting: str | None = None
    call: str | None = None
    level: str = "debug"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level {self.level!r} is not one of {', '.join(LEVELS)}")

    def matches(self, record: dict[str, Any]) -> bool:
        if self.meeting is not None and str(record.get("meeting")) != self.meeting:
            return False
        if self.call is not None and not str(record.get("call_id", "")).startswith(self.call):
            return False
        level = str(record.get("level", "info")).lower()
        rank = LEVELS.index(level) if level in LEVELS else len(LEVELS)
        return rank >= LEVELS.index(self.level)


def parse(line: str) -> dict[str, Any] | None:
    """The JSON object of a log line, or None for anything else."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _clock(timestamp: object) -> str:
    """``2026-11-23T18:42:07.125431Z`` → ``18:42:07.125``; anything else as it is."""
    text = str(timestamp or "")
    _, sep, rest = text.partition("T")
    if not sep or len(rest) < 8:
        return text
    return rest[:12].rstrip("Z")


def _value(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value)
    return json.dumps(value)


def format_record(record: dict[str, Any], colour: bool = False) -> str:
    """One readable line for one log record (see the module docstring)."""
    level = str(record.get("level", "")).lower()
    event = str(record.get("event", ""))
    parts = [_clock(record.get("timestamp")), f"{level:<7}", f"{event:<20}"]
    if colour:
        parts[1] = f"{_COLOURS.get(level, '')}{parts[1]}{_RESET}"
        parts[2] = f"{_BOLD}{parts[2]}{_RESET}"
    for key in CONTEXT:
        value = record.get(key)
        if value is not None:
            shown = str(value)[:CALL_ID_SHOWN] if key == "call_id" else _value(value)
            parts.append(f"{'call' if key == 'call_id' else key}={shown}")
    parts += [f"{key}={_value(v)}" for key, v in record.items() if key not in _SKIP]
    return " ".join(parts)


def render(lines: Iterable[str], wanted: Filter, colour: bool) -> Iterator[str]:
    """The printable lines for ``lines``: matching records formatted, non-JSON passed on."""
    for line in lines:
        record = parse(line)
        if record is None:
            if line.strip():
                yield line.rstrip("\n")
        elif wanted.matches(record):
            yield format_record(record, colour)


def follow(
    path: Path,
    *,
    sleep: Callable[[float], None] = time.sleep,
    keep_going: Callable[[], bool] = lambda: True,
) -> Iterator[str]:
    """Lines of ``path`` as they are written (``tail -f``), surviving truncation and rotation.

    A partial last line is held back until its newline arrives.
    """
    handle = path.open("r", encoding="utf-8", errors="replace")
    identity = os.fstat(handle.fileno()).st_ino
    pending = ""
    try:
        while True:
            chunk = handle.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
                continue
            if not keep_going():
                return
            if _replaced(path, identity, handle.tell()):
                handle.close()
                handle = path.open("r", encoding="utf-8", errors="replace")
                identity = os.fstat(handle.fileno()).st_ino
                pending = ""
                continue
            sleep(POLL_SECONDS)
    finally:
        handle.close()


def _replaced(path: Path, identity: int, position: int) -> bool:
    """The file was rotated (a new inode) or truncated below where we read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False  # between the rename and the new file: keep waiting
    return st.st_ino != identity or st.st_size < position


def add_parser(sub: Any) -> None:
    """Add the ``tail`` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "tail",
        help="print the server's JSON log readably, filtered by meeting, call or level",
        description="Read the JSON log (FILE, or stdin) and print it readably.",
    )
    p.add_argument("file", nargs="?", type=Path, metavar="FILE", help="log file (default stdin)")
    p.add_argument("--meeting", metavar="N", help="only this meeting number")
    p.add_argument("--call", metavar="ID", help="only this call id (a prefix is enough)")
    p.add_argument("--level", choices=LEVELS, default="debug", help="this level and above")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep reading as the file grows (tail -f)"
    )
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def run(args: argparse.Namespace, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Print the log; exit 2 (one line) when the file cannot be read."""
    stdout = out if out is not None else sys.stdout
    colour = args.color == "always" or (args.color == "auto" and stdout.isatty())
    wanted = Filter(args.meeting, args.call, args.level)
    try:
        lines: Iterable[str]
        if args.file is None:
            lines = stdin if stdin is not None else sys.stdin
        elif args.follow:
            lines = follow(args.file)
        else:
            lines = args.file.read_text(encoding="utf-8", errors="replace").splitlines()
        for text in render(lines, wanted, colour):
            stdout.write(text + "\n")
            stdout.flush()
    except OSError as exc:
        sys.stderr.write(f"conf-server: {args.file}: {exc.strerror or exc}\n")
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
