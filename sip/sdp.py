"""SDP session descriptions (RFC 4566 §5): the description model, parser and serializer.

Theory of operation
-------------------
A description is a list of ``<type>=<value>`` lines in a fixed order (RFC 4566 §5): the session
level ``v o s i u e p c b t r z k a`` and then, for each ``m=`` line, ``m i c b k a``.
:meth:`SessionDescription.parse` reads the lines with one :class:`_Level` per section. Each line
type has a rank in its section; a line whose rank is below the previous line's is out of order,
and types that may appear once are counted. Every value is split with its field count and each
field is checked (numbers are ASCII digits in range, addresses are IP literals of the stated
address type, tokens use the RFC 4566 token alphabet), so malformed input raises
:class:`~sip.errors.SdpError` naming the line. Lines we do not interpret (``i u e p z k r``) are
kept verbatim, so ``bytes(SessionDescription.parse(x)) == x`` for canonical input (CRLF endings).

The model also reads what negotiation needs: the codecs of an ``m=`` line (``rtpmap`` or the
RFC 3551 §6 static table, plus ``fmtp``), the effective ``c=`` of a stream (RFC 4566 §5.7) and
its direction attribute (RFC 3264 §5.1). Negotiation itself (RFC 3264) lives in
:mod:`sip.offer_answer`, which imports this module.

Hostile input: a body is refused beyond ``MAX_SDP_BYTES``, ``MAX_SDP_LINES`` lines or
``MAX_MEDIA_SECTIONS`` ``m=`` sections, and every step is linear in its line (no regex that can
backtrack over its input more than once, no rebuilding of growing tuples per line), so any
body is parsed or refused in time linear in its size.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sip.errors import SdpError, clip

__all__ = [
    "MAX_MEDIA_SECTIONS", "MAX_SDP_BYTES", "MAX_SDP_LINES", "PCMA", "PCMU", "Attribute",
    "Bandwidth", "Codec", "Connection", "Direction", "MediaDescription", "Origin",
    "SessionDescription", "Timing",
]  # fmt: skip

MAX_SDP_BYTES = 65_536
# Far above any real offer (a few dozen lines, a handful of streams); a peer sending more only
# makes the answer (one m= line per offered one, RFC 3264 §6) and every later step cost more.
MAX_SDP_LINES = 1_000
MAX_MEDIA_SECTIONS = 64
_G711_RATE = 8000

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]++")
_PROTO = re.compile(r"[A-Za-z0-9_\-.]++(?:/[A-Za-z0-9_\-.]++)*+")
# RFC 4566 §5 line order; "r" shares the rank of "t" because it follows the t= it repeats.
_SESSION_RANK = {
    "v": 0, "o": 1, "s": 2, "i": 3, "u": 4, "e": 5, "p": 6, "c": 7, "b": 8, "t": 9, "r": 9,
    "z": 10, "k": 11, "a": 12,
}  # fmt: skip
_MEDIA_RANK = {"i": 1, "c": 2, "b": 3, "k": 4, "a": 5}
# RFC 1123 host name labels (no hyphen at either end); the top label starts with a letter, so
# "300.1.1.1" is no host name. Checked label by label (``_is_hostname``) with flat possessive
# patterns: one pattern over the whole name nests quantifiers, which is hard to prove linear.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]++(?<!-)")
_TOP_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9-]*+")
_DIGITS = re.compile(r"[0-9]{1,10}")
_ONCE = frozenset("vosiuczk")
_EXTRA = frozenset("iuepzk")
_ADDR_TYPES: dict[str, Callable[[str], ipaddress.IPv4Address | ipaddress.IPv6Address]] = {
    "IP4": ipaddress.IPv4Address,
    "IP6": ipaddress.IPv6Address,
}
# RFC 3551 §6 table 4: static audio payload types, usable without a=rtpmap.
_STATIC: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1), 5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1), 7: ("LPC", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1),
    10: ("L16", 44100, 2), 11: ("L16", 44100, 1), 12: ("QCELP", 8000, 1), 13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1), 15: ("G728", 8000, 1), 16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1), 18: ("G729", 8000, 1),
}  # fmt: skip


class Direction(enum.Enum):
    """Stream direction attributes (RFC 3264 §5.1), from the point of view of their sender."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        return _BY_FLAGS[(sends, receives)]

    def reverse(self) -> Direction:
        """The direction the other side states for the same stream (RFC 3264 §6.1)."""
        return Direction.of(sends=self.receives, receives=self.sends)


