"""SIP messages: parse and serialize requests and responses (RFC 3261 §7, §8.2, §18.3, §21).

Theory of operation. ``parse_message`` takes one UDP datagram or one framed TCP message, bounded
by ``sip.limits.Limits`` before anything is parsed: over ``max_message`` octets, over
``max_headers`` header lines or a line over ``max_header_line`` octets is 513 Message Too Large
(§21.5.14), a Request-URI over ``max_request_uri`` is 414 (§21.4.12). The header section ends
at the first empty line; it is decoded as UTF-8 with ``surrogateescape`` so raw octets
(RFC 4475 intmeth) survive a round trip, unfolded (CRLF+WSP becomes one SP, §7.3.1) and split
into lines. The start line follows a strict grammar: exactly
one SP between elements and ``SIP/2.0`` (any other version is 505). Header lines are split at
the first colon and their names mapped to a canonical spelling; values are *not* parsed here.

Content-Length frames the body (§18.3): a value larger than the octets left is 400, octets
beyond it are ignored (RFC 4475 dblreq), a missing one means "the rest of the datagram"
(RFC 2543 compatibility, inv2543), and a repeated, negative or non-numeric one is 400.

Everything else is lazy: ``Request.cseq``, ``.vias`` … parse on first access and cache in the
``Headers`` object (the cache is dropped on any mutation). ``validate_request`` then applies the
§8.2 / RFC 4475 §3.3 checks a UAS makes before acting on a request, and ``make_response`` builds
a response per §8.2.6, and ``error_response_for`` recovers enough header lines from a request
that failed to parse to answer it statelessly (never a response, never an ACK, never without Via).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sip.errors import ParseError, clip
from sip.headers import (
    EXACT_NAMES,
    TOKEN_RE,
    CSeq,
    Headers,
    NameAddr,
    Via,
    canonical_name,
    split_list,
)
from sip.limits import DEFAULT as DEFAULT_LIMITS
from sip.limits import Limits
from sip.uri import AbsoluteUri, SipUri, parse_hostport, parse_uri

__all__ = [
    "KNOWN_METHODS",
    "REASONS",
    "SINGLE_VALUE",
    "Headers",
    "Message",
    "Request",
    "Response",
    "default_reason",
    "error_response_for",
    "make_response",
    "parse_message",
    "validate_request",
]

_FOLD_RE = re.compile(r"\r\n[ \t]++")
_VERSION_RE = re.compile(r"SIP/[0-9]++\.[0-9]++", re.IGNORECASE)
_TOO_LARGE = "Message Too Large"


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise ParseError(f"missing {name} header")
    return value


class _MessageViews:
    """Parsed-on-access views of the headers every transaction and dialog needs."""

    __slots__ = ()
    headers: Headers

    @property
    def call_id(self) -> str:
        """The Call-ID (ParseError 400 when missing)."""
        return _required(self.headers, "Call-ID")

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        h = self.headers
        return h.cached("cseq", lambda: CSeq.parse(_required(h, "CSeq")))

    @property
    def from_(self) -> NameAddr:
        """The parsed From header."""
        h = self.headers
        return h.cached("from", lambda: NameAddr.parse(_required(h, "From")))

    @property
    def to(self) -> NameAddr:
        """The parsed To header."""
        h = self.headers
        return h.cached("to", lambda: NameAddr.parse(_required(h, "To")))

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first (a fresh list: callers may modify it)."""
        h = self.headers

        def build() -> list[Via]:
            rest = h.get_all("Via")[1:]
            return [self.top_via, *(Via.parse(v) for v in rest)] if "Via" in h else []

        return list(h.cached("via", build))

    @property
    def top_via(self) -> Via:
        """The first Via (ParseError 400 when there is none)."""
        h = self.headers
        return h.cached("top_via", lambda: Via.parse(_required(h, "Via")))

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as an int, None when absent."""
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_max_forwards(value)

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as written, None when absent."""
        return self.headers.get("Content-Type")


