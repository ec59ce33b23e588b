"""Subscriber password hashes (scrypt, RFC 7914)."""

from __future__ import annotations

import pytest

from conf_server.store.passwords import hash_password, verify_password


def test_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second  # a fresh salt each time
    assert first.startswith("scrypt$16384$8$1$")
    assert "s3cret" not in first
    assert verify_password("s3cret", first)
    assert verify_password("s3cret", second)
    assert not verify_password("s3cret!", first)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "md5$1$2$3$00$00",
        "scrypt$16384$8$1$zz$00",  # not hex
        "scrypt$16384$8$1$00$",  # empty hash
        "scrypt$1048576$8$1$00$00",  # a cost above ours: refused, never computed
        "scrypt$1000$8$1$00$00",  # n not a power of two: scrypt refuses
    ],
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not verify_password("anything", stored)
