"""Digest authentication for SIP: RFC 2617 §3, RFC 7616 §3.4 hashing, RFC 8760, RFC 3261 §22.

Theory of operation
-------------------
Both sides compute ``response = H(HA1:nonce:nc:cnonce:qop:HA2)`` with ``HA1 = H(user:realm:
password)`` (``-sess`` variants hash again with the nonce and cnonce), ``HA2 = H(method:uri)``
(``auth-int`` adds ``H(body)``); ``H`` is MD5 or SHA-256 (RFC 8760). Without ``qop`` the RFC 2069
form ``H(HA1:nonce:HA2)`` is used, for old servers only.

Client: :meth:`Challenge.parse` reads one ``WWW-Authenticate``/``Proxy-Authenticate`` value
(quoted-string escapes, unknown parameters ignored, duplicates rejected); :func:`choose_challenge`
picks the strongest supported one when a server offers several (SHA-256 before MD5);
:func:`authorization` builds the credentials. The cnonce is passed in: no randomness here.

Server: :class:`DigestServer` needs no nonce table to issue challenges. A nonce is
``base64url(created || HMAC-SHA256(secret, realm || created)[:16])``: the server recognises its
own nonces and their age from the nonce alone. :meth:`DigestServer.verify` checks realm,
algorithm, qop, the uri against the Request-URI, then the response (``hmac.compare_digest``);
a correct response with an expired or foreign nonce is ``STALE`` (RFC 2617 §3.2.1: re-challenge
with ``stale=true``, the client retries without asking its user). The nonce-count is tracked
per nonce to refuse replays; the table is bounded, and a nonce evicted from it (or created
before an evicted one and never seen) is answered ``STALE`` so a replay can never slip through.
Passwords never appear in exception messages or reasons.

Hostile input
-------------
The SIP layer decodes with ``surrogateescape``: a non-UTF-8 octet arrives as a lone surrogate
U+DC80..U+DCFF. Hashing encodes the same way, so the digest covers the octets the peer sent,
as the peer's own digest does; a surrogate that stands for no octet cannot be hashed and is
refused (``AuthError``, a ``DENIED`` verdict in ``verify``), as is every other malformed
header: nothing a peer sends raises anything else. Headers are capped at ``MAX_HEADER_CHARS``,
the regexes use possessive quantifiers and the quoted-string scanner is one pass, so parsing is
linear in the header's length.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sip.errors import AuthError, clip

MAX_HEADER_CHARS = 8192
_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,  # RFC 2617 mandates MD5; RFC 8760 keeps it for interoperability
    "SHA-256": hashlib.sha256,
}
# Canonical spellings (RFC 8760 §2.1), strongest first: the order choose_challenge prefers.
ALGORITHMS = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")
_CANONICAL = {name.upper(): name for name in ALGORITHMS}
_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
# Possessive quantifiers: a token never ends in a space or '=', so giving characters back could
# never help a match; without it a failed match would retry every shorter token.
_SCHEME = re.compile(rf"\s*+({_TCHAR}++)(?:\s++|\Z)")
_NAME = re.compile(rf"\s*+({_TCHAR}++)\s*+=\s*+")
_TOKEN_VALUE = re.compile(rf"{_TCHAR}++")
_SEPARATOR = re.compile(r"\s*+(,|\Z)")
_NC = re.compile(r"[0-9a-fA-F]{8}")
_NONCE_MAC_BYTES = 16


def canonical_algorithm(name: str) -> str:
    """The RFC 8760 spelling of ``name`` (matching is case-insensitive); unknown names unchanged."""
    return _CANONICAL.get(name.upper(), name)


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)``, what a registrar may store instead of the password.

    Raises ``AuthError`` for an unknown algorithm or a lone surrogate that stands for no octet.
    """
    return _h(algorithm, f"{username}:{realm}:{password}")


def _h(algorithm: str, data: str | bytes) -> str:
    base = canonical_algorithm(algorithm).removesuffix("-sess")
    hasher = _HASHES.get(base)
    if hasher is None:
        raise AuthError(f"unsupported digest algorithm {clip(algorithm)}")
    return hasher(_octets(data) if isinstance(data, str) else data).hexdigest()


