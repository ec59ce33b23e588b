"""Digest authentication: RFC 2617 / RFC 7616 golden vectors, client parsing, server verdicts."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.auth import (
    Challenge,
    DigestServer,
    Verdict,
    VerifyResult,
    authorization,
    choose_challenge,
    ha1,
)
from sip.errors import AuthError

# ------------------------------------------------------------------ golden vectors

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_section_3_5_example() -> None:
    ch = Challenge.parse(RFC2617_CHALLENGE)
    assert ch == Challenge(
        "Digest", "testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "MD5",
        ("auth", "auth-int"), "5ccc069c403ebaf9f0171e9517f40e41", False,
    )  # fmt: skip
    value = authorization(
        ch, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle Of Life",
        cnonce="0a4f113b", nc=1,
    )  # fmt: skip
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_example(algorithm: str, response: str) -> None:
    ch = Challenge.parse(RFC7616_CHALLENGE.format(alg=algorithm))
    value = authorization(
        ch, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle of Life",
        cnonce=RFC7616_CNONCE, nc=1,
    )  # fmt: skip
    assert f'response="{response}"' in value
    assert f"algorithm={algorithm}" in value
    assert 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' in value


# ------------------------------------------------------------------ challenge syntax


def test_challenge_parsing_handles_escapes_case_and_unknown_parameters() -> None:
    ch = Challenge.parse(
        'DIGEST  Realm="a \\"quoted\\" realm\\\\x" ,NONCE=abc123,algorithm=sha-256-SESS,'
        'domain="sip:example.com", qop=auth, stale=TRUE, charset=UTF-8'
    )
    assert ch.scheme == "Digest"
    assert ch.realm == 'a "quoted" realm\\x'
    assert ch.nonce == "abc123"
    assert ch.algorithm == "SHA-256-sess"
    assert ch.qop == ("auth",)
    assert ch.stale is True
    assert ch.opaque is None


def test_challenge_defaults_to_md5_without_qop() -> None:
    ch = Challenge.parse('Digest realm="r", nonce="n"')
    assert (ch.algorithm, ch.qop, ch.stale) == ("MD5", (), False)


_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20)


@given(
    st.builds(
        Challenge,
        st.just("Digest"),
        _text,
        _text.filter(bool),
        st.sampled_from(["MD5", "SHA-256", "SHA-256-sess"]),
        st.lists(st.sampled_from(["auth", "auth-int"]), unique=True).map(tuple),
        st.none() | _text,
        st.booleans(),
    )
)
def test_challenge_str_then_parse_is_identity(ch: Challenge) -> None:
    assert Challenge.parse(str(ch)) == ch


MALFORMED_CHALLENGES = [
    ("", "does not start with a scheme token"),
    ('Basic realm="r"', "scheme 'Basic' is not Digest"),
    ('Digest nonce="n"', "digest challenge without realm"),
    ('Digest realm="r"', "digest challenge without nonce"),
    ('Digest realm="r", realm="s", nonce="n"', "parameter 'realm' appears twice"),
    ('Digest realm="r, nonce=n', "unterminated quoted-string"),
    ('Digest realm="r, nonce="n"', "expected ',' after parameter 'realm'"),
    ('Digest realm="r\\', "unterminated quoted-string"),
    ('Digest realm="r", nonce="n",', "trailing ','"),
    ('Digest realm="r" nonce="n"', "expected ',' after parameter 'realm'"),
    ("Digest realm", "expected name=value at offset 7"),
    ('Digest realm=, nonce="n"', "expected a token or quoted-string at offset 13"),
    ("Digest realm=" + "x" * 9000, "too long"),
]


@pytest.mark.parametrize(("value", "message"), MALFORMED_CHALLENGES)
def test_malformed_challenges_name_the_problem(value: str, message: str) -> None:
    with pytest.raises(AuthError) as info:
        Challenge.parse(value)
    assert message in str(info.value)


@given(st.text(max_size=80))
def test_arbitrary_header_text_raises_only_auth_error(value: str) -> None:
    try:
        Challenge.parse(value)
    except AuthError:
        return


def test_choose_challenge_prefers_sha256_in_any_order() -> None:
    md5 = 'Digest realm="r", nonce="n1", qop="auth"'
    sha = 'Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256'
    assert choose_challenge([md5, sha]).nonce == "n2"
    assert choose_challenge([sha, md5]).nonce == "n2"


def test_choose_challenge_skips_unsupported_and_malformed() -> None:
    values = [
        'Digest realm="r", nonce="x", algorithm=SHA-512-256',
        'Basic realm="r"',
        'Digest realm="r", nonce="y", qop="auth-conf"',
        "Digest garbage",
        'Digest realm="r", nonce="z", algorithm=MD5-sess, qop="auth"',
    ]
    assert choose_challenge(values).nonce == "z"
    with pytest.raises(AuthError) as info:
        choose_challenge(values[:4])
    assert "no usable digest challenge" in str(info.value)
    assert "SHA-512-256" in str(info.value)
    assert "not Digest" in str(info.value)
    with pytest.raises(AuthError, match="none given"):
        choose_challenge([])


# ------------------------------------------------------------------ client credentials


def _params(value: str) -> dict[str, str]:
    return dict(
        item.split("=", 1) for item in value.removeprefix("Digest ").replace('"', "").split(", ")
    )


def test_rfc2069_form_without_qop_has_no_nc_or_cnonce() -> None:
    ch = Challenge.parse('Digest realm="r", nonce="n"')
    value = authorization(
        ch, method="INVITE", uri="sip:a@b", username="u", password="p", cnonce="c", nc=1
    )
    params = _params(value)
    assert "nc" not in params and "cnonce" not in params and "qop" not in params
    ha2 = hashlib.md5(b"INVITE:sip:a@b").hexdigest()
    assert (
        params["response"]
        == hashlib.md5(f"{ha1('MD5', 'u', 'r', 'p')}:n:{ha2}".encode()).hexdigest()
    )


def test_auth_int_hashes_the_body_when_it_is_the_only_qop() -> None:
    ch = Challenge.parse('Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256')
    with_body = authorization(
        ch, method="INVITE", uri="sip:a@b", username="u", password="p", cnonce="c", nc=2,
        body=b"v=0\r\n",
    )  # fmt: skip
    params = _params(with_body)
    assert params["qop"] == "auth-int" and params["nc"] == "00000002"
    sha = hashlib.sha256
    ha2 = sha(f"INVITE:sip:a@b:{sha(b'v=0' + bytes([13, 10])).hexdigest()}".encode()).hexdigest()
    expected = sha(f"{ha1('SHA-256', 'u', 'r', 'p')}:n:00000002:c:auth-int:{ha2}".encode())
    assert params["response"] == expected.hexdigest()


def test_sess_algorithm_rehashes_ha1_with_nonce_and_cnonce() -> None:
    ch = Challenge.parse('Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess')
    value = authorization(
        ch, method="BYE", uri="sip:x", username="u", password="p", cnonce="c", nc=1
    )
    md5 = hashlib.md5
    key = md5(f"{ha1('MD5', 'u', 'r', 'p')}:n:c".encode()).hexdigest()
    ha2 = md5(b"BYE:sip:x").hexdigest()
    assert _params(value)["response"] == md5(f"{key}:n:00000001:c:auth:{ha2}".encode()).hexdigest()


CLIENT_ERRORS: list[tuple[str, dict[str, object], str]] = [
    ('Digest realm="r", nonce="n", algorithm=SHA-512', {}, "cannot answer algorithm SHA-512"),
    ('Digest realm="r", nonce="n", qop="auth"', {"nc": 0}, "nonce-count 0 outside"),
    ('Digest realm="r", nonce="n", qop="auth"', {"nc": 2**32}, "outside 1..0xffffffff"),
    ('Digest realm="r", nonce="n", qop="auth"', {"cnonce": ""}, "a cnonce is required"),
]


@pytest.mark.parametrize(("challenge", "change", "message"), CLIENT_ERRORS)
def test_client_refusals_never_show_the_password(
    challenge: str, change: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"method": "INVITE", "uri": "sip:x", "username": "u", "nc": 1,
                               "password": "Hunter2-secret", "cnonce": "c", **change}  # fmt: skip
    with pytest.raises(AuthError) as info:
        authorization(Challenge.parse(challenge), **args)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "Hunter2-secret" not in str(info.value)


# ------------------------------------------------------------------ server

SECRET = b"server-secret-0123456789"
USERS = {"alice": "wonder land", "bob": "builder"}
PASSWORD_LOOKUP: Callable[[str], str | None] = USERS.get
URI = "sip:conf.example.com"


def _credentials(
    challenge: str, *, username: str = "alice", password: str = "wonder land", uri: str = URI,
    nc: int = 1, method: str = "REGISTER",
) -> str:  # fmt: skip
    return authorization(
        Challenge.parse(challenge), method=method, uri=uri, username=username, password=password,
        cnonce="0a4f113b", nc=nc,
    )  # fmt: skip


def _verify(server: DigestServer, value: str, now: float, uri: str = URI) -> VerifyResult:
    return server.verify(
        value, method="REGISTER", request_uri=uri, lookup_ha1_or_password=PASSWORD_LOOKUP, now=now
    )


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
def test_server_accepts_a_correct_client(algorithm: str) -> None:
    server = DigestServer("conf.example.com", SECRET, algorithm=algorithm)
    challenge = server.challenge(100.0)
    parsed = Challenge.parse(challenge)
    assert (parsed.realm, parsed.algorithm, parsed.qop) == (
        "conf.example.com",
        algorithm,
        ("auth",),
    )
    result = _verify(server, _credentials(challenge), now=101.0)
    assert result == VerifyResult(Verdict.OK, "", "alice")
    assert result.ok and not result.stale


def test_server_accepts_a_stored_ha1() -> None:
    server = DigestServer("conf.example.com", SECRET, stored_ha1=True)
    stored = {"alice": ha1("SHA-256", "alice", "conf.example.com", "wonder land")}
    value = _credentials(server.challenge(5.0))
    result = server.verify(value, method="REGISTER", request_uri=URI,
                           lookup_ha1_or_password=stored.get, now=6.0)  # fmt: skip
    assert result.ok


def test_nonces_differ_in_time_and_realm_and_carry_a_stale_flag() -> None:
    server = DigestServer("conf.example.com", SECRET)
    other = DigestServer("other.example.com", SECRET)
    nonces = {Challenge.parse(s.challenge(t)).nonce for s in (server, other) for t in (1.0, 2.0)}
    assert len(nonces) == 4
    assert Challenge.parse(server.challenge(1.0, stale=True)).stale


def test_wrong_password_is_denied_and_the_response_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    server = DigestServer("conf.example.com", SECRET)
    value = _credentials(server.challenge(1.0), password="wrong")
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert _verify(server, value, 2.0) == VerifyResult(Verdict.DENIED, "wrong response", "alice")
    assert len(calls[0][0]) == 64  # the SHA-256 response went through compare_digest


def _tamper(value: str, old: str, new: str) -> str:
    assert old in value
    return value.replace(old, new, 1)


REJECTIONS: list[tuple[str, Callable[[str, str], str], str]] = [
    ("unknown user", lambda ch, v: _credentials(ch, username="mallory"), "unknown user"),
    ("wrong realm", lambda ch, v: _tamper(v, 'realm="conf', 'realm="evil'), "wrong realm"),
    ("uri mismatch", lambda ch, v: _credentials(ch, uri="sip:other.example.com"),
     "uri does not match the Request-URI"),
    ("algorithm", lambda ch, v: _tamper(v, "algorithm=SHA-256", "algorithm=MD5"),
     "algorithm MD5 was not offered"),
    ("no qop", lambda ch, v: _tamper(v, ", qop=auth", ""), "qop=auth is required"),
    ("bad nc", lambda ch, v: _tamper(v, "nc=00000001", "nc=1"), "nc must be 8 hex digits"),
    ("no cnonce", lambda ch, v: _tamper(v, 'cnonce="0a4f113b"', 'cnonce=""'), "cnonce is missing"),
    ("tampered response", lambda ch, v: _tamper(v, 'response="', 'response="0'), "wrong response"),
    ("not digest", lambda ch, v: "Basic YWxpY2U6d29uZGVy", "malformed credentials: authentication"),
    ("missing fields", lambda ch, v: 'Digest username="alice"', "malformed credentials: "
     "credentials without realm, nonce, uri, response"),
    ("bad syntax", lambda ch, v: v + ",", "malformed credentials: trailing ','"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections_name_their_reason_but_never_the_password(
    case: str, make: Callable[[str, str], str], reason: str
) -> None:
    server = DigestServer("conf.example.com", SECRET)
    challenge = server.challenge(10.0)
    result = _verify(server, make(challenge, _credentials(challenge)), 11.0)
    assert result.verdict is Verdict.DENIED
    assert result.reason.startswith(reason)
    assert "wonder land" not in result.reason


def test_expired_nonce_with_a_right_password_is_stale() -> None:
    server = DigestServer("conf.example.com", SECRET, nonce_ttl=30.0)
    challenge = server.challenge(100.0)
    assert _verify(server, _credentials(challenge), 130.0).ok
    later = _verify(server, _credentials(challenge, nc=2), 130.5)
    assert later == VerifyResult(Verdict.STALE, "nonce expired", "alice")
    assert later.stale


def test_nonce_from_the_future_is_stale() -> None:
    server = DigestServer("conf.example.com", SECRET)
    assert _verify(server, _credentials(server.challenge(500.0)), 10.0).stale


def test_foreign_nonce_is_stale_only_with_a_right_password() -> None:
    server = DigestServer("conf.example.com", SECRET)
    foreign = DigestServer("conf.example.com", b"another-secret-0123456789").challenge(1.0)
    assert _verify(server, _credentials(foreign), 2.0) == VerifyResult(
        Verdict.STALE, "nonce not issued by this server", "alice"
    )
    made_up = 'Digest realm="conf.example.com", nonce="!!not-base64!!", algorithm=SHA-256, qop=auth'
    assert _verify(server, _credentials(made_up), 2.0).stale
    assert _verify(server, _credentials(foreign, password="guess"), 2.0).verdict is Verdict.DENIED


def test_nonce_count_must_increase() -> None:
    server = DigestServer("conf.example.com", SECRET)
    challenge = server.challenge(0.0)
    verdicts = [_verify(server, _credentials(challenge, nc=nc), 1.0) for nc in (1, 1, 3, 2, 4)]
    assert [v.verdict for v in verdicts] == [
        Verdict.OK, Verdict.DENIED, Verdict.OK, Verdict.DENIED, Verdict.OK,
    ]  # fmt: skip
    assert verdicts[1].reason == "nonce-count replayed"


def test_nonce_table_is_bounded_and_a_forgotten_nonce_is_stale() -> None:
    server = DigestServer("conf.example.com", SECRET, max_nonces=2)
    first, second, third = (server.challenge(t) for t in (1.0, 2.0, 3.0))
    for challenge in (first, second, third):
        assert _verify(server, _credentials(challenge), 4.0).ok
    # first was evicted to make room for third: its count is unknown, so force a new nonce
    assert _verify(server, _credentials(first, nc=2), 5.0) == VerifyResult(
        Verdict.STALE, "nonce forgotten", "alice"
    )
    # second and third are still tracked: a replay is caught, a fresh count passes
    assert _verify(server, _credentials(third, nc=1), 5.0).reason == "nonce-count replayed"
    assert _verify(server, _credentials(second, nc=2), 5.0).ok


def test_expired_nonces_are_dropped_before_live_ones_are_evicted() -> None:
    server = DigestServer("conf.example.com", SECRET, max_nonces=2, nonce_ttl=300.0)
    old, live = server.challenge(0.0), server.challenge(200.0)
    assert _verify(server, _credentials(old), 1.0).ok
    assert _verify(server, _credentials(live), 201.0).ok
    newest = server.challenge(400.0)
    assert _verify(server, _credentials(newest), 400.0).ok  # old (expired) made the room
    assert _verify(server, _credentials(live, nc=1), 401.0).reason == "nonce-count replayed"


@given(
    st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=12),
    st.text(min_size=0, max_size=16),
    st.sampled_from(["INVITE", "REGISTER", "SUBSCRIBE"]),
    st.integers(1, 2**32 - 1),
)
def test_any_user_and_password_round_trip_through_client_and_server(
    username: str, password: str, method: str, nc: int
) -> None:
    server = DigestServer('realm "q" \\', SECRET, algorithm="MD5")
    value = authorization(
        Challenge.parse(server.challenge(7.0)), method=method, uri="sip:x@y;transport=tcp",
        username=username, password=password, cnonce="c\"n", nc=nc,
    )  # fmt: skip
    result = server.verify(value, method=method, request_uri="sip:x@y;transport=tcp",
                           lookup_ha1_or_password={username: password}.get, now=8.0)  # fmt: skip
    assert result == VerifyResult(Verdict.OK, "", username)


@pytest.mark.parametrize(
    "kwargs",
    [{"algorithm": "SHA-512"}, {"nonce_ttl": 0.0}, {"max_nonces": 0}, {"secret": b"short"}],
)
def test_server_configuration_is_checked(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"realm": "r", "secret": SECRET, **kwargs}
    with pytest.raises(ValueError):
        DigestServer(**args)  # type: ignore[arg-type]
