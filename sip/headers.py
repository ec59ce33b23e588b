"""Header-field grammar of RFC 3261 §7.3, §20 and §25.1: names, lists, parameters, values.

Theory of operation: a header value arrives unfolded (the message layer turns CRLF+WSP into
one SP) and is parsed only when someone asks for it. The helpers here work on such a value:

* :func:`canonical_name` maps long and compact names (§7.3.3, RFC 3515, RFC 3892, RFC 3265,
  RFC 3841, RFC 4028, RFC 4474) to one spelling and a lower-case lookup key;
* :func:`split_list` splits a comma list (``#element`` headers only) outside quoted strings
  and ``<...>``;
* :func:`parse_params` reads ``*( SEMI generic-param )`` with LWS around ``;`` and ``=``,
  keeping quoted values exactly as written so serialization round-trips.

The value types :class:`NameAddr` (From/To/Contact/Route/Record-Route), :class:`Via` (with
RFC 3581 ``rport`` and RFC 5118 bracketed or bare IPv6 ``received``) and :class:`CSeq` are
frozen dataclasses with ``parse`` and ``__str__``. :class:`Headers` is a message's ordered
multi-map of header lines (re-exported by ``sip.message``), with a cache for parsed views that
also remembers a view that failed, so no header is parsed twice for one message.

Linear time on hostile values: patterns repeat possessively (nothing to backtrack into), the
list and parameter splitters jump between marks with compiled searches, a value carries at most
``sip.limits.MAX_PARAMS`` parameters, and error messages quote only the start of the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sip.errors import ParseError, clip
from sip.limits import MAX_LIST, MAX_PARAMS
from sip.uri import (
    AbsoluteUri,
    Params,
    SipUri,
    find_param,
    format_host,
    format_params,
    parse_hostport,
    parse_port,
    parse_uri,
)

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]++")
# gen-value = token / host / quoted-string: ``host`` adds ":" and "[]" (bare or bracketed
# IPv6, which RFC 5118 §4.5 asks us to accept in ``received``).
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]++")
_QUOTED_RE = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_QUOTED = r'"(?:[^"\\]++|\\.)*+"'
# One list element / one parameter: plain runs, quoted strings and (lists only) <URI>s.
_LIST_ITEM_RE = re.compile(rf'(?:[^",<]++|{_QUOTED}|<[^>]*+>)*+', re.DOTALL)
_PARAM_ITEM_RE = re.compile(rf'(?:[^";]++|{_QUOTED})*+', re.DOTALL)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_CSEQ_MAX = 2**31 - 1
_T = TypeVar("_T")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NAMES = _words(
    "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
    "Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition "
    "Content-Encoding Content-Language Content-Length Content-Type CSeq Date Error-Info "
    "Event Expires From Identity Identity-Info In-Reply-To Max-Forwards MIME-Version "
    "Min-Expires Min-SE Organization P-Asserted-Identity P-Preferred-Identity Path Priority "
    "Privacy Proxy-Authenticate Proxy-Authorization Proxy-Require RAck Reason Record-Route "
    "Refer-To Referred-By Reject-Contact Replaces Reply-To Request-Disposition Require "
    "Retry-After Route RSeq Server Service-Route Session-Expires Subject Supported "
    "Timestamp To Unsupported User-Agent Via Warning WWW-Authenticate"
)
# RFC 3261 §7.3.3 table, plus RFC 3265 (o, u), RFC 3515 (r), RFC 3892 (b), RFC 3841 (a, d, j),
# RFC 4028 (x) and RFC 4474 (y, n).
_COMPACT = dict(
    zip(
        _words("i m e l c f s k t v o u r b a d j x y n"),
        _words(
            "Call-ID Contact Content-Encoding Content-Length Content-Type From Subject "
            "Supported To Via Event Allow-Events Refer-To Referred-By Accept-Contact "
            "Request-Disposition Reject-Contact Session-Expires Identity Identity-Info"
        ),
        strict=True,
    )
)
# lower-case spelling (long or compact) -> (lookup key, canonical name)
CANONICAL: dict[str, tuple[str, str]] = {n.lower(): (n.lower(), n) for n in _NAMES}
CANONICAL.update({c: (n.lower(), n) for c, n in _COMPACT.items()})
# The same entries under their usual spellings, so the common case skips ``str.lower``.
EXACT_NAMES = {**CANONICAL, **{n: (n.lower(), n) for n in _NAMES}}
EXACT_NAMES.update({c.upper(): CANONICAL[c] for c in _COMPACT})

# Headers whose grammar is a comma list (RFC 3261 §20 ``#`` / ``*(COMMA ...)`` rules). The
# authentication headers are not: their credentials contain commas.
LIST_KEYS = frozenset(
    k.lower()
    for k in _words(
        "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
        "Call-Info Contact Content-Encoding Content-Language Error-Info In-Reply-To "
        "P-Asserted-Identity P-Preferred-Identity Path Privacy Proxy-Require Reason "
        "Record-Route Reject-Contact Request-Disposition Require Route Service-Route "
        "Supported Unsupported Via Warning"
    )
)


def canonical_name(name: str) -> tuple[str, str]:
    """(lookup key, canonical spelling) of a header name; ParseError if it is not a token."""
    entry = EXACT_NAMES.get(name) or CANONICAL.get(name.lower())
    if entry is not None:
        return entry
    if not TOKEN_RE.fullmatch(name):
        raise ParseError(f"invalid header name {clip(name)}")
    return name.lower(), name


def _quoted_end(text: str, start: int) -> int:
    """Index just past the quoted-string opening at ``start``; ParseError if unterminated."""
    match = _QUOTED_RE.match(text, start)
    if match is None:
        raise ParseError(f"unterminated quoted string in {clip(text)}")
    return match.end()


def _split_outside(text: str, item_re: re.Pattern[str], sep: str) -> list[str]:
    """Split at ``sep`` where ``item_re`` (one element: runs of plain text, quoted strings,
    ``<...>``) stops; one compiled match per element, so a hostile value is one pass in C."""
    parts: list[str] = []
    pos, n = 0, len(text)
    while True:
        match = item_re.match(text, pos)  # the pattern also matches "", so never None
        end = pos if match is None else match.end()
        parts.append(text[pos:end])
        if end == n:
            return parts
        if text[end] != sep:
            what = "quoted string" if text[end] == '"' else "'<'"
            raise ParseError(f"unterminated {what} in {clip(text)}")
        pos = end + 1


def split_list(value: str) -> list[str]:
    """Split a comma list outside quoted strings and angle brackets; elements are stripped.

    At most ``MAX_LIST`` elements per header line (counted before splitting).
    """
    if value.count(",") >= MAX_LIST:
        raise ParseError(f"more than {MAX_LIST} list elements in {clip(value)}")
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [v.strip() for v in value.split(",")]
    return [part.strip() for part in _split_outside(value, _LIST_ITEM_RE, ",")]


def _split_semicolons(text: str) -> list[str]:
    if text.count(";") >= MAX_PARAMS:
        raise ParseError(f"more than {MAX_PARAMS} parameters in {clip(text)}")
    if '"' not in text:
        return text.split(";")
    return _split_outside(text, _PARAM_ITEM_RE, ";")


def parse_params(text: str) -> Params:
    """Parse ``generic-param *( SEMI generic-param )`` (the text after the first ``;``)."""
    params: list[tuple[str, str | None]] = []
    for item in _split_semicolons(text):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not TOKEN_RE.fullmatch(name):
            raise ParseError(f"invalid parameter name {clip(name)}")
        if not sep:
            params.append((name, None))
            continue
        value = value.strip()
        if value.startswith('"'):
            if _quoted_end(value, 0) != len(value):
                raise ParseError(f"junk after quoted parameter value {clip(value)}")
        elif not _GEN_VALUE_RE.fullmatch(value):
            raise ParseError(f"invalid value for parameter {clip(name)}: {clip(value)}")
        params.append((name, value))
    return tuple(params)


def unquote(value: str) -> str:
    """The content of a quoted-string with quoted-pairs resolved (plain tokens unchanged)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return _QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner
    return value


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x09\x0b\x0c\x0e-\x1f\x7f]')