def _octets(text: str) -> bytes:
    """The octets ``text`` was decoded from (UTF-8 with ``surrogateescape``, as the SIP layer)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # the message must not quote the text: it may hold a password
        raise AuthError("digest input holds a lone surrogate that stands for no octet") from None


def _session_ha1(algorithm: str, stored: str, nonce: str, cnonce: str) -> str:
    if canonical_algorithm(algorithm).endswith("-sess"):
        return _h(algorithm, f"{stored}:{nonce}:{cnonce}")
    return stored


def _response(
    algorithm: str, ha1_value: str, nonce: str, *, nc: str, cnonce: str, qop: str | None,
    method: str, uri: str, body: bytes,
) -> str:  # fmt: skip
    if qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}")
    else:
        ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1_value}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1_value}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ----------------------------------------------------------------- header syntax


def _parse_header(value: str) -> dict[str, str]:
    """``Digest name=value, name="quoted", ...`` → lower-cased names → values."""
    if len(value) > MAX_HEADER_CHARS:
        raise AuthError(f"authentication header of {len(value)} characters is too long")
    scheme = _SCHEME.match(value)
    if scheme is None:
        raise AuthError("authentication header does not start with a scheme token")
    if scheme.group(1).lower() != "digest":
        raise AuthError(f"authentication scheme {clip(scheme.group(1))} is not Digest")
    params: dict[str, str] = {}
    pos, end = scheme.end(), len(value.rstrip())
    while pos < end:
        name = _NAME.match(value, pos)
        if name is None:
            raise AuthError(f"expected name=value at offset {pos}")
        key = name.group(1).lower()
        item, pos = _param_value(value, name.end())
        if key in params:
            raise AuthError(f"parameter {clip(key)} appears twice")
        params[key] = item
        separator = _SEPARATOR.match(value, pos)
        if separator is None:
            raise AuthError(f"expected ',' after parameter {clip(key)}")
        pos = separator.end()
        if separator.group(1) == "," and pos >= end:
            raise AuthError("trailing ',' after the last parameter")
    return params


def _param_value(value: str, pos: int) -> tuple[str, int]:
    if not value.startswith('"', pos):
        token = _TOKEN_VALUE.match(value, pos)
        if token is None:
            raise AuthError(f"expected a token or quoted-string at offset {pos}")
        return token.group(0), token.end()
    chars: list[str] = []
    pos += 1
    while pos < len(value):
        char = value[pos]
        if char == '"':
            return "".join(chars), pos + 1
        if char == "\\":  # quoted-pair (RFC 3261 §25.1): the next character stands for itself
            pos += 1
            if pos == len(value):
                break
            char = value[pos]
        chars.append(char)
        pos += 1
    raise AuthError("unterminated quoted-string")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----------------------------------------------------------------- client side


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` digest challenge (RFC 2617 §3.2.1)."""

    scheme: str
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        params = _parse_header(value)
        for required in ("realm", "nonce"):
            if required not in params:
                raise AuthError(f"digest challenge without {required}")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            "Digest", params["realm"], params["nonce"],
            canonical_algorithm(params.get("algorithm", "MD5")), qop, params.get("opaque"),
            params.get("stale", "false").lower() == "true",
        )  # fmt: skip

    @property
    def supported(self) -> bool:
        qop_ok = not self.qop or bool({"auth", "auth-int"} & set(self.qop))
        return self.algorithm in ALGORITHMS and qop_ok

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return f"{self.scheme} {', '.join(parts)}"


def choose_challenge(values: Sequence[str]) -> Challenge:
    """The strongest supported digest challenge among ``values`` (RFC 8760 §2.4)."""
    usable: list[Challenge] = []
    problems: list[str] = []
    for value in values:
        try:
            challenge = Challenge.parse(value)
        except AuthError as exc:  # another challenge in the list may still be usable
            problems.append(str(exc))
            continue
        if challenge.supported:
            usable.append(challenge)
        else:
            problems.append(f"unsupported algorithm {challenge.algorithm} or qop {challenge.qop}")
    if not usable:
        raise AuthError(f"no usable digest challenge: {'; '.join(problems) or 'none given'}")
    return min(usable, key=lambda c: ALGORITHMS.index(c.algorithm))


