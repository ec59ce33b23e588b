"""Digest auth against hostile peers: odd octets, arbitrary text, huge headers (RFC 2617 §3).

The SIP layer decodes with 'surrogateescape', so a non-UTF-8 octet reaches this module as a lone
surrogate U+DC80..U+DCFF. Whatever a stranger sends, ``Challenge.parse`` raises only
``AuthError`` and ``DigestServer.verify`` returns a verdict; both take time linear in the input.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.auth import (
    MAX_HEADER_CHARS,
    Challenge,
    DigestServer,
    Verdict,
    VerifyResult,
    authorization,
)
from sip.errors import AuthError
from tests.timing import assert_linear, costs

SECRET = b"server-secret-0123456789"
REALM = "conf.example.com"
URI = "sip:conf.example.com"
ODD = "\udcff"  # the octet 0xFF after the SIP layer's surrogateescape decoding

# A non-UTF-8 octet as the SIP layer hands it over, any lone surrogate, any character, syntax.
_octet = st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b))
_hostile_char = (
    _octet | st.characters(categories=["Cs"]) | st.characters() | st.sampled_from('"\\,= \t')
)
_hostile_text = st.text(_hostile_char, max_size=30)
_odd_text = _hostile_text.filter(lambda t: any(0xD800 <= ord(c) <= 0xDFFF for c in t))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _any_password(_user: str) -> str:
    return "wonder land"


def _verify(
    server: DigestServer, value: str, *, uri: str = URI,
    lookup: Callable[[str], str | None] = _any_password,
) -> VerifyResult:  # fmt: skip
    return server.verify(
        value, method="REGISTER", request_uri=uri, lookup_ha1_or_password=lookup, now=2.0
    )


def _credentials(server: DigestServer, *, username: str = "alice", uri: str = URI) -> str:
    return authorization(
        Challenge.parse(server.challenge(1.0)), method="REGISTER", uri=uri, username=username,
        password="wonder land", cnonce="0a4f113b", nc=1,
    )  # fmt: skip


def _replace(value: str, changes: dict[str, str]) -> str:
    """``value`` (our client's output: no ", " inside its values) with some values replaced."""
    head, _, params = value.partition(" ")
    items = [item.split("=", 1) for item in params.split(", ")]
    assert set(changes) <= {key for key, _ in items}
    return f"{head} " + ", ".join(f"{k}={changes.get(k, v)}" for k, v in items)


# ------------------------------------------------------------------ arbitrary text


@given(_hostile_text | st.text(_hostile_char, max_size=200).map(lambda t: "Digest " + t))
def test_any_challenge_text_is_parsed_or_refused_with_auth_error(value: str) -> None:
    try:
        Challenge.parse(value)
    except AuthError:
        return


@given(
    st.fixed_dictionaries(
        {"realm": _hostile_text, "nonce": _hostile_text, "opaque": _hostile_text,
         "username": _hostile_text, "password": _hostile_text, "uri": _hostile_text},
    ),
    st.sampled_from(["MD5", "MD5-sess", "SHA-256", "sha-256-SESS"]),
)  # fmt: skip
def test_hostile_challenge_values_are_answered_or_refused_with_auth_error(
    v: dict[str, str], algorithm: str
) -> None:
    value = (
        f"Digest realm={_quote(v['realm'])}, nonce={_quote(v['nonce'])}, "
        f'opaque={_quote(v["opaque"])}, algorithm={algorithm}, qop="auth"'
    )
    challenge = Challenge.parse(value)
    assert (challenge.realm, challenge.nonce, challenge.opaque) == (
        v["realm"], v["nonce"], v["opaque"],
    )  # fmt: skip
    try:
        answer = authorization(
            challenge, method="INVITE", uri=v["uri"], username=v["username"],
            password=v["password"], cnonce="c", nc=1,
        )  # fmt: skip
    except AuthError as exc:  # the message is fixed: it cannot show the password
        assert str(exc) == "digest input holds a lone surrogate that stands for no octet"
        return
    assert answer.startswith("Digest ")


@given(_hostile_text | st.text(_hostile_char, max_size=200).map(lambda t: "Digest " + t))
def test_verify_answers_any_text_with_a_verdict(value: str) -> None:
    server = DigestServer(REALM, SECRET)
    result = _verify(server, value)
    assert result.verdict is Verdict.DENIED


PARAMETERS = ["username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "qop", "nc"]


@pytest.mark.parametrize("name", PARAMETERS)
@given(hostile=_odd_text)
def test_odd_octets_in_any_credential_parameter_are_denied(name: str, hostile: str) -> None:
    server = DigestServer(REALM, SECRET)
    value = _replace(_credentials(server), {name: _quote(hostile)})
    # The uri must match the Request-URI to reach the hash: give the server the same text.
    result = _verify(server, value, uri=hostile if name == "uri" else URI)
    assert result.verdict is Verdict.DENIED
    assert "wonder land" not in result.reason


@given(st.lists(st.sampled_from(PARAMETERS), min_size=1, unique=True), _odd_text)
def test_odd_octets_in_several_parameters_at_once_are_denied(names: list[str], odd: str) -> None:
    server = DigestServer(REALM, SECRET)
    value = _replace(_credentials(server), {name: _quote(odd) for name in names})
    assert _verify(server, value, uri=odd if "uri" in names else URI).verdict is Verdict.DENIED


@given(st.text(_octet | st.characters(codec="utf-8"), min_size=1, max_size=12))
def test_user_names_with_non_utf8_octets_register(username: str) -> None:
    """A phone whose user name is Latin-1 still registers: the hash covers the octets it sent."""
    server = DigestServer(REALM, SECRET)
    result = _verify(server, _credentials(server, username=username))
    assert result == VerifyResult(Verdict.OK, "", username)


# ------------------------------------------------------------------ regression vectors


def test_realm_with_a_non_utf8_octet_hashes_the_octet() -> None:
    """Found by fuzzing: realm "caf\\xe9" (Latin-1) raised UnicodeEncodeError in ``_h``."""
    challenge = Challenge.parse('Digest realm="caf\udce9", nonce="n"')
    value = authorization(
        challenge, method="INVITE", uri="sip:x", username="u", password="p", cnonce="c", nc=1
    )
    md5 = hashlib.md5
    ha1 = md5(b"u:caf\xe9:p").hexdigest()
    expected = md5(f"{ha1}:n:{md5(b'INVITE:sip:x').hexdigest()}".encode()).hexdigest()
    assert f'response="{expected}"' in value
    assert 'realm="caf\udce9"' in value  # the SIP layer writes the octet back as it came


def test_response_with_non_utf8_octets_is_denied_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by fuzzing: response="\\xff..." raised UnicodeEncodeError in ``verify``."""
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    server = DigestServer(REALM, SECRET)
    value = _replace(_credentials(server), {"response": _quote("\udcff" * 64)})
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert _verify(server, value) == VerifyResult(Verdict.DENIED, "wrong response", "alice")
    assert len(calls) == 1 and all(isinstance(side, bytes) for side in calls[0])
    assert calls[0][1] == "\udcff".encode("utf-8", "surrogatepass") * 64


def test_a_surrogate_that_stands_for_no_octet_is_refused_without_the_password() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n"')
    with pytest.raises(AuthError, match="lone surrogate") as info:
        authorization(challenge, method="INVITE", uri="sip:x", username="u",
                      password="se\ud800cret", cnonce="c", nc=1)  # fmt: skip
    assert "se\ud800cret" not in str(info.value)
    server = DigestServer(REALM, SECRET)
    value = _replace(_credentials(server), {"nonce": _quote("\ud800")})
    result = _verify(server, value)
    assert result == VerifyResult(
        Verdict.DENIED, "unusable credentials: digest input holds a lone surrogate that stands "
        "for no octet", "alice",
    )  # fmt: skip


def test_server_realm_must_be_encodable() -> None:
    with pytest.raises(ValueError, match="realm"):
        DigestServer("bad\ud800realm", SECRET)
    assert DigestServer("caf\udce9", SECRET).challenge(0.0).startswith('Digest realm="caf\udce9"')


# ------------------------------------------------------------------ time linear in the input


def _refused(value: str) -> Callable[[], object]:
    def call() -> object:
        try:
            return Challenge.parse(value)
        except AuthError as exc:
            return exc

    return call


def _verified(value: str) -> Callable[[], object]:
    server = DigestServer(REALM, SECRET)
    return lambda: _verify(server, value)


def _params(count: int, value: str) -> str:
    return "Digest " + ", ".join(f"p{i}={value}" for i in range(count))


def _huge_credentials(n: int) -> str:
    return (
        f'Digest username="{"u" * n}", realm="{REALM}", nonce="n", uri="{URI}", '
        'response="00", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"'
    )


SHAPES: list[tuple[str, Callable[[int], str]]] = [
    ("token run", lambda n: "Digest " + "a" * n),
    ("token run then junk", lambda n: "Digest " + "a" * n + "("),
    ("blank run", lambda n: "Digest " + " " * n + "("),
    ("scheme only", lambda n: "a" * n + "("),
    ("escapes", lambda n: 'Digest realm="' + "\\" * n),
    ("odd octets", lambda n: 'Digest realm="' + "\udcff" * n),
    ("many parameters", lambda n: _params(n // 8, "b")),
    ("many quoted parameters", lambda n: _params(n // 13, '"x\\""')),
    ("long values", lambda n: f'Digest realm="{"r" * n}", nonce="{ODD * 8}"'),
    ("long user name", _huge_credentials),
]


@pytest.mark.parametrize("make", [s for _, s in SHAPES], ids=[n for n, _ in SHAPES])
@pytest.mark.parametrize("wrap", [_refused, _verified], ids=["challenge", "verify"])
def test_hostile_headers_cost_time_linear_in_their_size(
    make: Callable[[int], str], wrap: Callable[[str], Callable[[], object]]
) -> None:
    huge = make(60_000)
    assert len(huge) > MAX_HEADER_CHARS
    assert costs(wrap(huge))[0] < 0.050
    # Below the size cap the header is really parsed: 4x the input may cost at most 8x the time.
    size = (MAX_HEADER_CHARS - 200) // 4  # room for the fixed parts of a shape
    quarter, full = make(size), make(4 * size)
    assert len(full) <= MAX_HEADER_CHARS
    assert_linear(wrap(quarter), wrap(full))
