"""What a UAS checks and how it answers (RFC 3261 §8.2, §11.2, §18.2.2; RFC 3581 §4; RFC 4475 §3.3).

Theory of operation: before a new request reaches the call logic the UAS core runs the §8.2
checks in the RFC's order and the first failure becomes the answer:

1. method (§8.2.1): unknown → 501, known but not ours (REGISTER, MESSAGE …) → 405, both with
   Allow;
2. Request-URI scheme (§8.2.2.1): anything but sip/sips/tel → 416;
3. (the endpoint checks the To tag against its dialogs here: 481, §8.2.2.2);
4. Require (§8.2.2.3): we support no extension, so any token → 420 with Unsupported listing
   them — never for ACK or CANCEL;
5. content (§8.2.3): an INVITE body that is not ``application/sdp`` → 415 with Accept; an
   INVITE whose Accept leaves out ``application/sdp`` → 406 (RFC 4475 sdp01).

Responses go back per §18.2.2 / RFC 3581: the server stamps the top Via with ``received``
when the source address differs from sent-by and fills ``rport`` when the client asked for
it; over UDP the answer goes to the packet's source when ``force_rport`` is set (Asterisk's
and Kamailio's practice, which survives NAT), else exactly as §18.2.2 says (maddr, then
received + rport or sent-by port, default 5060).  A broadcast, multicast or unspecified
destination is never used (RFC 4475 bcast).  Over TCP the answer goes back on the same
connection, which the runtime finds from the source address.

INFO with ``application/dtmf-relay`` (the de-facto Cisco format, ``Signal=5`` /
``Duration=160``) carries keypad digits; ``parse_dtmf_relay`` extracts them.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from sip.errors import ParseError
from sip.events import Address
from sip.headers import Via
from sip.message import KNOWN_METHODS, Request
from sip.timers import is_reliable
from sip.uac import ALLOW
from sip.uri import find_param

ALLOWED_METHODS = frozenset(m.strip() for m in ALLOW.split(","))
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})
SDP = "application/sdp"
DTMF_RELAY = "application/dtmf-relay"
DEFAULT_PORT = 5060
TLS_PORT = 5061
_DTMF_SIGNALS = {str(d): str(d) for d in range(10)} | {
    "*": "*",
    "#": "#",
    "10": "*",  # some phones send the RFC 4733 event number instead of the character
    "11": "#",
    **{c: c for c in "ABCD"},
}


@dataclass(frozen=True)
class Rejection:
    """The answer a failed check asks for."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


def _check_method(req: Request) -> Rejection | None:
    if req.method in ALLOWED_METHODS:
        return None
    status = 405 if req.method in KNOWN_METHODS else 501
    return Rejection(status, (("Allow", ALLOW),))


def _check_scheme(req: Request) -> Rejection | None:
    if req.uri.scheme.lower() in SUPPORTED_SCHEMES:
        return None
    return Rejection(416)


def _check_require(req: Request) -> Rejection | None:
    if req.method in ("ACK", "CANCEL"):
        return None
    tokens = [t.strip() for t in req.headers.get_all("Require") if t.strip()]
    if not tokens:
        return None
    return Rejection(420, (("Unsupported", ", ".join(tokens)),))


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _check_content_type(req: Request) -> Rejection | None:
    if req.method != "INVITE" or not req.body:
        return None
    content_type = req.content_type
    if content_type is not None and _media_type(content_type) == SDP:
        return None
    return Rejection(415, (("Accept", SDP),))


def _accepts_sdp(values: list[str]) -> bool:
    types = {_media_type(v) for v in values if v.strip()}
    # An empty Accept means "no body at all" (§20.1), which also excludes our SDP answer.
    return bool(types & {SDP, "application/*", "*/*"})


def _check_accept(req: Request) -> Rejection | None:
    if req.method != "INVITE" or "Accept" not in req.headers:
        return None
    if _accepts_sdp(req.headers.get_all("Accept")):
        return None
    return Rejection(406, (("Accept", SDP), ("Warning", '399 conf-server "Only application/sdp"')))


Check = Callable[[Request], Rejection | None]
BEFORE_DIALOG_CHECKS: tuple[Check, ...] = (_check_method, _check_scheme)
AFTER_DIALOG_CHECKS: tuple[Check, ...] = (_check_require, _check_content_type, _check_accept)


def run_checks(req: Request, checks: tuple[Check, ...]) -> Rejection | None:
    """The first failing check's rejection, or None when the request passes them all.

    A header a check reads may fail to parse (an unterminated quote in ``Require``): that is
    the request's fault, answered with the error's status (400), never raised to the caller.
    """
    for check in checks:
        try:
            rejection = check(req)
        except ParseError as exc:
            return Rejection(exc.status)
        if rejection is not None:
            return rejection
    return None


def capability_headers() -> tuple[tuple[str, str], ...]:
    """What OPTIONS answers (§11.2): methods, body types and extensions (none)."""
    return (("Allow", ALLOW), ("Accept", SDP), ("Supported", ""))


def stamp_via(req: Request, source: Address) -> Via:
    """§18.2.1 / RFC 3581 §4: add received/rport to the top Via of ``req`` in place."""
    vias = req.vias
    stamped = vias[0].with_received(source[0], source[1])
    if stamped is not vias[0]:
        req.headers.remove("Via")
        for via in (stamped, *vias[1:]):
            req.headers.add("Via", str(via))
    return stamped


def _default_port(via: Via) -> int:
    return TLS_PORT if via.transport == "TLS" else DEFAULT_PORT


def response_destination(
    via: Via, source: Address, transport: str, *, force_rport: bool
) -> Address | None:
    """Where a response goes (§18.2.2, RFC 3581 §4); None when it must not be sent."""
    if is_reliable(transport) or force_rport:
        return source
    maddr = find_param(via.params, "maddr")[1]
    if maddr:
        dest: Address = (maddr, via.port or _default_port(via))
    else:
        rport = via.rport
        host = via.received or via.host
        port = rport if isinstance(rport, int) and not isinstance(rport, bool) else None
        dest = (host, port or via.port or _default_port(via))
    return dest if sendable(dest[0]) else None


@functools.lru_cache(maxsize=4096)
def sendable(host: str) -> bool:
    """False for broadcast, multicast and unspecified addresses; names are left to the runtime."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (ip.is_multicast or ip.is_unspecified)


def parse_dtmf_relay(body: bytes) -> tuple[str, int]:
    """``Signal=5\r\nDuration=160`` → ("5", 160); ParseError when there is no valid Signal."""
    fields: dict[str, str] = {}
    for line in body.decode("ascii", "replace").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal")
    if signal is None:
        raise ParseError("dtmf-relay body has no Signal line")
    digit = _DTMF_SIGNALS.get(signal.upper())
    if digit is None:
        raise ParseError(f"dtmf-relay Signal {signal[:10]!r} is not a DTMF key")
    duration = fields.get("duration", "")
    # 250 ms is the format's customary default; absurd values are clamped, never trusted.
    ms = int(duration) if duration.isdigit() and len(duration) <= 6 else 250
    return digit, min(ms, 60_000)


def is_dtmf_relay(req: Request) -> bool:
    content_type = req.content_type
    return content_type is not None and _media_type(content_type) == DTMF_RELAY