_DIRECTION_NAMES = frozenset(d.value for d in Direction)
_BY_FLAGS = {(d.sends, d.receives): d for d in Direction}


@dataclass(frozen=True, slots=True)
class Codec:
    """One RTP payload format of an ``m=`` line: ``rtpmap`` (or the static table) and ``fmtp``."""

    name: str
    payload_type: int
    clock_rate: int
    fmtp: str | None = None
    channels: int = 1


PCMU = Codec("PCMU", 0, _G711_RATE)
PCMA = Codec("PCMA", 8, _G711_RATE)


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``."""

    username: str
    session_id: int
    session_version: int
    address: str
    addr_type: str = "IP4"
    net_type: str = "IN"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.net_type} {self.addr_type} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=IN IP4|IP6 <address>[/ttl][/count]``; ``host`` is the address without suffixes."""

    address: str
    addr_type: str = "IP4"
    net_type: str = "IN"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The address as an IP of the stated type; None for a host name (RFC 4566 allows it)."""
        try:
            return _ADDR_TYPES[self.addr_type](self.host)
        except (KeyError, ValueError):
            return None

    @property
    def is_hold(self) -> bool:
        """RFC 2543 hold: the unspecified address means "send nothing here" (RFC 3264 §8.4)."""
        return self.ip is not None and self.ip.is_unspecified

    def __str__(self) -> str:
        return f"{self.net_type} {self.addr_type} {self.address}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (kbit/s for AS and CT)."""

    bw_type: str
    value: int

    def __str__(self) -> str:
        return f"{self.bw_type}:{self.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=<start> <stop>`` with its ``r=`` lines kept verbatim."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>`` (a property) or ``a=<name>:<value>``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True)
