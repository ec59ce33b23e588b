"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966; RFC 5118 IPv6 references).

Theory of operation: a URI is split with ``str`` methods at its fixed delimiters (``:`` after
the scheme, the first ``@`` ending the userinfo, ``;`` before parameters, ``?`` before headers)
and every piece is checked against a precompiled pattern of its ABNF character set. Nothing is
unescaped on parse: the text is kept exactly as written so ``str(SipUri.parse(t)) == t`` for a
canonically written ``t``; ``user_unescaped`` gives the %HEX-decoded user for comparisons
(RFC 3261 §19.1.4 compares unescaped userinfo, so ``%41`` equals ``A`` there but the wire text
keeps ``%41``).

Userinfo may itself contain ``;``, ``?`` and ``,`` (user-unreserved), which is why the ``@`` is
located first: none of the parts after the host may contain an unescaped ``@``. IPv6 references
are bracketed on the wire and stored without brackets; the RFC 3261 ABNF bug (three colons,
RFC 5118 §4.10) is tolerated because the host check only looks at the character set.

Strangers write these URIs, so every check runs in time linear in the text: the character-set
patterns use possessive repeats (``*+``, ``++``: nothing to backtrack into), the IPv6 check is a
``str.strip`` over its character set, a URI carries at most ``sip.limits.MAX_PARAMS``
parameters and headers, and error messages quote only the start of the text (``clip``).

Any scheme other than sip/sips/tel becomes an :class:`AbsoluteUri` (RFC 3261 §19.1.6): legal in
a Request-URI or To header, answered 416 by a UAS that cannot route it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from sip.errors import ParseError, clip
from sip.limits import MAX_PARAMS

_ESC = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]++|{_ESC})++")
_PASSWORD_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]++|{_ESC})*+")
_PARAM_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++|{_ESC})++")
_HNAME_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]++|{_ESC})++")
_HVALUE_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]++|{_ESC})*+")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*+")
_IPV6_CHARS = "0123456789abcdefABCDEF:."
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*+")
_OPAQUE_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,\[\]]++|{_ESC})++")
_TEL_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]++")
_PORT_MAX = 65535

Params = tuple[tuple[str, str | None], ...]


def _bad(what: str, text: str) -> ParseError:
    return ParseError(f"invalid {what} in URI {clip(text)}", 400, "Bad Request URI")


def parse_port(text: str) -> int:
    """A ``port`` (1*DIGIT), limited to 0..65535 so it can be used as a socket port."""
    if not (0 < len(text) <= 5 and text.isascii() and text.isdigit()):
        raise ParseError(f"invalid port {clip(text)}")
    port = int(text)
    if port > _PORT_MAX:
        raise ParseError(f"port {port} out of range")
    return port


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4 or bracketed IPv6 reference); return it unbracketed."""
    if text.startswith("["):
        inner = text[1:-1]
        if not text.endswith("]") or ":" not in inner or inner.strip(_IPV6_CHARS):
            raise ParseError(f"invalid IPv6 reference {clip(text)}")
        return inner
    if not _HOSTNAME_RE.fullmatch(text):
        raise ParseError(f"invalid host {clip(text)}")
    return text


def parse_hostport(text: str) -> tuple[str, int | None]:
    """``hostport = host [ ":" port ]`` with the IPv6 host returned without brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference {clip(text)}")
        host = parse_host(text[: end + 1])
        tail = text[end + 1 :]
        if not tail:
            return host, None
        if tail[0] != ":":
            raise ParseError(f"junk after IPv6 reference in {clip(text)}")
        return host, parse_port(tail[1:])
    name, sep, port_text = text.partition(":")
    host = parse_host(name)
    return host, (parse_port(port_text) if sep else None)


def format_host(host: str) -> str:
    """Bracket an IPv6 address for the wire (RFC 3261 §19.1.1 IPv6reference)."""
    return f"[{host}]" if ":" in host else host


def _split_bounded(text: str, sep: str, whole: str) -> list[str]:
    """``text.split(sep)`` refused past ``MAX_PARAMS`` items (before any item is checked)."""
    if text.count(sep) >= MAX_PARAMS:
        raise ParseError(f"more than {MAX_PARAMS} parameters in URI {clip(whole)}")
    return text.split(sep)