def authorization(
    ch: Challenge, *, method: str, uri: str, username: str, password: str, cnonce: str, nc: int,
    body: bytes = b"",
) -> str:  # fmt: skip
    """The ``Authorization``/``Proxy-Authorization`` value answering ``ch`` (RFC 2617 §3.2.2).

    Raises ``AuthError`` when ``ch`` cannot be answered or a value cannot be hashed.
    """
    if not ch.supported:
        raise AuthError(f"cannot answer algorithm {ch.algorithm} with qop {ch.qop}")
    qop = next((q for q in ("auth", "auth-int") if q in ch.qop), None)
    if not 0 < nc <= 0xFFFFFFFF:
        raise AuthError(f"nonce-count {nc} outside 1..0xffffffff")
    if not cnonce and (qop or ch.algorithm.endswith("-sess")):
        raise AuthError("a cnonce is required with qop or a -sess algorithm")
    nc_text = f"{nc:08x}"
    key = _session_ha1(
        ch.algorithm, ha1(ch.algorithm, username, ch.realm, password), ch.nonce, cnonce
    )
    response = _response(
        ch.algorithm,
        key,
        ch.nonce,
        nc=nc_text,
        cnonce=cnonce,
        qop=qop,
        method=method,
        uri=uri,
        body=body,
    )
    parts = [
        f"username={_quote(username)}", f"realm={_quote(ch.realm)}", f"nonce={_quote(ch.nonce)}",
        f"uri={_quote(uri)}", f'response="{response}"', f"algorithm={ch.algorithm}",
    ]  # fmt: skip
    if qop is not None or ch.algorithm.endswith("-sess"):
        parts.append(f"cnonce={_quote(cnonce)}")
    if ch.opaque is not None:
        parts.append(f"opaque={_quote(ch.opaque)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}"]
    return f"Digest {', '.join(parts)}"


# ----------------------------------------------------------------- server side


class Verdict(enum.Enum):
    """What the registrar or UAS does with a request after :meth:`DigestServer.verify`."""

    OK = "ok"
    STALE = "stale"  # right password, nonce expired or not ours: re-challenge with stale=true
    DENIED = "denied"  # answer 401/407 with a fresh challenge (or 403 after repeated failures)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict, a reason for the log (never a secret) and the claimed username."""

    verdict: Verdict
    reason: str = ""
    username: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    @property
    def stale(self) -> bool:
        return self.verdict is Verdict.STALE


@dataclass(frozen=True, slots=True)
class _Credentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str | None
    nc: str
    cnonce: str

    @classmethod
    def parse(cls, value: str) -> _Credentials:
        p = _parse_header(value)
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            raise AuthError(f"credentials without {', '.join(missing)}")
        return cls(
            p["username"], p["realm"], p["nonce"], p["uri"], p["response"].lower(),
            canonical_algorithm(p.get("algorithm", "MD5")), p.get("qop"), p.get("nc", ""),
            p.get("cnonce", ""),
        )  # fmt: skip