def parse_max_forwards(value: str) -> int:
    """``Max-Forwards: 1*DIGIT`` limited to 0..255 (§20.22); leading zeros allowed."""
    stripped = value.lstrip("0") or "0"
    if not (value.isascii() and value.isdigit()) or len(stripped) > 3 or int(stripped) > 255:
        raise ParseError(f"invalid Max-Forwards {clip(value)}")
    return int(stripped)


@dataclass(slots=True)
class Request(_MessageViews):
    """A SIP request: method, Request-URI, headers and body octets."""

    method: str
    uri: SipUri | AbsoluteUri
    headers: Headers
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Request:
        """Parse one datagram that must hold a request."""
        message = parse_message(data)
        if not isinstance(message, Request):
            raise ParseError("expected a request, got a response")
        return message

    def __bytes__(self) -> bytes:
        lines = [f"{self.method} {self.uri} SIP/2.0", *self.headers.serialize(len(self.body))]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


@dataclass(slots=True)
class Response(_MessageViews):
    """A SIP response: status code, reason phrase, headers and body octets."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Response:
        """Parse one datagram that must hold a response."""
        message = parse_message(data)
        if not isinstance(message, Response):
            raise ParseError("expected a response, got a request")
        return message

    def __bytes__(self) -> bytes:
        lines = [f"SIP/2.0 {self.status} {self.reason}", *self.headers.serialize(len(self.body))]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


Message = Request | Response


def split_head(data: bytes) -> tuple[list[str], bytes]:
    """Split a datagram into unfolded header-section lines and the octets after it.

    Leading CRLFs are skipped (§7.5). A header section not closed by an empty line is accepted
    when the datagram ends with CRLF (RFC 4475 baddn as archived), with an empty rest.
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end >= 0:
        head_bytes, rest = data[start:end], data[end + 4 :]
    elif data.endswith(b"\r\n") and len(data) > start:
        head_bytes, rest = data[start:-2], b""
    else:
        raise ParseError("header section not terminated by an empty line")
    head = head_bytes.decode("utf-8", "surrogateescape")
    if "\r\n " in head or "\r\n\t" in head:
        head = _FOLD_RE.sub(" ", head)
    lines = head.split("\r\n")
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise ParseError("bare CR or LF in the header section")
    return lines, rest


def _header_items(lines: list[str]) -> list[tuple[str, str, str]]:
    items: list[tuple[str, str, str]] = []
    append = items.append
    exact = EXACT_NAMES.get  # the hot loop of the parser: skip the call for usual spellings
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise ParseError(f"header line without colon: {clip(line, 40)}")
        entry = exact(name)
        if entry is None:
            entry = canonical_name(name.rstrip(" \t"))
        append((entry[0], entry[1], value.strip(" \t")))
    return items


def _content_length(items: list[tuple[str, str, str]]) -> int | None:
    values = [v for k, _, v in items if k == "content-length"]
    if not values:
        return None
    if len(values) > 1:
        raise ParseError("more than one Content-Length header")
    value = values[0]
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 6:
        raise ParseError(f"invalid Content-Length {clip(value)}")
    return int(value)


def _parse_request_line(line: str, limits: Limits) -> tuple[str, SipUri | AbsoluteUri]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise ParseError("request line must be Method SP Request-URI SP SIP-Version")
    method, uri_text, version = parts
    if len(uri_text) > limits.max_request_uri:
        raise ParseError(
            f"Request-URI of {len(uri_text)} octets exceeds {limits.max_request_uri}",
            414,
            "Request-URI Too Long",
        )
    if version.upper() != "SIP/2.0":
        if _VERSION_RE.fullmatch(version):
            raise ParseError(f"SIP version {version} not supported", 505, "Version Not Supported")
        raise ParseError(f"invalid SIP version {clip(version)}")
    if not TOKEN_RE.fullmatch(method):
        raise ParseError(f"invalid method {clip(method)}")
    return method, parse_uri(uri_text)


def _parse_status_line(line: str) -> tuple[int, str]:
    parts = line.split(" ", 2)
    if parts[0].upper() != "SIP/2.0":
        raise ParseError(
            f"SIP version {clip(parts[0])} not supported", 505, "Version Not Supported"
        )
    code = parts[1] if len(parts) > 1 else ""
    if len(code) != 3 or not (code.isascii() and code.isdigit()) or not "100" <= code <= "699":
        raise ParseError(f"invalid status code {clip(code, 12)}")
    return int(code), parts[2] if len(parts) == 3 else ""