def quote(text: str) -> str:
    """A quoted-string for ``text`` (RFC 3261 §25.1 quoted-pair for '"', '\\' and controls)."""
    if "\r" in text or "\n" in text:
        raise ValueError("CR and LF cannot appear in a quoted-string")
    return '"' + _NEEDS_ESCAPE.sub(lambda m: "\\" + m.group(0), text) + '"'


def _replace_params(params: Params, values: dict[str, str | None]) -> Params:
    """Replace parameters by case-insensitive name in place; append the new ones."""
    pending = {k.lower(): (k, v) for k, v in values.items()}
    out: list[tuple[str, str | None]] = []
    for name, value in params:
        hit = pending.pop(name.lower(), None)
        out.append((name, hit[1]) if hit is not None else (name, value))
    out.extend(pending.values())
    return tuple(out)


def _display_tokens(text: str) -> str:
    for word in text.split():
        if not TOKEN_RE.fullmatch(word):
            raise ParseError(f"display name {clip(text)} must be quoted")
    return text


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``( name-addr / addr-spec ) *( SEMI param )``; display_name is stored unquoted."""

    uri: SipUri | AbsoluteUri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse one From/To/Contact/Route value (not a comma list)."""
        s = text.strip()
        if s.startswith('"'):
            end = _quoted_end(s, 0)
            display: str | None = unquote(s[:end])
            rest = s[end:].lstrip()
            if not rest.startswith("<"):
                raise ParseError(f"quoted display name without <URI> in {clip(text)}")
            return _angle_form(display, rest, text)
        lt = s.find("<")
        if lt >= 0:
            words = s[:lt].strip()
            display = _display_tokens(words) if words else None
            return _angle_form(display, s[lt:], text)
        return _addr_spec_form(s, text)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), None when absent or valueless."""
        return find_param(self.params, "tag")[1]

    def with_tag(self, tag: str) -> NameAddr:
        """The same address with ``tag`` set (replacing any existing tag)."""
        return NameAddr(self.uri, self.display_name, _replace_params(self.params, {"tag": tag}))

    def param(self, name: str) -> str | None:
        """A header parameter's value ("" when valueless, None when absent)."""
        present, value = find_param(self.params, name)
        if not present:
            return None
        return "" if value is None else value

    def __str__(self) -> str:
        display = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _angle_form(display: str | None, rest: str, text: str) -> NameAddr:
    gt = rest.find(">")
    if gt < 0:
        raise ParseError(f"unterminated <URI> in {clip(text)}")
    uri = parse_uri(rest[1:gt])
    tail = rest[gt + 1 :].strip()
    if not tail:
        return NameAddr(uri, display)
    if tail[0] != ";":
        raise ParseError(f"junk after <URI> in {clip(text)}")
    return NameAddr(uri, display, parse_params(tail[1:]))


