"""What every fuzz target shares: the crash rule, the budget, where inputs live, seed helpers.

This module imports nothing from ``sip`` or ``media``: the fuzzing process must import those
packages under atheris's instrumentation, after this module is loaded (``tests.fuzz.engine``).

The crash rule
--------------
A target is a function ``one_input(data: bytes) -> None`` that drives one part of the server the
way the runtime does and catches, at each call, exactly the error that call documents for peer
input (``ParseError`` and its children for ``sip``, ``MediaParseError`` for ``media``,
``AuthError`` for digest parsing, ``NegotiationError`` for offer/answer).  Anything else that
escapes ``one_input`` is a crash, and so is an input that takes longer than ``BUDGET`` seconds
without instrumentation (``tests.fuzz.replay`` measures that).  Properties the code documents
(a round trip, a stream split at other places, the batch RTP parser agreeing with the scalar one)
are checked too: a broken one raises :class:`InvariantError`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FUZZ_DATA = DATA / "fuzz"
SEEDS = FUZZ_DATA / "seeds"  # hand-written seeds, one folder per target
REGRESSIONS = FUZZ_DATA / "regressions"  # TARGET-what.bin: inputs that once crashed
CRASHES = FUZZ_DATA / "crashes"  # TARGET-<sha>.bin written by the runner (not committed)
TORTURE = DATA / "sip-torture"

TARGETS = ("sip_udp", "sip_tcp", "sdp", "digest", "media")
BUDGET = 0.010  # seconds one input may take, uninstrumented (the 20 ms tick shares the loop)
MAX_LEN = 65_536  # the largest UDP payload, the largest SIP message we accept (+1)
PEER = ("127.0.0.1", 5062)
NOW = 1_000.0  # the clock a target starts at: fixed, so every run is reproducible
_PROJECT = ("sip/", "media/")
_FUZZ = "tests/fuzz/"


class InvariantError(AssertionError):
    """A documented property broke (round trip, chunking, batch vs scalar parse).

    ``key`` names the property; it is part of the crash signature, so that two different broken
    properties in one function are two distinct crashes.
    """

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key = key


def target_of(path: Path) -> str:
    """The target a regression or crash file belongs to: its name up to the first '-'."""
    name = path.name.split("-", 1)[0]
    if name not in TARGETS:
        raise ValueError(f"{path.name}: name must start with one of {TARGETS} and '-'")
    return name


def signature(exc: BaseException) -> str:
    """A stable name for a crash: the exception type and the innermost project function.

    Line numbers are left out so that a crash keeps its name while the parsers are edited.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = "?"
    for frame in reversed(frames):
        rel = _relative(frame.filename)
        if rel.startswith(_PROJECT) or (rel.startswith(_FUZZ) and where == "?"):
            where = f"{rel}:{frame.name}"
            if rel.startswith(_PROJECT):
                break
    key = f"[{exc.key}]" if isinstance(exc, InvariantError) else ""
    return f"{type(exc).__name__}{key} in {where}"


def _relative(filename: str) -> str:
    try:
        return Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return filename


def read_files(paths: Iterable[Path]) -> Iterator[bytes]:
    """The bytes of every regular file among ``paths``, in name order."""
    for path in sorted(paths):
        if path.is_file():
            yield path.read_bytes()


def own_seeds(target: str) -> Iterator[bytes]:
    """The hand-written seeds of a target (``tests/data/fuzz/seeds/TARGET/``)."""
    yield from read_files((SEEDS / target).glob("*"))


def sip_messages() -> Iterator[bytes]:
    """Every SIP message the repository carries: the RFC 4475/5118 torture corpus (wire
    forms only), the hand-made variants and the golden vectors of ``tests/sip``."""
    for folder in ("rfc4475", "rfc5118-wire", "variants"):
        yield from read_files((TORTURE / folder).glob("*.dat"))
    yield from read_files((ROOT / "tests" / "sip" / "vectors").glob("*.sip"))


def sdp_bodies() -> Iterator[bytes]:
    """The SDP vectors of ``tests/sip`` and every SDP body found in the SIP messages."""
    yield from read_files((ROOT / "tests" / "sip" / "vectors_sdp").glob("*.sdp"))
    for message in sip_messages():
        _, sep, body = message.partition(b"\r\n\r\n")
        if sep and body.startswith(b"v="):
            yield body


_HEX_SPACE = re.compile(r"\s+")


def hex_values(node: object) -> Iterator[bytes]:
    """Every hex string in a parsed TOML vector file: the ``hex``/``canonical`` keys and the
    payload column of DTMF packet sequences."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("hex", "canonical") and isinstance(value, str):
                yield bytes.fromhex(_HEX_SPACE.sub("", value))
            else:
                yield from hex_values(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and re.fullmatch(r"[0-9a-fA-F]{8}", item):
                yield bytes.fromhex(item)
            else:
                yield from hex_values(item)