def _check_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_message:
        raise ParseError(
            f"message of {len(data)} octets exceeds {limits.max_message}", 513, _TOO_LARGE
        )


def _check_lines(lines: list[str], limits: Limits) -> None:
    if len(lines) - 1 > limits.max_headers:
        raise ParseError(f"more than {limits.max_headers} header lines", 513, _TOO_LARGE)
    longest = max(map(len, lines))
    if longest > limits.max_header_line:
        raise ParseError(
            f"a header line of {longest} octets exceeds {limits.max_header_line}", 513, _TOO_LARGE
        )


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Parse one UDP datagram into a Request or Response; ParseError carries the status."""
    _check_size(data, limits)
    lines, rest = split_head(data)
    _check_lines(lines, limits)
    items = _header_items(lines[1:])
    length = _content_length(items)
    if length is None:
        body = rest
    elif length > len(rest):
        raise ParseError(f"Content-Length {length} exceeds the {len(rest)} octets received")
    else:
        body = rest[:length]
    start = lines[0]
    headers = Headers._trusted(items)
    if start[:4].upper() == "SIP/":
        status, reason = _parse_status_line(start)
        return Response(status, reason, headers, body)
    method, uri = _parse_request_line(start, limits)
    return Request(method, uri, headers, body)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


KNOWN_METHODS = frozenset(
    _words("INVITE ACK BYE CANCEL OPTIONS REGISTER INFO UPDATE PRACK SUBSCRIBE NOTIFY REFER")
) | {"MESSAGE", "PUBLISH"}
# Headers whose grammar allows exactly one value (RFC 3261 §20, RFC 4475 §3.3.8 multi01).
SINGLE_VALUE = _words(
    "To From Call-ID CSeq Max-Forwards Content-Length Content-Type Content-Disposition "
    "Content-Encoding Expires Min-Expires MIME-Version Date Subject Reply-To Priority "
    "Organization Timestamp User-Agent Server Retry-After Session-Expires Min-SE RSeq RAck "
    "Event Refer-To Replaces"
)
_SPACE_RE = re.compile(r"\s")
_SINGLE_KEYS = frozenset(n.lower() for n in SINGLE_VALUE)
_REQUIRED = ("To", "From", "Call-ID", "CSeq", "Via")
# transport SP sent-by, after "SIP/x.y/": possessive, so a hostile Via is one linear scan.
_SENT_BY_RE = re.compile(r"\s*+[^\s/,;]++\s++([^;,\s]++)")
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]++/[A-Za-z0-9\-.!%*_+`'~]++")


def _check_required(req: Request) -> None:
    for name in _REQUIRED:
        if name not in req.headers:
            raise ParseError(f"missing {name} header")


def _check_single(req: Request) -> None:
    seen: set[str] = set()
    for key, name, _ in req.headers._items:
        if key in _SINGLE_KEYS:
            if key in seen:
                raise ParseError(f"more than one {name} header")
            seen.add(key)


def _check_request_uri(req: Request) -> None:
    # §19.1.1 table: the headers component is not allowed in a Request-URI (RFC 4475 escruri).
    if isinstance(req.uri, SipUri) and req.uri.headers:
        raise ParseError("Request-URI must not carry URI headers")


def _check_addresses(req: Request) -> None:
    _ = req.to, req.from_
    for name in ("Route", "Record-Route"):
        for value in req.headers.get_all(name):
            NameAddr.parse(value)
    contacts = req.headers.get_all("Contact")
    if contacts != ["*"]:
        for value in contacts:
            NameAddr.parse(value)


def _check_call_id(req: Request) -> None:
    call_id = req.call_id
    if not call_id or _SPACE_RE.search(call_id):
        raise ParseError(f"invalid Call-ID {clip(call_id)}")


def _check_cseq(req: Request) -> None:
    cseq = req.cseq
    # RFC 4475 mismatch02: for a method we do not know, the 501 is the better answer.
    if req.method in KNOWN_METHODS and cseq.method != req.method:
        raise ParseError(f"CSeq method {cseq.method} does not match {req.method}")


def _check_vias(req: Request) -> None:
    if not req.vias:
        raise ParseError("missing Via header")


def _check_scalars(req: Request) -> None:
    _ = req.max_forwards
    content_type = req.content_type
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip()
        if not _MEDIA_TYPE_RE.fullmatch(media):
            raise ParseError(f"invalid Content-Type {clip(content_type)}")


_CHECKS: tuple[Callable[[Request], None], ...] = (
    _check_required,
    _check_single,
    _check_request_uri,
    _check_call_id,
    _check_cseq,
    _check_vias,
    _check_addresses,
    _check_scalars,
)


def _check_via_count(req: Request, limits: Limits) -> None:
    count = sum(len(split_list(line)) for line in req.headers.lines("Via"))
    if count > limits.max_vias:
        raise ParseError(f"{count} Via values exceed {limits.max_vias}")


def validate_request(req: Request, limits: Limits = DEFAULT_LIMITS) -> None:
    """The §8.2 / RFC 4475 §3.3 checks a UAS makes after parsing; ParseError(400) on failure."""
    _check_via_count(req, limits)
    for check in _CHECKS:
        check(req)


REASONS: dict[int, str] = {
    int(line[:3]): line[4:]
    for line in """\
