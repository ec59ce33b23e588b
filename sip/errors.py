"""Exceptions of the SIP core.

::

    SipError
     ├── ParseError (also ValueError)      malformed peer input; .status is the answer (§21)
     │    └── SdpError                      malformed SDP body (RFC 4566); answered 400
     ├── NegotiationError                   no common codec (RFC 3264 §6); answered 488 + Warning
     ├── TransactionError                   misuse of a transaction by the core's user (a bug)
     ├── DialogError                        unknown dialog or illegal dialog operation
     └── AuthError                          digest challenge/credential problems (RFC 2617/8760)

Only ``ParseError`` and its children come from peer bytes; the others mean the caller of the
core did something the protocol does not allow.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every exception raised by the ``sip`` package."""


class ParseError(SipError, ValueError):
    """Peer input that does not follow the grammar or the rules of RFC 3261.

    ``status`` is the response a UAS should send (400, 413, 416, 420, 505 …) when the
    message is a request that can still be answered; ``reason`` the reason phrase to use.
    """

    def __init__(self, message: str, status: int = 400, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or message


class SdpError(ParseError):
    """A malformed SDP body (RFC 4566 §5)."""


class NegotiationError(SipError):
    """An offer with nothing in common with what we support (RFC 3264 §6): answer 488."""

    def __init__(
        self, message: str, warning: str = '304 conf-server "Media type not available"'
    ) -> None:
        super().__init__(message)
        self.status = 488
        self.warning = warning


class TransactionError(SipError):
    """A transaction used in a way RFC 3261 §17 forbids (by our own code, never by a peer)."""


class DialogError(SipError):
    """An unknown dialog, or an operation the dialog's state forbids (RFC 3261 §12)."""


class AuthError(SipError):
    """A digest authentication problem: unsupported algorithm, malformed challenge (RFC 8760)."""


def clip(text: str | bytes, limit: int = 60) -> str:
    """``repr`` of at most ``limit`` characters of peer text, for error messages and logs.

    Error messages quote what was wrong; a hostile 60 KB header must not become a 60 KB message
    (cost, log volume), so only its start is quoted, with the full length.
    """
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} chars)"
