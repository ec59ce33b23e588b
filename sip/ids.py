"""Identifiers that must be unique: branches, tags, Call-IDs (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3).

Theory of operation: the core never draws randomness itself (DESIGN.md §2).  It is handed an
``IdFactory`` whose only duty is ``token(nbytes)``: a string of hex digits carrying ``nbytes``
of entropy.  The runtime passes ``SecretIds`` (``secrets.token_hex``: branches and tags must be
unguessable so that an off-path attacker cannot forge a CANCEL or BYE); tests pass
``SequentialIds``, which yields predictable, still unique tokens.  The helpers shape tokens
into the three identifiers: a branch carries the RFC 3261 magic cookie ``z9hG4bK`` (§8.1.1.7),
a tag has at least 32 bits of randomness (§19.3), a Call-ID is ``token@host`` (§8.1.1.4).
"""

from __future__ import annotations

import secrets
from typing import Protocol

MAGIC_COOKIE = "z9hG4bK"


class IdFactory(Protocol):
    """The injected source of randomness."""

    def token(self, nbytes: int) -> str:
        """A fresh lowercase-hex string of ``2 * nbytes`` characters."""
        ...


class SecretIds:
    """Production ids: cryptographically strong tokens."""

    def token(self, nbytes: int) -> str:
        return secrets.token_hex(nbytes)


class SequentialIds:
    """Deterministic ids for tests: a prefix and a counter, padded to the requested width."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._count = 0

    def token(self, nbytes: int) -> str:
        self._count += 1
        counter = f"{self._count:x}"
        # Keep the width promised by the protocol so header lengths look like production.
        width = max(2 * nbytes - len(self._prefix), len(counter))
        return self._prefix + counter.rjust(width, "0")


def branch(ids: IdFactory) -> str:
    """A new Via branch with the magic cookie (RFC 3261 §8.1.1.7)."""
    return MAGIC_COOKIE + ids.token(8)


def tag(ids: IdFactory) -> str:
    """A new From/To tag (RFC 3261 §19.3: at least 32 random bits)."""
    return ids.token(6)


def call_id(ids: IdFactory, host: str) -> str:
    """A new Call-ID, ``token@host`` (RFC 3261 §8.1.1.4)."""
    return f"{ids.token(12)}@{host}"
