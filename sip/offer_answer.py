"""SDP offer/answer for one audio stream (RFC 3264 §5 offers, §6 answers, §7 accepting, §8.4 hold).

Theory of operation
-------------------
This module works on the parsed model of :mod:`sip.sdp` and never sees bytes. The server is an
audio bridge, so of an offer it takes exactly one stream: the first ``audio`` line with proto
``RTP/AVP`` and a non-zero port. Every other stream is answered with port 0 and the offered
formats (RFC 3264 §6: the answer keeps one ``m=`` line per offered line, in order).

* Codec (RFC 3264 §6.1): PCMU or PCMA, with the offerer's payload type (static types 0 and 8
  need no ``rtpmap``, RFC 3551 §6), in the offerer's order unless the caller prefers its own.
  ``telephone-event/8000`` (RFC 4733 §7) keeps the offerer's payload type and ``fmtp``; without
  it DTMF is detected in band.
* Direction (RFC 3264 §6.1): the answer mirrors the offer (sendonly → recvonly …). A connection
  address of ``0.0.0.0`` (RFC 2543 hold, RFC 3264 §8.4) means we must not send, so it also
  counts as hold.
* Our own offers (RFC 3264 §5, dial-out and re-INVITE) list G.711 in the caller's order plus
  telephone-event; :func:`accept_answer` (RFC 3264 §7) checks that the answer has as many
  ``m=`` lines, kept our audio stream, picked a format we offered and a direction the offered
  one allows (``_ANSWERABLE``).

Anything unusable raises :class:`~sip.errors.NegotiationError` (488 with a Warning code, RFC 3261
§20.43); a local misconfiguration (unknown codec name, non-IP local address) is a ``ValueError``.
:class:`MediaParams` is what the runtime needs to run RTP for the leg.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sip.errors import NegotiationError
from sip.sdp import (
    PCMA,
    PCMU,
    Attribute,
    Codec,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
)

PTIME = 20
DTMF_PAYLOAD_TYPE = 101
DTMF_FMTP = "0-16"
TELEPHONE_EVENT = "telephone-event"
SUPPORTED_CODECS = ("PCMU", "PCMA")
_G711_RATE = PCMU.clock_rate  # 8000 Hz; telephone-event must run at the audio's clock rate

# RFC 3264 §6.1: what an answer may say for each offered direction.
_ANSWERABLE = {
    Direction.SENDRECV: frozenset(Direction),
    Direction.SENDONLY: frozenset({Direction.RECVONLY, Direction.INACTIVE}),
    Direction.RECVONLY: frozenset({Direction.SENDONLY, Direction.INACTIVE}),
    Direction.INACTIVE: frozenset({Direction.INACTIVE}),
}


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What the runtime needs to run RTP for one leg after offer/answer."""

    remote_addr: str  # where to send RTP; "0.0.0.0" when the peer holds us RFC 2543 style
    remote_port: int  # 0 = no audio
    codec: Codec  # PCMU or PCMA, with the payload type to send
    dtmf_payload_type: int | None  # telephone-event PT; None = use in-band detection
    ptime: int  # ms
    direction: Direction  # OUR direction
    on_hold: bool  # the peer put us on hold (sendonly/inactive/0.0.0.0)


def answer_offer(
    offer: SessionDescription,
    local_addr: str,
    local_port: int,
    *,
    session_id: int,
    session_version: int,
    codecs: Sequence[str] = SUPPORTED_CODECS,
    prefer_local: bool = False,
) -> tuple[SessionDescription, MediaParams]:
    """Answer ``offer`` as a UAS (RFC 3264 §6); raise :class:`NegotiationError` (488) if unusable.

    ``codecs`` is the allowed set; the offerer's order decides unless ``prefer_local`` is set,
    then the order of ``codecs`` does.
    """
    allowed = _allowed(codecs)
    index = _audio_index(offer)
    offered = offer.media[index].codecs()
    codec = _choose(offered, allowed, prefer_local)
    dtmf = next((c for c in offered if _is_dtmf(c)), None)
    remote = _remote(offer, index)
    theirs = offer.direction_for(index)
    ours = _our_direction(theirs, remote)
    formats = [codec] if dtmf is None else [codec, dtmf]
    answered = tuple(
        _audio_section(local_port, formats, ours) if i == index else _rejected(m)
        for i, m in enumerate(offer.media)
    )
    answer = _session(local_addr, session_id, session_version, answered)
    params = MediaParams(
        remote.host, offer.media[index].port, codec, dtmf.payload_type if dtmf else None,
        PTIME, ours, remote.is_hold or not theirs.receives,
    )  # fmt: skip
    return answer, params


