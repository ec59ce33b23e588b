"""SDP offer/answer (RFC 3264 §5–§8) with golden answers, 488 warnings and end-to-end agreement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import NegotiationError
from sip.offer_answer import MediaParams, accept_answer, answer_offer, build_offer
from sip.sdp import Attribute, Codec, Connection, Direction, Origin, SessionDescription

ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(__file__).parent / "vectors_sdp"
OFFERS = sorted(VECTORS.glob("offer_*.sdp"))
LOCAL = ("203.0.113.10", 40000)


def _answer(
    offer: SessionDescription, codecs: Sequence[str] = ("PCMU", "PCMA"), prefer_local: bool = False
) -> tuple[SessionDescription, MediaParams]:
    return answer_offer(
        offer, *LOCAL, session_id=42, session_version=1, codecs=codecs, prefer_local=prefer_local
    )


def _sdp(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")


def _offer(*media_lines: str, head: tuple[str, ...] = HEAD) -> SessionDescription:
    return SessionDescription.parse(_sdp(*head, *media_lines))


# ------------------------------------------------------------------ golden vectors


@pytest.mark.parametrize("path", OFFERS, ids=lambda p: p.name)
def test_golden_answers(path: Path) -> None:
    answer, _ = _answer(SessionDescription.parse(path.read_bytes()))
    expected = (VECTORS / path.name.replace("offer_", "answer_")).read_bytes()
    assert bytes(answer) == expected


# ------------------------------------------------------------------ answering offers


@pytest.mark.parametrize(
    ("offered", "ours", "on_hold"),
    [
        ("sendrecv", Direction.SENDRECV, False),
        ("sendonly", Direction.RECVONLY, True),
        ("recvonly", Direction.SENDONLY, False),
        ("inactive", Direction.INACTIVE, True),
    ],
)
def test_answer_direction_mirrors_the_offer(offered: str, ours: Direction, on_hold: bool) -> None:
    for media_level in (True, False):
        lines = ["m=audio 1000 RTP/AVP 0", f"a={offered}"]
        head = HEAD if media_level else (*HEAD, f"a={offered}")
        answer, params = _answer(_offer(*(lines if media_level else lines[:1]), head=head))
        assert params.direction is ours
        assert params.on_hold is on_hold
        assert answer.direction_for(0) is ours
        assert answer.media[0].direction is ours  # stated at media level in the answer


@pytest.mark.parametrize(("offered", "ours"), [("sendrecv", "recvonly"), ("recvonly", "inactive")])
def test_rfc2543_hold_address_means_we_do_not_send(offered: str, ours: str) -> None:
    head = (*HEAD[:3], "c=IN IP4 0.0.0.0", "t=0 0")
    answer, params = _answer(_offer("m=audio 1000 RTP/AVP 8", f"a={offered}", head=head))
    assert params.on_hold
    assert params.remote_addr == "0.0.0.0"
    assert params.direction is Direction(ours)
    assert answer.media[0].direction is Direction(ours)


def test_codec_follows_offerer_order_unless_we_prefer_ours() -> None:
    offer = _offer("m=audio 1000 RTP/AVP 8 0")
    assert _answer(offer)[1].codec.name == "PCMA"
    assert _answer(offer, codecs=("PCMU", "PCMA"), prefer_local=True)[1].codec.name == "PCMU"
    assert _answer(offer, codecs=("pcmu",))[1].codec == Codec("PCMU", 0, 8000)


def test_codec_names_match_case_insensitively_and_keep_the_offered_payload_type() -> None:
    offer = _offer("m=audio 1000 RTP/AVP 96", "a=rtpmap:96 pcma/8000")
    answer, params = _answer(offer)
    assert params.codec == Codec("PCMA", 96, 8000)
    assert answer.media[0].formats == ("96",)
    assert Attribute("rtpmap", "96 PCMA/8000") in answer.media[0].attributes


def test_g711_at_another_clock_rate_or_stereo_is_not_g711() -> None:
    for rtpmap in ("96 PCMU/16000", "96 PCMU/8000/2"):
        with pytest.raises(NegotiationError):
            _answer(_offer("m=audio 1000 RTP/AVP 96", f"a=rtpmap:{rtpmap}"))


def test_telephone_event_keeps_the_offerers_payload_type_and_fmtp() -> None:
    answer, params = _answer(
        _offer("m=audio 1000 RTP/AVP 0 96", "a=rtpmap:96 TELEPHONE-EVENT/8000", "a=fmtp:96 0-11")
    )
    assert params.dtmf_payload_type == 96
    assert answer.media[0].formats == ("0", "96")
    assert Attribute("fmtp", "96 0-11") in answer.media[0].attributes


def test_without_telephone_event_dtmf_is_in_band() -> None:
    answer, params = _answer(_offer("m=audio 1000 RTP/AVP 0 8"))
    assert params.dtmf_payload_type is None
    assert answer.media[0].formats == ("0",)
    assert Attribute("ptime", "20") in answer.media[0].attributes
    assert params.ptime == 20


def test_answer_keeps_every_m_line_and_rejects_the_rest_with_port_zero() -> None:
    offer = _offer(
        "m=video 2000 RTP/AVP 31", "m=audio 1000 RTP/AVP 0", "m=audio 3000 RTP/AVP 8",
        "m=audio 0 RTP/AVP 0",
    )  # fmt: skip
    answer, params = _answer(offer)
    assert [(m.media, m.port) for m in answer.media] == [
        ("video", 0), ("audio", 40000), ("audio", 0), ("audio", 0),
    ]  # fmt: skip
    assert answer.media[0].formats == ("31",)
    assert params.remote_port == 1000


def test_answer_uses_our_address_family_and_session_version() -> None:
    offer = _offer("m=audio 1000 RTP/AVP 0")
    answer, _ = answer_offer(offer, "2001:db8::5", 4000, session_id=9, session_version=3)
    assert answer.origin == Origin("conf-server", 9, 3, "2001:db8::5", "IP6")
    assert answer.connection == Connection("2001:db8::5", "IP6")
    assert b"c=IN IP6 2001:db8::5\r\n" in bytes(answer)


NEGOTIATION_FAILURES = [
    (("m=audio 1000 RTP/AVP 18 3",), "no common codec", "305"),
    (("m=audio 1000 RTP/AVP 96",), "no common codec", "305"),
    (("m=video 1000 RTP/AVP 31",), "no audio stream over RTP/AVP", "304"),
    (("m=audio 1000 RTP/SAVP 0",), "no audio stream over RTP/AVP", "304"),
    (("m=audio 0 RTP/AVP 0",), "no audio stream over RTP/AVP", "304"),
    (("m=audio 1000 RTP/AVP 0", "c=IN IP4 media.example.com"), "not a unicast IP", "301"),
    (("m=audio 1000 RTP/AVP 0", "c=IN IP4 224.2.1.1/16"), "not a unicast IP", "301"),
]


@pytest.mark.parametrize(("media", "message", "code"), NEGOTIATION_FAILURES)
def test_unusable_offers_are_488_with_a_warning(
    media: tuple[str, ...], message: str, code: str
) -> None:
    with pytest.raises(NegotiationError) as info:
        _answer(_offer(*media))
    assert message in str(info.value)
    assert info.value.status == 488
    assert info.value.warning.startswith(f"{code} conf-server ")


def test_rfc3264_example_with_host_names_is_valid_sdp_but_not_negotiable() -> None:
    offer = SessionDescription.parse((VECTORS / "rfc3264_offer.sdp").read_bytes())
    with pytest.raises(NegotiationError, match="not a unicast IP literal"):
        _answer(offer)


def test_unsupported_local_codec_names_are_a_programming_error() -> None:
    offer = _offer("m=audio 1000 RTP/AVP 0")
    for codecs in (("G722",), ()):
        with pytest.raises(ValueError, match="codecs must be a non-empty choice"):
            _answer(offer, codecs=codecs)
    with pytest.raises(ValueError, match="not an IP literal"):
        answer_offer(offer, "localhost", 4000, session_id=1, session_version=1)


# ------------------------------------------------------------------ our offers and their answers


def test_build_offer_golden() -> None:
    offer = build_offer("192.0.2.50", 5004, session_id=77, session_version=2, codecs=("PCMA",))
    assert bytes(offer) == _sdp(
        "v=0", "o=conf-server 77 2 IN IP4 192.0.2.50", "s=conf-server", "c=IN IP4 192.0.2.50",
        "t=0 0", "m=audio 5004 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv",
    )  # fmt: skip


@given(
    st.lists(st.sampled_from(["PCMU", "PCMA"]), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(["PCMU", "PCMA"]), min_size=1, max_size=2, unique=True),
    st.sampled_from(list(Direction)),
    st.booleans(),
)
def test_offer_answer_accept_agree_end_to_end(
    ours: list[str], theirs: list[str], direction: Direction, prefer_local: bool
) -> None:
    offer = build_offer("192.0.2.1", 5000, session_id=1, session_version=1, codecs=ours,
                        direction=direction)  # fmt: skip
    wire_offer = SessionDescription.parse(bytes(offer))
    common = [c for c in ours if c in theirs]
    if not common:
        with pytest.raises(NegotiationError):
            answer_offer(wire_offer, "192.0.2.2", 6000, session_id=2, session_version=1,
                         codecs=theirs)  # fmt: skip
        return
    answer, answerer = answer_offer(wire_offer, "192.0.2.2", 6000, session_id=2,
                                    session_version=1, codecs=theirs,
                                    prefer_local=prefer_local)  # fmt: skip
    offerer = accept_answer(offer, SessionDescription.parse(bytes(answer)))
    assert offerer.codec == answerer.codec
    assert answerer.codec.name == (min(common, key=theirs.index) if prefer_local else common[0])
    assert (offerer.remote_addr, offerer.remote_port) == ("192.0.2.2", 6000)
    assert (answerer.remote_addr, answerer.remote_port) == ("192.0.2.1", 5000)
    assert offerer.dtmf_payload_type == answerer.dtmf_payload_type == 101
    assert answerer.direction is direction.reverse()
    assert offerer.direction is direction
    assert answerer.on_hold is not direction.receives


def _answer_to_offer(*media: str) -> SessionDescription:
    return _offer(*media, head=("v=0", "o=- 2 2 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9",
                                "t=0 0"))  # fmt: skip


OUR_OFFER = build_offer("192.0.2.1", 5000, session_id=1, session_version=1)


def test_accept_answer_uses_the_answerers_payload_types() -> None:
    params = accept_answer(
        OUR_OFFER,
        _answer_to_offer("m=audio 7000 RTP/AVP 8 100", "a=rtpmap:100 telephone-event/8000"),
    )
    assert params == MediaParams("192.0.2.9", 7000, Codec("PCMA", 8, 8000), 100, 20,
                                 Direction.SENDRECV, False)  # fmt: skip


ANSWER_FAILURES = [
    (("m=audio 7000 RTP/AVP 0", "m=video 0 RTP/AVP 31"), "answer has 2 m= lines for 1 offered"),
    (("m=audio 0 RTP/AVP 0",), "the answer rejected our audio stream"),
    (("m=audio 7000 RTP/SAVP 0",), "the answer rejected our audio stream"),
    (("m=audio 7000 RTP/AVP 18",), "no common codec"),
]


@pytest.mark.parametrize(("media", "message"), ANSWER_FAILURES)
def test_unacceptable_answers(media: tuple[str, ...], message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        accept_answer(OUR_OFFER, _answer_to_offer(*media))


def test_answer_direction_must_fit_the_offer() -> None:
    offer = replace(OUR_OFFER, attributes=(Attribute("sendonly"),))
    offer = replace(
        offer, media=(replace(offer.media[0], attributes=offer.media[0].attributes[:-1]),)
    )
    assert offer.direction_for(0) is Direction.SENDONLY
    ok = accept_answer(offer, _answer_to_offer("m=audio 7000 RTP/AVP 0", "a=recvonly"))
    assert ok.direction is Direction.SENDONLY and not ok.on_hold
    with pytest.raises(NegotiationError, match="answer direction sendrecv cannot answer sendonly"):
        accept_answer(offer, _answer_to_offer("m=audio 7000 RTP/AVP 0"))
