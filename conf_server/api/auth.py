"""HTTP Basic authentication per subscriber, and the three roles.

Source: RFC 7617 (the Basic scheme: ``base64(login ":" password)``, UTF-8); CarrierX Conference
v1 Subscriber ``role`` (1 administrator, 2 operator, 3 regular user) and its 401/403 bodies.

Theory of operation
-------------------
Passwords are stored as salted scrypt hashes (``conf_server.store.passwords``); scrypt costs
tens of milliseconds of CPU by design, so it runs in a worker thread (the event loop also
carries SIP) and a successful check is remembered: the cache maps a login to a keyed SHA-256 of
the password (key random per process) and the stored hash it was checked against. A later
request with the same password compares digests in constant time; within ``FRESH`` seconds it
skips the store too. A changed password hash in the store, an update of the subscriber through
the API, or ``logout`` invalidates the entry. An unknown login still spends one scrypt, so
timing does not reveal which logins exist. Credentials are never logged.

Roles: an administrator may do everything; an operator has live control of every meeting and
reads every object; a regular user manages their own meeting rooms, files and subscriber
record, and controls the meetings of their own rooms.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from conf_server.api.errors import AuthenticationError, PermissionDeniedError
from conf_server.store import Store, SubscriberInfo, SubscriberSpec
from conf_server.store.passwords import hash_password, verify_password

ADMIN_LOGIN_ENV: Final = "CONF_SERVER_ADMIN_LOGIN"
ADMIN_PASSWORD_ENV: Final = "CONF_SERVER_ADMIN_PASSWORD"  # noqa: S105 (a variable's name)
_MAX_CREDENTIALS: Final = 1024
_CACHE_SIZE: Final = 4096
FRESH: Final = 2.0
"""Seconds a verified login is trusted without a store lookup (role/password changes made
outside the API take effect within this time; the API's own changes at once)."""


class SubscriberRole(IntEnum):
    ADMINISTRATOR = 1
    OPERATOR = 2
    USER = 3


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated subscriber of one request."""

    sid: str
    login: str
    role: SubscriberRole

    @property
    def admin(self) -> bool:
        return self.role is SubscriberRole.ADMINISTRATOR

    @property
    def live_operator(self) -> bool:
        """May control every live meeting (administrators and operators)."""
        return self.role in (SubscriberRole.ADMINISTRATOR, SubscriberRole.OPERATOR)

    def require_admin(self) -> None:
        if not self.admin:
            raise PermissionDeniedError

    def require_owner(self, owner_sid: str | None) -> None:
        """Regular users act only on what they own."""
        if not self.live_operator and owner_sid != self.sid:
            raise PermissionDeniedError

    def require_write(self, owner_sid: str | None) -> None:
        """Store writes: administrators anything, regular users their own, operators nothing."""
        if self.admin:
            return
        if self.role is SubscriberRole.OPERATOR or owner_sid != self.sid:
            raise PermissionDeniedError


def parse_basic(header: str | None) -> tuple[str, str]:
    """``Basic <base64>`` → (login, password); ``AuthenticationError`` when malformed."""
    if header is None or len(header) > _MAX_CREDENTIALS:
        raise AuthenticationError
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise AuthenticationError
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError from None
    login, sep, password = decoded.partition(":")
    if not sep or not login:
        raise AuthenticationError
    return login, password


class Authenticator:
    """Checks Basic credentials against the store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._key = secrets.token_bytes(32)
        # login → (digest, stored hash, principal, fresh until): a request within ``FRESH``
        # seconds of a check skips even the store lookup.
        self._verified: dict[str, tuple[bytes, str, Principal, float]] = {}
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    async def authenticate(self, header: str | None) -> Principal:
        login, password = parse_basic(header)
        digest = self._digest(password)
        cached = self._verified.get(login)
        if (
            cached is not None
            and cached[3] > time.monotonic()
            and hmac.compare_digest(cached[0], digest)
        ):
            return cached[2]
        found = await self._store.find_subscriber(login)
        stored = found.password_hash if found is not None else self._dummy_hash
        if (
            found is not None
            and cached is not None
            and cached[1] == stored
            and hmac.compare_digest(cached[0], digest)
        ):
            return self._remember(login, digest, found)
        ok = await asyncio.to_thread(verify_password, password, stored)
        if found is None or not ok:
            raise AuthenticationError
        return self._remember(login, digest, found)

    def _remember(self, login: str, digest: bytes, found: SubscriberInfo) -> Principal:
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()  # bounded: an attacker with many logins cannot grow it
        principal = _principal(found)
        entry = (digest, found.password_hash, principal, time.monotonic() + FRESH)
        self._verified[login] = entry
        return principal

    def forget(self, login: str) -> None:
        """``logout`` or a changed subscriber: the next request checks the store again."""
        self._verified.pop(login, None)


def _principal(info: SubscriberInfo) -> Principal:
    return Principal(info.sid, info.login, SubscriberRole(info.role))


async def ensure_admin(store: Store, login: str, password: str) -> SubscriberInfo:
    """The first administrator: created if ``login`` does not exist, else left as it is."""
    found = await store.find_subscriber(login)
    if found is not None:
        return found
    spec = SubscriberSpec(login=login, password=password, first_name="Administrator", role=1)
    return await store.create_subscriber(spec)