100 Trying
180 Ringing
181 Call Is Being Forwarded
182 Queued
183 Session Progress
200 OK
202 Accepted
300 Multiple Choices
301 Moved Permanently
302 Moved Temporarily
305 Use Proxy
380 Alternative Service
400 Bad Request
401 Unauthorized
402 Payment Required
403 Forbidden
404 Not Found
405 Method Not Allowed
406 Not Acceptable
407 Proxy Authentication Required
408 Request Timeout
410 Gone
413 Request Entity Too Large
414 Request-URI Too Long
415 Unsupported Media Type
416 Unsupported URI Scheme
420 Bad Extension
421 Extension Required
423 Interval Too Brief
480 Temporarily Unavailable
481 Call/Transaction Does Not Exist
482 Loop Detected
483 Too Many Hops
484 Address Incomplete
485 Ambiguous
486 Busy Here
487 Request Terminated
488 Not Acceptable Here
491 Request Pending
493 Undecipherable
500 Server Internal Error
501 Not Implemented
502 Bad Gateway
503 Service Unavailable
504 Server Time-out
505 Version Not Supported
513 Message Too Large
600 Busy Everywhere
603 Decline
604 Does Not Exist Anywhere
606 Not Acceptable
""".splitlines()
}


def default_reason(status: int) -> str:
    """The RFC 3261 §21 reason phrase, or a class-generic one for unlisted codes."""
    return REASONS.get(status) or REASONS[status // 100 * 100]


def _to_with_tag(to_value: str, to_tag: str | None) -> str:
    """Append ``;tag=`` to the To text as written (keeps the peer's exact form)."""
    if to_tag is None:
        return to_value
    try:
        has_tag = NameAddr.parse(to_value).tag is not None
    except ParseError:
        return to_value
    return to_value if has_tag else f"{to_value};tag={to_tag}"


_COPIED = (
    ("from", "From"),
    ("to", "To"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("timestamp", "Timestamp"),
)


def _response_headers(lines: dict[str, list[str]], to_tag: str | None) -> list[tuple[str, str]]:
    out = [("Via", v) for v in lines.get("via", [])]
    # §8.2.6.1 also asks for the Timestamp to be echoed.
    for key, name in _COPIED:
        values = lines.get(key)
        if values:
            out.append((name, _to_with_tag(values[0], to_tag) if key == "to" else values[0]))
    return out


def make_response(
    req: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Build a response per §8.2.6.2: Vias in order, From, To (+ to_tag), Call-ID, CSeq."""
    lines = {k: req.headers.lines(k) for k in ("via", "from", "to", "call-id", "cseq")}
    lines["timestamp"] = req.headers.lines("Timestamp")
    out = Headers(_response_headers(lines, to_tag))
    for name, value in headers:
        out.add(name, value)
    return Response(status, reason or default_reason(status), out, body)


def _safe_reason(error: ParseError) -> str:
    reason = "".join(c for c in error.reason[:100] if c.isprintable())
    return reason or default_reason(error.status)


def _recover_lines(data: bytes, limits: Limits) -> tuple[str, dict[str, list[str]]]:
    """Start line and header lines of the first ``max_message`` octets, read leniently.

    A message cut at the limit loses its last, partial line; lines over ``max_header_line``
    are skipped, so an answer never copies an oversized header back.
    """
    head = data[: limits.max_message]
    if len(data) > limits.max_message:
        cut = head.rfind(b"\r\n")
        head = head[: cut + 2] if cut >= 0 else b""
    try:
        lines, _ = split_head(head)
    except ParseError:
        lines, _ = split_head(head + b"\r\n\r\n")
    found: dict[str, list[str]] = {}
    for line in lines[1 : limits.max_headers + 1]:
        name, sep, value = line.partition(":")
        if not sep or len(line) > limits.max_header_line:
            continue
        try:
            key = canonical_name(name.rstrip(" \t"))[0]
        except ParseError:
            continue
        found.setdefault(key, []).append(value.strip(" \t"))
    return lines[0], found


def _parsed_lines(req: Request) -> dict[str, list[str]]:
    return {key: req.headers.lines(key) for key in ("via", "from", "to", "call-id", "cseq")} | {
        "timestamp": req.headers.lines("Timestamp")
    }


def _via_recoverable(value: str) -> bool:
    """Whether a sent-by can be read from a top Via, even one that fails the strict grammar
    (RFC 4475 badvers says SIP/7.0 in its Via, badinv01 has empty parameters)."""
    name, sep1, rest = value.partition("/")
    version, sep2, rest = rest.partition("/")
    if not (sep1 and sep2 and name.strip() and version) or "," in name or "," in version:
        return False
    match = _SENT_BY_RE.match(rest)
    if match is None:
        return False
    try:
        parse_hostport(match.group(1))
    except ParseError:
        return False
    return True


def _answer_vias(
    lines: list[str], top: Via | None, source: tuple[str, int] | None
) -> list[str] | None:
    """The Via lines of a stateless answer: the top value stamped (§18.2.1) when it parses,
    copied as written when only its sent-by is readable, None when there is nowhere to answer."""
    if not lines:
        return None
    try:
        first = split_list(lines[0])
    except ParseError:
        return None
    if top is not None and source is not None:
        first[0] = str(top.with_received(source[0], source[1]))
        return [", ".join(first), *lines[1:]]
    if top is None and not _via_recoverable(first[0]):
        return None
    return lines


def _top_via(req: Request | None, lines: list[str]) -> Via | None:
    try:
        return req.top_via if req is not None else Via.parse(split_list(lines[0])[0])
    except ParseError:
        return None


def error_response_for(
    data: bytes,
    error: ParseError,
    *,
    to_tag: str | None = None,
    source: tuple[str, int] | None = None,
    parsed: Request | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes | None:
    """Best-effort stateless answer to a request that failed to parse or validate.

    None for responses, ACKs (§17.1.1.3: never answered) and when no Via can be read (there
    would be nowhere to send the answer). Otherwise the error's status with whatever Via, From,
    To, Call-ID and CSeq lines could be recovered, copied as written; with ``source`` the top
    Via is stamped with ``received``/``rport`` (§18.2.1, RFC 3581). ``parsed`` is the request
    when only validation failed: its header lines and cached views are reused, not re-read.
    """
    if parsed is not None:
        start, found = parsed.method, _parsed_lines(parsed)
    else:
        try:
            start, found = _recover_lines(data, limits)
        except ParseError:
            return None
    if start[:4].upper() == "SIP/" or start.split(" ", 1)[0] == "ACK":
        return None
    via_lines = found.get("via", [])
    top = _top_via(parsed, via_lines) if via_lines else None
    vias = _answer_vias(via_lines, top, source)
    if vias is None:
        return None
    found["via"] = vias
    headers = Headers(_response_headers(found, to_tag))
    return bytes(Response(error.status, _safe_reason(error), headers))
