"""Password hashes of subscribers: scrypt (RFC 7914) with a per-password random salt.

Stored form: ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``, so the cost can rise later without
invalidating existing hashes (``verify`` reads the parameters from the hash). Comparison is
constant-time. The REST issue checks credentials with ``verify``; nothing stores a clear text.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_FIELDS = 6


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_BYTES)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed or empty hash never matches."""
    parts = stored.split("$")
    if len(parts) != _FIELDS or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        return False
    if not expected or n > _N or r > _R or p > _P:  # a forged hash must not stall the server
        return False
    try:
        key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected))
    except ValueError:  # n not a power of two, or other parameters scrypt refuses
        return False
    return hmac.compare_digest(key, expected)
