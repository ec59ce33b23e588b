"""The ``conf-server`` command line.

``conf-server run`` starts SIP, media and the REST API in one event loop. Settings come from
defaults, then ``--config FILE`` (TOML, see ``config/default.toml``), then the flags given here.
A problem the operator can fix (bad config, port taken) ends the process with exit code 2 and
one line naming the cause, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conf_server import __version__, mixdown, provision_cmd, tail
from conf_server.config import ConfigError, Settings, load

EXIT_USAGE = 2


def _run_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="start the conference server",
        description="Start SIP, media and the REST API. Flags override the --config file.",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    p.add_argument(
        "--sip",
        metavar="HOST:PORT",
        help="SIP UDP+TCP listen address (default 0.0.0.0:5060; port 0 picks a free one)",
    )
    p.add_argument("--api", metavar="HOST:PORT", help="REST API address (default 127.0.0.1:8080)")
    p.add_argument(
        "--db",
        metavar="URL",
        help="database URL (default sqlite+aiosqlite:///var/conf-server.db; "
        "postgresql+asyncpg://... for PostgreSQL)",
    )
    p.add_argument(
        "--rtp-ports", metavar="LOW-HIGH", help="RTP/RTCP port range (default 20000-29999)"
    )
    p.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        help="log lines as JSON (for machines) or console (for people); auto picks by terminal",
    )
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--demo",
        action="store_true",
        help="provision the demo DID and meetings (idempotent) and print how to dial in",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="conf-server",
        description="Real-time SIP/RTP audio conference server.",
    )
    parser.add_argument("--version", action="version", version=f"conf-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    mixdown.add_parser(sub)
    provision_cmd.add_parser(sub)
    tail.add_parser(sub)
    return parser


_FLAG_KEYS = {
    "sip": "sip.listen",
    "api": "api.listen",
    "db": "db.url",
    "rtp_ports": "rtp.ports",
    "log_format": "log.format",
    "log_level": "log.level",
}


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Defaults → --config file → flags."""
    overrides = {
        key: getattr(args, attr)
        for attr, key in _FLAG_KEYS.items()
        if getattr(args, attr, None) is not None
    }
    return load(args.config, overrides)


def _fail(message: str) -> int:
    sys.stderr.write(f"conf-server: {message}\n")
    return EXIT_USAGE


def _cmd_run(args: argparse.Namespace) -> int:
    # Imported here so `conf-server --help` answers without loading numpy, SQLAlchemy, etc.
    from conf_server.runtime.server import StartupError, serve  # noqa: PLC0415

    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        asyncio.run(serve(settings, demo=args.demo))
    except StartupError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0
    return 0


_COMMANDS = {
    "run": _cmd_run,
    "mixdown": mixdown.run,
    "provision": provision_cmd.run,
    "tail": tail.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``conf-server`` script."""
    args = build_parser().parse_args(argv)
    return _COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
