"""Which number an INVITE dialled (RFC 3261 §8.2.2.1, RFC 3966 for tel URIs).

A trunk puts the dialled number in the Request-URI user part (``sip:+12125550100@host``, often
with user parameters such as ``;npdi`` after a ``;``) or sends a ``tel:`` URI. Some peers send a
Request-URI with no user (``sip:host``) and the number in To; then To decides. The number is
normalised to E.164 with the configured default region, so ``2125550100``, ``+1 212 555 0100``
and ``1-212-555-0100`` all name the same DID.
"""

from __future__ import annotations

from urllib.parse import unquote

from conf_server.domain.numbers import normalize
from sip.message import Request
from sip.uri import AbsoluteUri, SipUri


def dialled_user(request: Request) -> str | None:
    """The user part that names the DID: Request-URI user, else To's user, unescaped."""
    for uri in (request.uri, request.to.uri):
        if isinstance(uri, AbsoluteUri):
            continue
        user = _number_part(uri)
        if user:
            return user
    return None


def _number_part(uri: SipUri) -> str | None:
    if uri.user is None:
        return None
    # user-params (RFC 3261 §19.1.1 "user;par=…", RFC 4694 ";npdi;rn=") are not the number.
    return unquote(uri.user.split(";", 1)[0]) or None


def dialled_did(request: Request, default_region: str = "US") -> str | None:
    """The dialled number in E.164, or None when the request names no valid number."""
    user = dialled_user(request)
    return normalize(user, default_region) if user else None