class MediaDescription:
    """One ``m=`` section with its media-level lines."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto

    def values(self, name: str) -> list[str]:
        return [a.value or "" for a in self.attributes if a.name == name]

    @property
    def direction(self) -> Direction | None:
        return _direction_of(self.attributes)

    def codecs(self) -> tuple[Codec, ...]:
        """Formats in ``m=`` order; a dynamic type without ``rtpmap`` is unusable: left out."""
        if not self.is_rtp:
            return ()
        maps = {m[0]: m[1:] for m in map(_parse_rtpmap, self.values("rtpmap"))}
        fmtps = {fmt: params for fmt, _, params in (v.partition(" ") for v in self.values("fmtp"))}
        found = []
        for fmt in self.formats:
            entry = maps.get(int(fmt)) or _STATIC.get(int(fmt))
            if entry is not None:
                found.append(Codec(entry[0], int(fmt), entry[1], fmtps.get(fmt), entry[2]))
        return tuple(found)

    def lines(self) -> list[str]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        ranked = [(_MEDIA_RANK[k], f"{k}={v}") for k, v in self.extra]
        if self.connection is not None:
            ranked.append((_MEDIA_RANK["c"], f"c={self.connection}"))
        ranked += [(_MEDIA_RANK["b"], f"b={b}") for b in self.bandwidths]
        ranked += [(_MEDIA_RANK["a"], f"a={a}") for a in self.attributes]
        head = f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"
        return [head, *(line for _, line in sorted(ranked, key=lambda r: r[0]))]


@dataclass(frozen=True)
class SessionDescription:
    """A whole SDP body; ``parse`` and ``bytes()`` are inverse on canonical input."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    times: tuple[Timing, ...] = (Timing(),)
    media: tuple[MediaDescription, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    bandwidths: tuple[Bandwidth, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        return _parse(data)

    def __bytes__(self) -> bytes:
        return "".join(f"{line}\r\n" for line in self.lines()).encode("utf-8")

    def lines(self) -> list[str]:
        ranked = [(0, "v=0"), (1, f"o={self.origin}"), (2, f"s={self.session_name}")]
        ranked += [(_SESSION_RANK[k], f"{k}={v}") for k, v in self.extra]
        if self.connection is not None:
            ranked.append((_SESSION_RANK["c"], f"c={self.connection}"))
        ranked += [(_SESSION_RANK["b"], f"b={b}") for b in self.bandwidths]
        for t in self.times:
            ranked.append((_SESSION_RANK["t"], f"t={t.start} {t.stop}"))
            ranked += [(_SESSION_RANK["r"], f"r={r}") for r in t.repeats]
        ranked += [(_SESSION_RANK["a"], f"a={a}") for a in self.attributes]
        lines = [line for _, line in sorted(ranked, key=lambda r: r[0])]
        for m in self.media:
            lines += m.lines()
        return lines

    def connection_for(self, index: int) -> Connection:
        """The media-level ``c=`` of stream ``index``, else the session's (RFC 4566 §5.7)."""
        found = self.media[index].connection or self.connection
        if found is None:
            raise SdpError(f"m= line {index + 1} has no c= line at media or session level")
        return found

    def direction_for(self, index: int) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1)."""
        return self.media[index].direction or _direction_of(self.attributes) or Direction.SENDRECV


# --------------------------------------------------------------------------- parsing


class _Level:
    """The lines of one section (session or one media description) while they are read."""

    def __init__(self, ranks: dict[str, int]) -> None:
        self.ranks = ranks
        self.rank = -1
        self.seen: set[str] = set()
        self.connection: Connection | None = None
        self.bandwidths: list[Bandwidth] = []
        self.attributes: list[Attribute] = []
        self.extra: list[tuple[str, str]] = []

    def admit(self, kind: str) -> None:
        rank = self.ranks.get(kind)
        if rank is None:
            raise SdpError(f"'{kind}=' is not allowed in this section")
        if rank < self.rank:
            raise SdpError(f"'{kind}=' is out of order (RFC 4566 §5 fixes the order)")
        if kind in _ONCE and kind in self.seen:
            raise SdpError(f"'{kind}=' may appear only once per section")
        self.rank = rank
        self.seen.add(kind)


class _Reader:
    """Feeds lines into the current section; ``_on_<type>`` handles one line type."""

    def __init__(self) -> None:
        self.session = self.level = _Level(_SESSION_RANK)
        self.origin: Origin | None = None
        self.name = ""
        self.times: list[tuple[int, int, list[str]]] = []  # t= start, stop, its r= lines
        self.media: list[tuple[MediaDescription, _Level]] = []

    def feed(self, line: str) -> None:
        if len(line) < 2 or line[1] != "=" or line[0] not in "vosiuepcbtrzkam":
            raise SdpError("expected '<type>=<value>' with a known type letter")
        if "\r" in line or "\x00" in line:
            raise SdpError("control character inside a line")
        kind, value = line[0], line[2:]
        if not self.session.seen and kind != "v":
            raise SdpError("SDP must start with v=")
        if kind == "m":
            if "t" not in self.session.seen:
                raise SdpError("m= before the required t= line")
            if len(self.media) >= MAX_MEDIA_SECTIONS:
                raise SdpError(f"more than {MAX_MEDIA_SECTIONS} m= sections")
            self.level = _Level(_MEDIA_RANK)
            self.media.append((_parse_m(value), self.level))
            return
        self.level.admit(kind)
        if kind in _EXTRA:
            self.level.extra.append((kind, value))
            return
        handler: Callable[[str], None] = getattr(self, f"_on_{kind}")
        handler(value)

    def _on_v(self, value: str) -> None:
        if value != "0":
            raise SdpError("only SDP version 0 exists")

    def _on_o(self, value: str) -> None:
        user, sid, version, net, addr_type, address = _fields(value, 6, "o=")
        _check_nettype(net, addr_type)
        self.origin = Origin(
            _token(user, "o= username"), _decimal(sid, "o= session id"),
            _decimal(version, "o= session version"), _unicast(address, addr_type, "o="),
            addr_type, net,
        )  # fmt: skip

    def _on_s(self, value: str) -> None:
        # RFC 4566 wants "s= " when there is no name; an empty s= is common and harmless.
        self.name = value

    def _on_t(self, value: str) -> None:
        start, stop = _fields(value, 2, "t=")
        self.times.append((_decimal(start, "t= start"), _decimal(stop, "t= stop"), []))

    def _on_r(self, value: str) -> None:
        if not self.times or not value:
            raise SdpError("r= must follow a t= line and have a value")
        self.times[-1][2].append(value)

    def _on_c(self, value: str) -> None:
        net, addr_type, address = _fields(value, 3, "c=")
        _check_nettype(net, addr_type)
        host, *suffixes = address.split("/")
        _unicast(host, addr_type, "c=")
        if len(suffixes) > 2 or not all(_DIGITS.fullmatch(s) for s in suffixes):
            raise SdpError("c= address suffix must be /<ttl>[/<count>]")
        self.level.connection = Connection(address, addr_type, net)

    def _on_b(self, value: str) -> None:
        kind, sep, amount = value.partition(":")
        if not sep:
            raise SdpError("b= needs '<bwtype>:<bandwidth>'")
        self.level.bandwidths.append(Bandwidth(_token(kind, "b= type"), _decimal(amount, "b=")))

    def _on_a(self, value: str) -> None:
        name, sep, rest = value.partition(":")
        attribute = Attribute(_token(name, "a= name"), rest if sep else None)
        check = _ATTRIBUTE_CHECKS.get(name)
        if check is not None:
            check(attribute)
        self.level.attributes.append(attribute)

    def finish(self) -> SessionDescription:
        for kind in "st":
            if kind not in self.session.seen:
                raise SdpError(f"the required {kind}= line is missing")
        if self.origin is None:
            raise SdpError("the required o= line is missing")
        media = []
        for index, (m, level) in enumerate(self.media, start=1):
            if level.connection is None and self.session.connection is None:
                raise SdpError(f"m= line {index} has no c= line at media or session level")
            _check_media_attributes(m, level.attributes, index)
            media.append(
                MediaDescription(
                    m.media, m.port, m.proto, m.formats, m.port_count, level.connection,
                    tuple(level.bandwidths), tuple(level.attributes), tuple(level.extra),
                )
            )  # fmt: skip
        _direction_of(self.session.attributes)
        s = self.session
        times = tuple(Timing(start, stop, tuple(repeats)) for start, stop, repeats in self.times)
        return SessionDescription(
            self.origin, self.name, s.connection, times,
            tuple(media), tuple(s.attributes), tuple(s.bandwidths), tuple(s.extra),
        )  # fmt: skip


def _parse(data: bytes) -> SessionDescription:
    if len(data) > MAX_SDP_BYTES:
        raise SdpError(f"SDP body of {len(data)} bytes exceeds {MAX_SDP_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError(f"SDP is not UTF-8 (byte {exc.start})") from None
    # RFC 4566 §5: records end in CRLF, but parsers should also accept a bare LF.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise SdpError("SDP body is empty")
    if len(lines) > MAX_SDP_LINES:
        raise SdpError(f"SDP body of {len(lines)} lines exceeds {MAX_SDP_LINES}")
    reader = _Reader()
    for lineno, line in enumerate(lines, start=1):
        try:
            reader.feed(line)
        except SdpError as exc:
            raise SdpError(f"SDP line {lineno}: {exc}: {clip(line)}") from None
    return reader.finish()


def _fields(value: str, count: int, what: str) -> list[str]:
    parts = value.split(" ")
    if len(parts) != count or not all(parts):
        raise SdpError(f"{what} needs {count} fields separated by single spaces")
    return parts


def _decimal(text: str, what: str, maximum: int = 2**64 - 1) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or int(text) > maximum:
        raise SdpError(f"{what} must be a decimal number up to {maximum}")
    return int(text)


def _token(text: str, what: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise SdpError(f"{what} is not a token")
    return text


def _unicast(address: str, addr_type: str, what: str) -> str:
    """An IP literal of the stated address type, or a host name (RFC 4566 §5.2, §5.7)."""
    try:
        _ADDR_TYPES[addr_type](address)
    except ValueError:
        if len(address) > 253 or not _is_hostname(address):
            raise SdpError(
                f"{what} address is neither an {addr_type} literal nor a host name"
            ) from None
    return address


def _is_hostname(text: str) -> bool:
    """An RFC 1123 host name (optionally ending in '.') whose top label starts with a letter."""
    *labels, top = text.removesuffix(".").split(".")
    return bool(_TOP_LABEL.fullmatch(top)) and all(_LABEL.fullmatch(label) for label in labels)


def _check_nettype(net: str, addr_type: str) -> None:
    if net != "IN":
        raise SdpError(f"network type {clip(net)} is not IN")
    if addr_type not in _ADDR_TYPES:
        raise SdpError(f"address type {clip(addr_type)} is not IP4 or IP6")


def _parse_m(value: str) -> MediaDescription:
    parts = value.split(" ")
    if len(parts) < 4 or not all(parts):
        raise SdpError("m= needs '<media> <port> <proto> <fmt> ...' separated by single spaces")
    media, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    port = _decimal(port_part, "m= port", 65535)
    count = _decimal(count_part, "m= port count", 65535) if slash else None
    if count == 0:
        raise SdpError("m= port count must be at least 1")
    _token(media, "m= media")
    if not _PROTO.fullmatch(proto):
        raise SdpError("m= proto is not a token list such as RTP/AVP")
    for fmt in formats:
        if "RTP/" in proto:
            _payload_type(fmt)
        else:
            _token(fmt, "m= format")
    return MediaDescription(media, port, proto, tuple(formats), count)


# ------------------------------------------------------------------ known attributes


def _payload_type(text: str) -> int:
    return _decimal(text, "RTP payload type", 127)


def _parse_rtpmap(value: str) -> tuple[int, str, int, int]:
    pt_text, sep, encoding = value.partition(" ")
    parts = encoding.split("/")
    if not sep or len(parts) not in (2, 3):
        raise SdpError("rtpmap needs '<payload type> <encoding>/<clock rate>[/<channels>]'")
    rate = _decimal(parts[1], "rtpmap clock rate", 2**32 - 1)
    channels = _decimal(parts[2], "rtpmap channels", 255) if len(parts) == 3 else 1
    if rate == 0 or channels == 0:
        raise SdpError("rtpmap clock rate and channels must be positive")
    return _payload_type(pt_text), _token(parts[0], "rtpmap encoding name"), rate, channels


def _check_fmtp(value: str) -> None:
    fmt, sep, params = value.partition(" ")
    if not sep or not params:
        raise SdpError("fmtp needs '<format> <parameters>'")
    _token(fmt, "fmtp format")


def _check_ptime(value: str) -> None:
    if _decimal(value, "ptime", 10_000) == 0:
        raise SdpError("ptime must be positive")


def _check_direction(attribute: Attribute) -> None:
    if attribute.value is not None:
        raise SdpError(f"{attribute.name} takes no value")


_ATTRIBUTE_CHECKS: dict[str, Callable[[Attribute], object]] = {
    "rtpmap": lambda a: _parse_rtpmap(a.value or ""),
    "fmtp": lambda a: _check_fmtp(a.value or ""),
    "ptime": lambda a: _check_ptime(a.value or ""),
    **{d.value: _check_direction for d in Direction},
}


def _check_media_attributes(m: MediaDescription, attributes: list[Attribute], index: int) -> None:
    _direction_of(attributes)
    if not m.is_rtp:
        return
    for name in ("rtpmap", "fmtp"):
        keys = [a.value.split(" ", 1)[0] for a in attributes if a.name == name and a.value]
        if len(keys) != len(set(keys)):
            raise SdpError(f"m= line {index} maps a payload type twice with a={name}")
        for key in keys:
            _payload_type(key)


def _direction_of(attributes: Iterable[Attribute]) -> Direction | None:
    found = [Direction(a.name) for a in attributes if a.name in _DIRECTION_NAMES]
    if len(found) > 1:
        raise SdpError("more than one direction attribute in one section")
    return found[0] if found else None
