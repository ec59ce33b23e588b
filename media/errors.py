"""Exceptions of the media core.

::

    MediaError
     ├── MediaParseError (also ValueError)   malformed RTP/RTCP/RFC 4733 bytes from a peer
     └── MediaConfigError (also ValueError)  impossible parameters (gain out of range, bad rate)

Peer bytes only ever raise ``MediaParseError``; the runtime counts and drops such packets.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base of every exception raised by the ``media`` package."""


class MediaParseError(MediaError, ValueError):
    """Malformed media bytes from a peer (RFC 3550 §5.1, §6; RFC 4733 §2.3)."""


class MediaConfigError(MediaError, ValueError):
    """A parameter outside its documented range."""
