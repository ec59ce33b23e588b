"""Message framing on stream transports (RFC 3261 §18.3, §20.14; RFC 5626 §3.5.1).

Theory of operation: a TCP/TLS connection delivers an octet stream, so message boundaries come
only from the header section's empty line plus the Content-Length that every stream message
MUST carry (§20.14). :class:`StreamFramer` buffers what ``feed`` receives and hands back each
complete message as ``bytes`` (to be parsed by ``sip.message.parse_message``), keeping a partial
one for the next read.

CRLFs between messages are keep-alives (RFC 5626 §3.5.1: a client "ping" is CRLFCRLF and the
server answers with one CRLF "pong"); they are skipped and every CRLFCRLF is counted so the
runtime can answer with ``take_pings()``.

A stream whose framing is lost cannot be resynchronised: a missing, repeated, negative or
non-numeric Content-Length, or a header section / message over the size limit raises
ParseError and the runtime closes the connection (RFC 4475 §3.1.2.3 ncl, §3.3.9 mcl01).
Over the size limit (``sip.limits.Limits.max_message``) the error is 513 and ``oversize``
keeps the first ``max_message`` octets, so the runtime can answer 513 Message Too Large
(RFC 3261 §21.5.14) from the readable headers before it closes. The search for the empty line
resumes where the last one stopped, so a slow trickle of header octets costs linear time.
"""

from __future__ import annotations

import re

from sip.errors import ParseError
from sip.limits import DEFAULT

# A Content-Length (or compact "l") header line, at the start of a line, folded values allowed.
_LENGTH_RE = re.compile(
    rb"\r\n(?:content-length|l)[ \t]*+:((?:[^\r\n]++|\r\n[ \t])*+)", re.IGNORECASE
)
_CRLF_RUN = re.compile(rb"(?:\r\n)*+")  # keep-alives, skipped in one match
_TOO_LARGE = "Message Too Large"


def _content_length(head: bytes) -> int:
    values = _LENGTH_RE.findall(head)
    if not values:
        raise ParseError("stream message without Content-Length (RFC 3261 §20.14)")
    if len(values) > 1:
        raise ParseError("more than one Content-Length header")
    text = values[0].replace(b"\r\n", b"").strip(b" \t")
    if not text.isdigit() or len(text.lstrip(b"0")) > 6:
        raise ParseError(f"invalid Content-Length {text[:20]!r}")
    return int(text)


class StreamFramer:
    """Split one connection's byte stream into complete SIP messages."""

    __slots__ = ("_buffer", "_crlfs", "_max", "_pings", "_scanned", "_total", "oversize")

    def __init__(self, max_message: int = DEFAULT.max_message) -> None:
        self._max = max_message
        self.oversize = b""  # the start of a message refused for its size
        self._buffer = bytearray()
        self._scanned = 0  # how far the search for the empty line has already looked
        self._total = 0  # length of the message being received, once its head is complete
        self._crlfs = 0  # CRLFs seen in a row between messages (two make one ping)
        self._pings = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add received octets; return every message now complete, in order."""
        self._buffer += data
        messages: list[bytes] = []
        while True:
            self._skip_keepalives()
            message = self._take_message()
            if message is None:
                return messages
            messages.append(message)

    def take_pings(self) -> int:
        """Number of CRLFCRLF keep-alive pings seen since the last call (answer each with CRLF)."""
        pings, self._pings = self._pings, 0
        return pings

    @property
    def buffered(self) -> int:
        """Octets held for an incomplete message."""
        return len(self._buffer)

    def _skip_keepalives(self) -> None:
        buf = self._buffer
        run = _CRLF_RUN.match(buf)
        skip = run.end() if run is not None else 0
        if skip:
            self._crlfs += skip // 2
            self._pings += self._crlfs // 2
            self._crlfs %= 2
            del buf[:skip]
            self._scanned = 0
        if buf and not buf.startswith(b"\r"):
            self._crlfs = 0

    def _take_message(self) -> bytes | None:
        total = self._total or self._frame()
        if not total or len(self._buffer) < total:
            return None  # the header section, or the body, is still arriving
        message = bytes(self._buffer[:total])
        del self._buffer[:total]
        self._scanned = self._total = 0
        return message

    def _frame(self) -> int:
        """The whole length of the message at the buffer's start, 0 while its head is partial.

        Computed once per message: a body trickled in one octet at a time does not re-read the
        header section on every read.
        """
        buf = self._buffer
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buf)
            if len(buf) > self._max:
                self.oversize = bytes(buf[: self._max])
                raise ParseError(f"header section exceeds {self._max} octets", 513, _TOO_LARGE)
            return 0
        # Prefix CRLF so the first header line matches like the others.
        length = _content_length(b"\r\n" + bytes(buf[:end]))
        total = end + 4 + length
        if total > self._max:
            self.oversize = bytes(buf[: min(end + 4, self._max)])
            raise ParseError(f"message of {total} octets exceeds {self._max}", 513, _TOO_LARGE)
        self._total = total
        return total
