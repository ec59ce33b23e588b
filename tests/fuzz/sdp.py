"""Fuzz target ``sdp``: SDP bodies through ``sip.sdp`` and ``sip.offer_answer``.

What it drives
--------------
The input is one SDP body.  ``SessionDescription.parse`` documents ``SdpError`` (a
``ParseError``).  What parses is then

* serialised and parsed again: ``parse`` and ``bytes()`` are inverse on canonical input
  (``sip/sdp.py``), so ``parse(bytes(sd))`` must succeed and give ``sd`` back;
* answered as an offer, as the runtime answers an INVITE: ``answer_offer`` against a fixed
  local capability (``LOCAL``, both codec orders), which documents ``NegotiationError`` (488);
  our answer must itself parse, and ``accept_answer(offer, answer)`` — our own RFC 3264 §7
  check — must accept it;
* read as the peer's answer to our offer (``build_offer`` → ``accept_answer``), as when we dial
  out or re-INVITE; ``NegotiationError`` or ``ParseError`` is the documented refusal.

Seeds: the ``tests/sip/vectors_sdp`` files and the SDP bodies of the SIP torture messages.
"""

from __future__ import annotations

from collections.abc import Iterator

from sip.errors import NegotiationError, ParseError
from sip.offer_answer import accept_answer, answer_offer, build_offer
from sip.sdp import SessionDescription
from tests.fuzz.common import InvariantError, own_seeds, sdp_bodies

LOCAL = ("192.0.2.1", 40_000)
CODEC_ORDERS = (("PCMU", "PCMA"), ("PCMA", "PCMU"))
OUR_OFFER = build_offer(*LOCAL, session_id=7, session_version=7)


def one_input(data: bytes) -> None:
    try:
        sd = SessionDescription.parse(data)
    except ParseError:
        return
    _round_trip(sd)
    for codecs in CODEC_ORDERS:
        _answer(sd, codecs)
    try:
        accept_answer(OUR_OFFER, sd)
    except (NegotiationError, ParseError):
        return


def _round_trip(sd: SessionDescription) -> None:
    canonical = bytes(sd)
    try:
        again = SessionDescription.parse(canonical)
    except ParseError as err:
        raise InvariantError("sdp-reparse", f"bytes() of a parsed SDP fails: {err}") from err
    if again != sd:
        raise InvariantError("sdp-round-trip", f"parse(bytes(sd)) != sd for {canonical[:200]!r}")


def _answer(offer: SessionDescription, codecs: tuple[str, ...]) -> None:
    try:
        answer, _ = answer_offer(
            offer, *LOCAL, session_id=1, session_version=1, codecs=codecs, prefer_local=True
        )
    except NegotiationError:
        return
    data = bytes(answer)
    try:
        SessionDescription.parse(data)
    except ParseError as err:
        raise InvariantError("answer-unparseable", f"our answer {data[:200]!r}: {err}") from err
    try:
        accept_answer(offer, answer)
    except (NegotiationError, ParseError) as err:
        raise InvariantError("answer-refused", f"our own §7 check refuses it: {err}") from err


def seeds() -> Iterator[bytes]:
    yield from sdp_bodies()
    yield bytes(OUR_OFFER)
    yield from own_seeds("sdp")
