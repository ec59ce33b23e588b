"""Fuzz target ``sip_tcp``: a TCP byte stream through ``sip.framing.StreamFramer``.

What it drives
--------------
The first byte of an input picks how the rest, the stream, is cut into reads (``0``: one read;
``k``: reads of ``floor + 0 … 4k-1`` octets from a fixed generator seeded with ``k``, where
``floor`` keeps the number of reads under ``MAX_READS`` as a real connection's receive buffer
would).  The reads go into one ``StreamFramer``; its documented error is ``ParseError`` (the
runtime closes the connection), after which nothing more is fed.

Checked on top of "no other exception":

* cutting the stream elsewhere changes nothing — the same stream fed in one read gives the same
  messages, the same keep-alive pings and the same error or absence of error (TCP may deliver
  any segmentation, so a framer that depends on it loses or invents messages);
* every framed message goes into a ``SipEndpoint`` over ``"TCP"`` (the same ``FakeRuntime`` as
  ``sip_udp``), as the runtime does with what the framer returns.

Seeds: every SIP message of the repository on its own and all of them back to back, with
keep-alive CRLFs between, each with a few different cuts.
"""

from __future__ import annotations

from collections.abc import Iterator

from sip.errors import ParseError
from sip.framing import StreamFramer
from tests.fuzz.common import InvariantError, own_seeds, sip_messages
from tests.fuzz.sip_udp import FakeRuntime

MAX_READS = 256
MAX_MESSAGES = 16  # messages handed to the endpoint per input (the framing check sees all)


class _Outcome:
    """What one way of feeding the stream produced."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.pings = 0
        self.error: str | None = None
        self.buffered = 0

    def key(self) -> tuple[list[bytes], int, bool, int]:
        # The error text may differ (a size checked sooner), the fact of an error may not.
        return self.messages, self.pings, self.error is not None, self.buffered


def reads(stream: bytes, k: int) -> Iterator[bytes]:
    """The stream cut as selector byte ``k`` says (see the module docstring)."""
    if k == 0:
        yield stream
        return
    floor = max(1, len(stream) // MAX_READS)
    state = k
    pos = 0
    while pos < len(stream):
        state = (state * 1_103_515_245 + 12_345) & 0x7FFF_FFFF
        size = floor + (state >> 8) % (4 * k)
        yield stream[pos : pos + size]
        pos += size


def _feed(chunks: Iterator[bytes]) -> _Outcome:
    framer = StreamFramer()
    out = _Outcome()
    for chunk in chunks:
        try:
            out.messages += framer.feed(chunk)
        except ParseError as err:
            out.error = str(err)
            break
        out.pings += framer.take_pings()
    out.buffered = -1 if out.error is not None else framer.buffered
    return out


def one_input(data: bytes) -> None:
    if not data:
        return
    k, stream = data[0], data[1:]
    cut = _feed(reads(stream, k))
    if k != 0:
        whole = _feed(iter((stream,)))
        if whole.error is not None and cut.error is not None:
            cut.messages = cut.messages[: len(whole.messages)]  # framed before the fatal one
            cut.pings = whole.pings
        if cut.key() != whole.key():
            raise InvariantError(
                "framing-depends-on-segmentation",
                f"{len(cut.messages)} messages, {cut.pings} pings, error {cut.error!r} in reads "
                f"vs {len(whole.messages)}, {whole.pings}, {whole.error!r} in one read",
            )
    runtime = FakeRuntime("TCP")
    for message in cut.messages[:MAX_MESSAGES]:
        runtime.receive(message)
    runtime.run_timers()


def seeds() -> Iterator[bytes]:
    messages = list(sip_messages())
    for message in messages:
        yield b"\x00" + message
        yield b"\x01" + message
    framed = [m for m in messages if _feed(iter((m,))).messages == [m]]
    stream = b"\r\n\r\n".join(framed)
    for k in (0, 1, 3, 40, 255):
        yield bytes((k,)) + stream
    yield from own_seeds("sip_tcp")
