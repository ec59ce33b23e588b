"""``conf-server provision FILE.toml``: load a whole set-up into the store, idempotently.

The file format and the matching rules are ``conf_server.store.provision``'s (its module
docstring). This command opens the store named by ``--db`` (or the ``--config`` file, or the
default), applies the file in one transaction and prints one line per kind of object::

    subscribers: 0 created, 0 updated, 0 unchanged
    did_groups: 1 created, 0 updated, 0 unchanged
    ...

A file that cannot be applied prints one line ``conf-server: FILE: KEY: REASON`` and exits 2
with nothing written; so does a database that cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_USAGE = 2


def add_parser(sub: Any) -> None:
    """Add the ``provision`` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "provision",
        help="load DID groups, DIDs, rooms and subscribers from a TOML file",
        description="Create or update the objects a TOML file describes (idempotent) and report "
        "what changed. A bad file changes nothing and names the file, key and reason.",
    )
    p.add_argument("file", type=Path, metavar="FILE.toml", help="the provisioning file")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file (for db.url)")
    p.add_argument("--db", metavar="URL", help="database URL (overrides the settings)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Apply ``args.file``; print the report (or one error line) and return the exit code."""
    # Imported here so `conf-server --help` answers without loading SQLAlchemy.
    from conf_server.config import ConfigError, load  # noqa: PLC0415
    from conf_server.store.errors import StoreError  # noqa: PLC0415

    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    try:
        settings = load(args.config, {"db.url": args.db} if args.db else None)
        lines = asyncio.run(_provision(settings.db.url, args.file))
    except (ConfigError, StoreError, OSError, ValueError) as exc:
        stderr.write(f"conf-server: {exc}\n")
        return EXIT_USAGE
    stdout.write("".join(f"{line}\n" for line in lines))
    return 0


async def _provision(url: str, file: Path) -> list[str]:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from conf_server.store import Store  # noqa: PLC0415
    from conf_server.store.errors import StoreError  # noqa: PLC0415
    from conf_server.store.provision import provision_file  # noqa: PLC0415

    try:
        store = await Store.open(url)
    except (StoreError, SQLAlchemyError, OSError, ValueError) as exc:
        raise StoreError(f"cannot open database {url}: {exc}") from None
    try:
        report = await provision_file(store, file)
    finally:
        await store.close()
    return [f"{file}:", *(f"  {line}" for line in report.lines())]