def build_offer(
    local_addr: str,
    local_port: int,
    *,
    session_id: int,
    session_version: int,
    codecs: Sequence[str] = SUPPORTED_CODECS,
    direction: Direction = Direction.SENDRECV,
) -> SessionDescription:
    """An offer for dial-out and re-INVITE (RFC 3264 §5): G.711 in ``codecs`` order + DTMF."""
    by_name = {c.name: c for c in (PCMU, PCMA)}
    formats = [by_name[name] for name in _allowed(codecs)]
    formats.append(Codec(TELEPHONE_EVENT, DTMF_PAYLOAD_TYPE, _G711_RATE, DTMF_FMTP))
    media = (_audio_section(local_port, formats, direction),)
    return _session(local_addr, session_id, session_version, media)


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaParams:
    """Check the answer to our ``offer`` (RFC 3264 §6–§7) and return how to run RTP."""
    if len(answer.media) != len(offer.media):
        raise NegotiationError(
            f"answer has {len(answer.media)} m= lines for {len(offer.media)} offered",
            _warning(399, "answer does not match the offer"),
        )
    index = _audio_index(offer)
    ours, theirs = offer.media[index], answer.media[index]
    if theirs.port == 0 or (theirs.media, theirs.proto) != (ours.media, ours.proto):
        raise NegotiationError("the answer rejected our audio stream", _warning(304, "rejected"))
    offered = {c.name.upper() for c in ours.codecs()}
    usable = [c for c in theirs.codecs() if c.name.upper() in offered]
    codec = _choose(usable, _allowed(SUPPORTED_CODECS), prefer_local=False)
    offered_dtmf = any(_is_dtmf(c) for c in ours.codecs())
    dtmf = next((c for c in theirs.codecs() if _is_dtmf(c) and offered_dtmf), None)
    theirs_dir, offered_dir = answer.direction_for(index), offer.direction_for(index)
    if theirs_dir not in _ANSWERABLE[offered_dir]:
        raise NegotiationError(
            f"answer direction {theirs_dir.value} cannot answer {offered_dir.value}",
            _warning(399, "bad direction in answer"),
        )
    remote = _remote(answer, index)
    ours_dir = _our_direction(theirs_dir, remote)
    return MediaParams(
        remote.host, theirs.port, codec, dtmf.payload_type if dtmf else None, PTIME, ours_dir,
        remote.is_hold or not theirs_dir.receives,
    )  # fmt: skip


def _warning(code: int, text: str) -> str:
    return f'{code} conf-server "{text}"'


def _allowed(codecs: Sequence[str]) -> tuple[str, ...]:
    names = tuple(name.upper() for name in codecs)
    unknown = sorted(set(names) - set(SUPPORTED_CODECS))
    if unknown or not names:
        raise ValueError(f"codecs must be a non-empty choice of {SUPPORTED_CODECS}: {unknown}")
    return names


def _audio_index(offer: SessionDescription) -> int:
    for index, m in enumerate(offer.media):
        if m.media == "audio" and m.proto == "RTP/AVP" and m.port != 0:
            return index
    raise NegotiationError("no audio stream over RTP/AVP", _warning(304, "no RTP/AVP audio"))


def _remote(sdp: SessionDescription, index: int) -> Connection:
    """The stream's connection, usable only as a unicast IP literal (no DNS in the core)."""
    remote = sdp.connection_for(index)
    if remote.ip is None or remote.ip.is_multicast:
        raise NegotiationError(
            f"audio connection address {remote.address!r} is not a unicast IP literal",
            _warning(301, "Incompatible network address formats"),
        )
    return remote


def _is_dtmf(codec: Codec) -> bool:
    return codec.name.lower() == TELEPHONE_EVENT and codec.clock_rate == _G711_RATE


def _choose(offered: Sequence[Codec], allowed: Sequence[str], prefer_local: bool) -> Codec:
    usable = [
        Codec(c.name.upper(), c.payload_type, c.clock_rate)
        for c in offered
        if c.name.upper() in allowed and c.clock_rate == _G711_RATE and c.channels == 1
    ]
    if not usable:
        raise NegotiationError(
            f"no common codec: offered {[c.name for c in offered]}, we support {list(allowed)}",
            _warning(305, "Incompatible media format"),
        )
    if prefer_local:
        usable.sort(key=lambda c: allowed.index(c.name))
    return usable[0]


def _our_direction(theirs: Direction, remote: Connection) -> Direction:
    ours = theirs.reverse()
    # RFC 3264 §8.4: nothing, not even RTCP, may be sent to a 0.0.0.0 connection address.
    return Direction.of(sends=ours.sends and not remote.is_hold, receives=ours.receives)


def _audio_section(port: int, formats: Sequence[Codec], direction: Direction) -> MediaDescription:
    attributes = [Attribute("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}") for c in formats]
    attributes += [Attribute("fmtp", f"{c.payload_type} {c.fmtp}") for c in formats if c.fmtp]
    attributes += [Attribute("ptime", str(PTIME)), Attribute(direction.value)]
    pts = tuple(str(c.payload_type) for c in formats)
    return MediaDescription("audio", port, "RTP/AVP", pts, attributes=tuple(attributes))


def _rejected(m: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a declined stream keeps its m= line, with port 0 and the offered formats."""
    return MediaDescription(m.media, 0, m.proto, m.formats)


def _session(
    address: str, session_id: int, version: int, media: tuple[MediaDescription, ...]
) -> SessionDescription:
    try:
        addr_type = "IP4" if ipaddress.ip_address(address).version == 4 else "IP6"
    except ValueError:
        raise ValueError(f"local address {address!r} is not an IP literal") from None
    return SessionDescription(
        origin=Origin("conf-server", session_id, session_version=version, address=address,
                      addr_type=addr_type),
        session_name="conf-server",
        connection=Connection(address, addr_type),
        media=media,
    )  # fmt: skip
