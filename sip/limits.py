"""How much a peer may make the SIP core read: message, header and list bounds (RFC 3261 §21.5.14).

Theory of operation
-------------------
Every parser in ``sip/`` runs in time linear in its input (no pattern that can backtrack on what
a stranger sends, each header parsed at most once per message). Linear is not enough on its own:
a 64 KB datagram of one header still costs a pass over 64 KB in Python, and the SIP core shares
the interpreter with the media tick. So the input is bounded before it is parsed:

* ``max_message``: a UDP datagram or a framed TCP message larger than this is not parsed. It is
  answered ``513 Message Too Large`` (§21.5.14) when a Via, From, To, Call-ID and CSeq can be read
  from its first ``max_message`` octets, else dropped (``RequestDropped(reason="oversize")``).
  Default 16,384 octets, Kamailio's; a request with a large SDP body is well under 8 KB.
* ``max_headers`` header lines and ``max_header_line`` octets per (unfolded) line: beyond either
  the message is refused with 513 (it is the length of what we would have to process).
* ``max_request_uri`` octets of Request-URI: ``414 Request-URI Too Long`` (§21.4.12).
* ``max_vias`` Via values (all Via lines, comma lists split): 400. Default 70, the hops
  Max-Forwards allows (§8.1.1.6); RFC 4475 longreq carries 34.
* ``MAX_PARAMS`` parameters on one URI or one header value (``;name=value``) and ``MAX_LIST``
  elements in one comma-list header line: 400. These are module constants, used by
  ``sip.uri`` and ``sip.headers`` below any configuration.

The runtime sets ``max_message`` from ``[sip] max_message_size``; the others are fixed here and
listed in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT", "MAX_LIST", "MAX_PARAMS", "UDP_MAX", "Limits"]

UDP_MAX: Final = 65_535  # the largest UDP payload; no configured limit may exceed it
MAX_PARAMS: Final = 64  # parameters on one URI or one header value
MAX_LIST: Final = 128  # elements of one comma-list header line


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one SIP message may make the core parse."""

    max_message: int = 16_384
    max_headers: int = 256
    max_header_line: int = 8_192
    max_request_uri: int = 2_048
    max_vias: int = 70  # a request cannot pass more proxies than Max-Forwards allows (70, §8.1.1.6)

    def __post_init__(self) -> None:
        if not 1_024 <= self.max_message <= UDP_MAX:
            raise ValueError(f"max_message {self.max_message} must be within 1024..{UDP_MAX}")
        for name in ("max_headers", "max_header_line", "max_request_uri", "max_vias"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")


DEFAULT: Final = Limits()
