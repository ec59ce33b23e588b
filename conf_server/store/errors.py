"""Exceptions of the store.

::

    StoreError
     ├── NotFoundError            the object an operation names does not exist
     ├── ConflictError            a uniqueness rule would break (phone number, meeting number,
     │    │                       login, PIN, DID group name)
     │    └── AccessCodeConflictError  an access code already reachable from a shared DID group
     ├── InvalidDataError         a value the model refuses (bad attribute, bad number, bad role);
     │                            also a ValueError
     └── ProvisionError           a provisioning file that cannot be applied; the message names
                                  the file, the key path (``rooms[1].keychain[0].code``) and why

The API layer maps NotFoundError → 404, ConflictError → 409, InvalidDataError → 400/422.
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base of every exception raised by ``conf_server.store``."""


class NotFoundError(StoreError):
    """The object an operation names does not exist."""


class ConflictError(StoreError):
    """The operation would break a uniqueness rule of the model."""


class InvalidDataError(StoreError, ValueError):
    """A value the model refuses."""


class ProvisionError(StoreError):
    """A provisioning file that cannot be applied: ``file: key: reason``."""

    def __init__(self, file: Path, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key or '(top level)'}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class AccessCodeConflictError(ConflictError):
    """An access code another room already holds in a DID group this room is reachable from."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