def _parse_uri_params(text: str, whole: str) -> Params:
    params: list[tuple[str, str | None]] = []
    for item in _split_bounded(text, ";", whole):
        name, sep, value = item.partition("=")
        if not _PARAM_RE.fullmatch(name) or (sep and not _PARAM_RE.fullmatch(value)):
            raise _bad("parameter", whole)
        params.append((name, value if sep else None))
    return tuple(params)


def _parse_uri_headers(text: str, whole: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for item in _split_bounded(text, "&", whole):
        name, sep, value = item.partition("=")
        if not sep or not _HNAME_RE.fullmatch(name) or not _HVALUE_RE.fullmatch(value):
            raise _bad("header", whole)
        headers.append((name, value))
    return tuple(headers)


def format_params(params: Params) -> str:
    """``;name=value`` / ``;name`` for each parameter, in order."""
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def find_param(params: Params, name: str) -> tuple[bool, str | None]:
    """(present, value) for a case-insensitive parameter name (RFC 3261 §7.3.1)."""
    lname = name.lower()
    for pname, value in params:
        if pname.lower() == lname:
            return True, value
    return False, None


@dataclass(frozen=True, slots=True)
class SipUri:
    """A sip:, sips: or tel: URI with its text kept as written (escapes not decoded)."""

    scheme: str
    user: str | None
    host: str
    port: int | None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP/SIPS/tel URI; ParseError(400) for any other scheme or bad syntax."""
        scheme, sep, rest = text.partition(":")
        lscheme = scheme.lower()
        if not sep or lscheme not in ("sip", "sips", "tel"):
            raise _bad("scheme", text)
        if lscheme == "tel":
            return _parse_tel(rest, text)
        return _parse_sip(lscheme, rest, text)

    def param(self, name: str) -> str | None:
        """A URI parameter's value ("" when valueless, None when absent)."""
        present, value = find_param(self.params, name)
        if not present:
            return None
        return "" if value is None else value

    def has_param(self, name: str) -> bool:
        """Whether the parameter is present (case-insensitive name)."""
        return find_param(self.params, name)[0]

    @property
    def user_unescaped(self) -> str | None:
        """The user with %HEX escapes decoded (bytes that are not UTF-8 kept as surrogates)."""
        if self.user is None:
            return None
        return unquote(self.user, errors="surrogateescape")

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{format_params(self.params)}"
        userinfo = ""
        if self.user is not None:
            password = "" if self.password is None else f":{self.password}"
            userinfo = f"{self.user}{password}@"
        port = "" if self.port is None else f":{self.port}"
        headers = ""
        if self.headers:
            headers = "?" + "&".join(f"{n}={v}" for n, v in self.headers)
        params = format_params(self.params)
        return f"{self.scheme}:{userinfo}{format_host(self.host)}{port}{params}{headers}"


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        user, sep, pw = rest[:at].partition(":")
        if not _USER_RE.fullmatch(user) or not _PASSWORD_RE.fullmatch(pw):
            raise _bad("userinfo", text)
        password = pw if sep else None
        rest = rest[at + 1 :]
    hostpart, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = hostpart.partition(";")
    try:
        host, port = parse_hostport(hostport)
    except ParseError as exc:
        raise ParseError(f"{exc} in URI {clip(text)}", 400, "Bad Request URI") from exc
    params = _parse_uri_params(param_text, text) if semi else ()
    headers = _parse_uri_headers(header_text, text) if qmark else ()
    return SipUri(scheme, user, host, port, params, headers, password)


def _parse_tel(rest: str, text: str) -> SipUri:
    number, semi, param_text = rest.partition(";")
    if not _TEL_RE.fullmatch(number):
        raise _bad("telephone-subscriber", text)
    params = _parse_uri_params(param_text, text) if semi else ()
    return SipUri("tel", number, "", None, params)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of any other scheme, kept opaque (RFC 3261 §25.1 absoluteURI)."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse a Request-URI or a URI inside a name-addr: SipUri for sip/sips/tel, else opaque."""
    scheme, sep, rest = text.partition(":")
    lscheme = scheme.lower()
    if sep and lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest, text)
    if not sep or not _SCHEME_RE.fullmatch(scheme):
        raise _bad("scheme", text)
    if lscheme == "tel":
        return _parse_tel(rest, text)
    if not _OPAQUE_RE.fullmatch(rest):
        raise _bad("absolute URI", text)
    return AbsoluteUri(scheme, rest)