def _addr_spec_form(s: str, text: str) -> NameAddr:
    # §20.10: without <>, everything after the first ';' is a header parameter, and the URI
    # may not contain ',', '?' or ';' (regbadct: an escaped header needs the brackets).
    uri_text, semi, param_text = s.partition(";")
    uri_text = uri_text.rstrip()
    if "?" in uri_text or "," in uri_text:
        raise ParseError(f"URI with '?' or ',' must be enclosed in <> in {clip(text)}")
    uri = parse_uri(uri_text)
    return NameAddr(uri, None, parse_params(param_text) if semi else ())


@dataclass(frozen=True, slots=True)
class Via:
    """One via-parm: ``SIP/2.0/transport sent-by *( SEMI via-params )`` (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via value (LWS allowed around '/', ':' and ';' as in RFC 4475 wsinv)."""
        name, sep1, rest = text.partition("/")
        version, sep2, rest = rest.partition("/")
        if not (sep1 and sep2) or name.strip().upper() != "SIP" or version.strip() != "2.0":
            raise ParseError(f"Via must start with SIP/2.0/transport: {clip(text)}")
        words = rest.split(None, 1)
        if len(words) != 2 or not TOKEN_RE.fullmatch(words[0]):
            raise ParseError(f"Via without transport and sent-by: {clip(text)}")
        sent_by, semi, param_text = words[1].partition(";")
        host, port = parse_hostport(sent_by.strip())
        params = parse_params(param_text) if semi else ()
        found, rport = find_param(params, "rport")
        if found and rport is not None:
            parse_port(rport)
        return cls(words[0].upper(), host, port, params)

    @property
    def branch(self) -> str | None:
        """The transaction identifier (RFC 3261 §17.2.3), None when absent."""
        return find_param(self.params, "branch")[1]

    @property
    def received(self) -> str | None:
        """The ``received`` address, without IPv6 brackets whether or not they were sent."""
        value = find_param(self.params, "received")[1]
        if value is not None and value.startswith("[") and value.endswith("]"):
            return value[1:-1]
        return value

    @property
    def rport(self) -> int | bool | None:
        """RFC 3581: True when present without a value, the port when filled, None if absent."""
        found, value = find_param(self.params, "rport")
        if not found:
            return None
        return True if value is None else int(value)

    def with_params(self, **values: str | None) -> Via:
        """A copy with the given parameters replaced in place or appended (None = no value)."""
        return Via(self.transport, self.host, self.port, _replace_params(self.params, values))

    def with_received(self, host: str, port: int) -> Via:
        """Stamp the source address as a server transport must (§18.2.1, RFC 3581 §4).

        ``received`` is added when the sent-by host differs from the packet's source, and
        always when ``rport`` is present (which is then filled with the source port).
        """
        values: dict[str, str | None] = {}
        if self.rport is not None:
            values["rport"] = str(port)
            values["received"] = host
        elif self.host.lower() != host.lower():
            values["received"] = host
        return self.with_params(**values) if values else self

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host, port) as written in the sent-by."""
        return self.host, self.port

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        params = format_params(self.params)
        return f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{params}"


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: 1*DIGIT LWS Method`` (RFC 3261 §20.16), sequence below 2**31 (§8.1.1.5)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse a CSeq value; leading zeros are allowed (RFC 4475 wsinv: ``0009``)."""
        words = text.split()
        if len(words) != 2 or not TOKEN_RE.fullmatch(words[1]):
            raise ParseError(f"invalid CSeq {clip(text)}")
        digits = words[0]
        if not (digits.isascii() and digits.isdigit()):
            raise ParseError(f"invalid CSeq number {clip(digits)}")
        # Compare the digit string before int(): a hostile 10,000-digit number stays cheap.
        stripped = digits.lstrip("0") or "0"
        if len(stripped) > 10 or int(stripped) > _CSEQ_MAX:
            raise ParseError(f"CSeq number {digits} exceeds 2**31-1")
        return cls(int(stripped), words[1])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


