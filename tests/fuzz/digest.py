"""Fuzz target ``digest``: digest authentication headers through ``sip.auth``.

What it drives
--------------
The input is decoded as the SIP layer decodes header text (UTF-8 with ``surrogateescape``, so any
octet survives) and split at NUL: ``value [NUL username [NUL uri [NUL password [NUL cnonce]]]]``.

``value`` is read both ways a peer can send it:

* as a ``WWW-Authenticate`` challenge (we dial out to a trunk that challenges):
  ``Challenge.parse`` and ``choose_challenge`` document ``AuthError``; a supported challenge must
  print and parse back to itself, and ``authorization`` must compute our answer to it;
* as an ``Authorization`` header (a peer answers our challenge): ``DigestServer.verify`` documents
  no error at all — malformed credentials are a ``DENIED`` verdict — for an SHA-256 and an MD5
  server whose user lookup knows every name, so the hashing is reached.

The other fields drive a round trip that must succeed: our server's challenge, parsed by our
client, answered with ``username``/``password`` for ``uri``, verified by the server, is ``OK``
(and the same credentials replayed are not).  Fields that are not valid Unicode are left out of
the round trip: they are local configuration on the client side.

Seeds: challenges and credentials from RFC 2617 §3.5, RFC 7616 §3.9.1, our own server, and the
``Authorization`` of RFC 4475 regaut01.
"""

from __future__ import annotations

from collections.abc import Iterator

from sip.auth import (
    MAX_HEADER_CHARS,
    Challenge,
    DigestServer,
    authorization,
    choose_challenge,
)
from sip.errors import AuthError
from tests.fuzz.common import NOW, InvariantError, own_seeds

REALM = "conf.example.com"
SECRET = b"fuzzing-secret-0123456789"
ALGORITHMS = ("SHA-256", "MD5")
REQUEST_URI = "sip:+15551230000@conf.example.com"
DEFAULTS = ("alice", REQUEST_URI, "s3cret", "0a4f113b")
OUR_CHALLENGE = 'Digest realm="example.com", nonce="n", qop="auth"'


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def one_input(data: bytes) -> None:
    value, *fields = _decode(data).split("\x00")
    _as_challenge(value)
    _as_credentials(value)
    padded = [*fields, *DEFAULTS[len(fields) :]][: len(DEFAULTS)]
    if all(_is_text(field) for field in padded):
        _round_trip(*padded)


def _as_challenge(value: str) -> None:
    try:
        choose_challenge([value, OUR_CHALLENGE])
        challenge = Challenge.parse(value)
    except AuthError:
        return
    if not challenge.supported:
        return
    text = str(challenge)
    try:
        again = Challenge.parse(text)
    except AuthError as err:
        raise InvariantError("challenge-reparse", f"str() of {challenge} fails: {err}") from err
    if again != challenge:
        raise InvariantError("challenge-round-trip", f"{again} != {challenge}")
    try:
        authorization(
            challenge, method="INVITE", uri=REQUEST_URI, username="conf", password="pw",
            cnonce="0a4f113b", nc=1,
        )  # fmt: skip
    except AuthError:
        return


def _as_credentials(value: str) -> None:
    for algorithm in ALGORITHMS:
        server = DigestServer(REALM, SECRET, algorithm=algorithm)
        server.verify(
            value, method="INVITE", request_uri=REQUEST_URI,
            lookup_ha1_or_password=lambda _user: "s3cret", now=NOW,
        )  # fmt: skip


def _round_trip(username: str, uri: str, password: str, cnonce: str) -> None:
    for algorithm in ALGORITHMS:
        server = DigestServer(REALM, SECRET, algorithm=algorithm)
        challenge = Challenge.parse(server.challenge(NOW))
        try:
            value = authorization(
                challenge, method="INVITE", uri=uri, username=username, password=password,
                cnonce=cnonce, nc=1,
            )  # fmt: skip
        except AuthError:  # documented: an empty cnonce with qop
            continue
        if len(value) > MAX_HEADER_CHARS:
            continue  # refused by design: a header that long is not parsed

        def lookup(name: str, username: str = username, password: str = password) -> str | None:
            return password if name == username else None

        first = server.verify(
            value, method="INVITE", request_uri=uri, lookup_ha1_or_password=lookup, now=NOW + 1
        )
        if not first.ok:
            raise InvariantError("digest-round-trip", f"{algorithm}: {first.reason}")
        replay = server.verify(
            value, method="INVITE", request_uri=uri, lookup_ha1_or_password=lookup, now=NOW + 2
        )
        if replay.ok:
            raise InvariantError("digest-replay-accepted", f"{algorithm}: {value[:200]}")


def seeds() -> Iterator[bytes]:
    rfc2617 = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    rfc7616 = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    yield rfc2617.encode()
    yield rfc7616.encode()
    yield b"NoOneKnowsThisScheme opaque-data=here"
    for algorithm in ALGORITHMS:
        server = DigestServer(REALM, SECRET, algorithm=algorithm)
        challenge = server.challenge(NOW)
        yield challenge.encode()
        value = authorization(
            Challenge.parse(challenge), method="INVITE", uri=REQUEST_URI, username="alice",
            password="s3cret", cnonce="0a4f113b", nc=1,
        )  # fmt: skip
        yield value.encode()
        yield "\x00".join((value, *DEFAULTS)).encode()
    yield "\x00".join(('Digest username="a\\"b"', 'bob "the" \\ builder', "sip:x@y")).encode()
    yield from own_seeds("digest")