class DigestServer:
    """Issues challenges and verifies credentials for one realm (RFC 2617 §3.2, RFC 8760)."""

    def __init__(
        self, realm: str, secret: bytes, *, algorithm: str = "SHA-256", nonce_ttl: float = 300.0,
        max_nonces: int = 10_000, stored_ha1: bool = False,
    ) -> None:  # fmt: skip
        """``stored_ha1``: the lookup returns ``ha1(algorithm, user, realm, password)``."""
        if canonical_algorithm(algorithm) not in ALGORITHMS:
            raise ValueError(f"digest algorithm must be one of {ALGORITHMS}")
        if len(secret) < 16 or nonce_ttl <= 0 or max_nonces < 1 or not realm:
            raise ValueError("need a realm, a secret of 16+ bytes, nonce_ttl > 0, max_nonces >= 1")
        try:
            _octets(realm)
        except AuthError as exc:
            raise ValueError(f"realm: {exc}") from None
        self.realm = realm
        self.algorithm = canonical_algorithm(algorithm)
        self._secret = secret
        self._ttl = nonce_ttl
        self._max = max_nonces
        self._stored_ha1 = stored_ha1
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # nonce → (created, nc)
        self._forgotten = float("-inf")  # newest creation time among evicted nonces

    def challenge(self, now: float, *, stale: bool = False) -> str:
        """A ``WWW-Authenticate``/``Proxy-Authenticate`` value with a fresh nonce."""
        nonce = self._make_nonce(now)
        return str(Challenge("Digest", self.realm, nonce, self.algorithm, ("auth",), None, stale))

    def verify(
        self, value: str, *, method: str, request_uri: str,
        lookup_ha1_or_password: Callable[[str], str | None], now: float,
    ) -> VerifyResult:  # fmt: skip
        """Check an ``Authorization``/``Proxy-Authorization`` value for a request.

        Any value gets a verdict: malformed or unhashable credentials are ``DENIED``.
        """
        try:
            creds = _Credentials.parse(value)
        except AuthError as exc:
            return VerifyResult(Verdict.DENIED, f"malformed credentials: {exc}")
        problem = self._field_problem(creds, request_uri)
        if problem:
            return VerifyResult(Verdict.DENIED, problem, creds.username)
        stored = lookup_ha1_or_password(creds.username)
        if stored is None:
            return VerifyResult(Verdict.DENIED, "unknown user", creds.username)
        try:
            expected = self._expected(creds, stored, method)
        except AuthError as exc:
            return VerifyResult(Verdict.DENIED, f"unusable credentials: {exc}", creds.username)
        # surrogatepass encodes any str, so odd octets in the response still compare in
        # constant time (and never match: the expected response is ASCII hex).
        given = creds.response.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected.encode("ascii"), given):
            return VerifyResult(Verdict.DENIED, "wrong response", creds.username)
        return self._count(creds, now)

    def _expected(self, creds: _Credentials, stored: str, method: str) -> str:
        """The response the client should have sent; ``AuthError`` when a value cannot be hashed."""
        if not self._stored_ha1:
            stored = ha1(self.algorithm, creds.username, self.realm, stored)
        key = _session_ha1(self.algorithm, stored, creds.nonce, creds.cnonce)
        return _response(
            self.algorithm, key, creds.nonce, nc=creds.nc, cnonce=creds.cnonce, qop=creds.qop,
            method=method, uri=creds.uri, body=b"",
        )  # fmt: skip

    def _field_problem(self, creds: _Credentials, request_uri: str) -> str | None:
        checks = (
            (creds.realm != self.realm, "wrong realm"),
            (
                creds.algorithm != self.algorithm,
                f"algorithm {creds.algorithm[:40]} was not offered",
            ),
            (creds.qop != "auth", "qop=auth is required"),
            (not _NC.fullmatch(creds.nc), "nc must be 8 hex digits"),
            (not creds.cnonce, "cnonce is missing"),
            (creds.uri != request_uri, "uri does not match the Request-URI"),
        )
        return next((reason for failed, reason in checks if failed), None)

    def _count(self, creds: _Credentials, now: float) -> VerifyResult:
        """Nonce freshness, then nonce-count replay (RFC 7616 §3.4: nc must increase)."""
        created = self._nonce_created(creds.nonce)
        if created is None:
            return VerifyResult(Verdict.STALE, "nonce not issued by this server", creds.username)
        if not 0.0 <= now - created <= self._ttl:
            return VerifyResult(Verdict.STALE, "nonce expired", creds.username)
        nc = int(creds.nc, 16)
        entry = self._counts.get(creds.nonce)
        if entry is None and created <= self._forgotten:
            return VerifyResult(Verdict.STALE, "nonce forgotten", creds.username)
        if entry is not None and nc <= entry[1]:
            return VerifyResult(Verdict.DENIED, "nonce-count replayed", creds.username)
        if entry is None:
            self._make_room(now)
        self._counts[creds.nonce] = (created, nc)
        return VerifyResult(Verdict.OK, "", creds.username)

    def _make_room(self, now: float) -> None:
        if len(self._counts) < self._max:
            return
        expired = [n for n, (created, _) in self._counts.items() if now - created > self._ttl]
        for nonce in expired:
            del self._counts[nonce]
        while len(self._counts) >= self._max:
            _, (created, _) = self._counts.popitem(last=False)
            self._forgotten = max(self._forgotten, created)

    def _make_nonce(self, now: float) -> str:
        stamp = struct.pack(">d", now)
        raw = stamp + self._mac(stamp)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _mac(self, stamp: bytes) -> bytes:
        message = _octets(self.realm) + b"\x00" + stamp
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]

    def _nonce_created(self, nonce: str) -> float | None:
        """The creation time encoded in one of our nonces, or None when it is not ours."""
        if len(nonce) != 32:  # 24 bytes of base64url without padding
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        stamp, mac = raw[:8], raw[8:]
        if len(raw) != 8 + _NONCE_MAC_BYTES or not hmac.compare_digest(mac, self._mac(stamp)):
            return None
        created: float = struct.unpack(">d", stamp)[0]
        return created