@dataclass(frozen=True, slots=True)
class _Failed:
    """A cached view that did not parse."""

    error: ParseError


class Headers:
    """An ordered multi-map of header lines with canonical names and case-insensitive lookup.

    One entry per header line as received (a line may hold a comma list); ``get_all`` splits
    list-valued headers into their elements.
    """

    __slots__ = ("_cache", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        self._cache: dict[str, Any] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str, str]]) -> Headers:
        """Wrap already-canonical (key, name, value) triples from the parser without copying."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._cache = {}
        return headers

    def get(self, name: str) -> str | None:
        """The first value (the first list element for list headers), or None."""
        key = canonical_name(name)[0]
        for k, _, value in self._items:
            if k == key:
                return split_list(value)[0] if key in LIST_KEYS else value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value in order; comma lists of list headers are split into elements."""
        key = canonical_name(name)[0]
        values = [v for k, _, v in self._items if k == key]
        if key not in LIST_KEYS:
            return values
        return [element for value in values for element in split_list(value)]

    def lines(self, name: str) -> list[str]:
        """The raw value of every line with this name (lists not split)."""
        key = canonical_name(name)[0]
        return [v for k, _, v in self._items if k == key]

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        if "\r" in value or "\n" in value:
            raise ValueError(f"header value for {name} contains CR or LF")
        key, canonical = canonical_name(name)
        self._items.append((key, canonical, value))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace every line of this header by one line (at the first one's position)."""
        key, canonical = canonical_name(name)
        if "\r" in value or "\n" in value:
            raise ValueError(f"header value for {name} contains CR or LF")
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (key, canonical, value)
                self._items[i + 1 :] = [t for t in self._items[i + 1 :] if t[0] != key]
                self._cache.clear()
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Remove every line of this header (no error when absent)."""
        key = canonical_name(name)[0]
        self._items = [t for t in self._items if t[0] != key]
        self._cache.clear()

    def count(self, name: str) -> int:
        """Number of lines carrying this header."""
        key = canonical_name(name)[0]
        return sum(1 for k, _, _ in self._items if k == key)

    def cached(self, key: str, build: Callable[[], _T]) -> _T:
        """Memoise a parsed view of these headers until the next mutation.

        A view that failed to parse is remembered too: asking again re-raises the same
        ParseError instead of parsing the same hostile text a second time.
        """
        cache = self._cache
        if key in cache:
            value = cache[key]
            if isinstance(value, _Failed):
                raise value.error
            return value  # type: ignore[no-any-return]
        try:
            value = cache[key] = build()
        except ParseError as exc:
            cache[key] = _Failed(exc)
            raise
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)[0]
        return key in [t[0] for t in self._items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers._trusted(list(self._items))

    def serialize(self, body_length: int) -> list[str]:
        """``Name: value`` lines with Content-Length forced to ``body_length`` (added if absent)."""
        out: list[str] = []
        have_length = False
        for key, name, value in self._items:
            if key == "content-length":
                if not have_length:
                    out.append(f"Content-Length: {body_length}")
                    have_length = True
                continue
            out.append(f"{name}: {value}")
        if not have_length:
            out.append(f"Content-Length: {body_length}")
        return out
