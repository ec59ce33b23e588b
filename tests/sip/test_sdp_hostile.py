"""SDP and offer/answer against hostile peers: caps, linear time, only documented errors.

Whatever a stranger puts in a body, ``SessionDescription.parse`` returns or raises ``SdpError``
in time linear in the body's size, and negotiating what parsed raises only
``NegotiationError``. The caps (``MAX_SDP_LINES``, ``MAX_MEDIA_SECTIONS``) are named in the
refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip import sdp
from sip.errors import NegotiationError, SdpError
from sip.offer_answer import accept_answer, answer_offer, build_offer
from sip.sdp import MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, MAX_SDP_LINES, SessionDescription
from tests.timing import assert_linear

VECTORS = sorted((Path(__file__).parent / "vectors_sdp").glob("*.sdp"))
HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
AUDIO = "m=audio 4000 RTP/AVP 0\r\n"


def _sdp(body: str) -> bytes:
    return (HEAD + body).encode()


def _assert_linear_in_size(call: Callable[[str], object], make: Callable[[int], str]) -> None:
    """``call`` on 60 KB from ``make`` costs < 50 ms and < 8x its cost on 15 KB."""
    small, large = make(15_000), make(60_000)
    assert 55_000 <= len(large.encode()) <= MAX_SDP_BYTES
    assert_linear(lambda: call(small), lambda: call(large))


def _parse_or_refuse(text: str) -> object:
    try:
        return SessionDescription.parse(text.encode())
    except SdpError as exc:
        return exc


# ------------------------------------------------------------------ host names

# The pattern the scanner replaced (nested quantifiers): the scanner must accept the same names.
_OLD_HOSTNAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z][A-Za-z0-9-]*\.?"
)


@given(st.text(alphabet="aZ09-.!_", max_size=40))
def test_host_name_scanner_accepts_what_the_rfc1123_pattern_accepts(name: str) -> None:
    assert sdp._is_hostname(name) == bool(_OLD_HOSTNAME.fullmatch(name))


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "a" * n + "!",
        lambda n: "a-" * (n // 2) + "!",
        lambda n: "a." * (n // 2) + "!",
        lambda n: "a." * (n // 2) + "1",
        lambda n: "a" * n + ".-",
        lambda n: "1" * n + "!",
    ],
    ids=["letters", "hyphens", "labels", "numeric top", "hyphen label", "digits"],
)
def test_host_name_check_is_linear(make: Callable[[int], str]) -> None:
    _assert_linear_in_size(sdp._is_hostname, make)
    assert not sdp._is_hostname(make(30_000))


# ------------------------------------------------------------------ caps


def test_line_cap_is_named_in_the_refusal() -> None:
    at_cap = HEAD + "a=x\r\n" * (MAX_SDP_LINES - 5)
    assert len(SessionDescription.parse(at_cap.encode()).attributes) == MAX_SDP_LINES - 5
    with pytest.raises(SdpError, match=f"of {MAX_SDP_LINES + 1} lines exceeds {MAX_SDP_LINES}"):
        SessionDescription.parse((at_cap + "a=y\r\n").encode())


def test_media_section_cap_is_named_in_the_refusal() -> None:
    at_cap = SessionDescription.parse(_sdp(AUDIO * MAX_MEDIA_SECTIONS))
    assert len(at_cap.media) == MAX_MEDIA_SECTIONS
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(_sdp(AUDIO * (MAX_MEDIA_SECTIONS + 1)))
    assert str(info.value) == (
        f"SDP line {len(HEAD.splitlines()) + MAX_MEDIA_SECTIONS + 1}: more than "
        f"{MAX_MEDIA_SECTIONS} m= sections: {AUDIO.strip()!r}"
    )


def test_many_repeat_lines_are_kept_in_order() -> None:
    """r= lines were appended by rebuilding a tuple per line (quadratic); order still holds."""
    body = "".join(f"r={i}d 1h 0\r\n" for i in range(MAX_SDP_LINES - 5))
    (timing,) = SessionDescription.parse(_sdp(body)).times
    assert timing.repeats == tuple(f"{i}d 1h 0" for i in range(MAX_SDP_LINES - 5))


# ------------------------------------------------------------------ 60 KB adversarial bodies


def _repeat_within_cap(line: str) -> Callable[[int], str]:
    """``n`` bytes of ``line`` spread over the allowed lines (so the body is really parsed)."""

    def make(n: int) -> str:
        per_line = n // (MAX_SDP_LINES - 10)
        value = (line * (per_line // len(line) + 1))[:per_line]
        return HEAD + "".join(f"{value}\r\n" for _ in range(MAX_SDP_LINES - 10))

    return make


SHAPES: list[tuple[str, Callable[[int], str]]] = [
    ("r= lines", lambda n: HEAD + "r=1\r\n" * (n // 5)),
    ("r= lines within the cap", _repeat_within_cap("r=7d 1h 0 25h ")),
    ("a= lines", lambda n: HEAD + "a=x\r\n" * (n // 5)),
    ("long a= lines within the cap", _repeat_within_cap("a=fmtp:101 0-16;")),
    ("m= lines", lambda n: HEAD + AUDIO * (n // len(AUDIO))),
    ("one m= line of formats", lambda n: HEAD + "m=audio 1 RTP/AVP" + " 0" * (n // 2) + "\r\n"),
    ("long proto", lambda n: HEAD + "m=audio 1 " + "A/" * (n // 2) + "AVP 0\r\n"),
    ("long proto, bad end", lambda n: HEAD + "m=audio 1 " + "A/" * (n // 2) + "/ 0\r\n"),
    ("long token", lambda n: HEAD + "a=" + "x" * n + "\r\n"),
    ("long bad token", lambda n: HEAD + "a=" + "x" * n + "(\r\n"),
    ("host name labels", lambda n: "v=0\r\no=- 1 1 IN IP4 " + "a." * (n // 2) + "!\r\n"),
    ("IPv6-like address", lambda n: "v=0\r\no=- 1 1 IN IP6 " + "1:" * (n // 2) + "\r\n"),
    ("c= suffixes", lambda n: HEAD[:36] + "c=IN IP4 1.2.3.4" + "/1" * (n // 2) + "\r\n"),
    ("many fields", lambda n: "v=0\r\no=" + "- " * (n // 2) + "\r\n"),
    ("blank lines", lambda n: HEAD + "\r\n" * (n // 2)),
    ("bare CRs", lambda n: HEAD + "a=" + "\r" * n + "\r\n"),
]


@pytest.mark.parametrize("make", [s for _, s in SHAPES], ids=[n for n, _ in SHAPES])
def test_adversarial_bodies_cost_time_linear_in_their_size(make: Callable[[int], str]) -> None:
    _assert_linear_in_size(_parse_or_refuse, make)


# ------------------------------------------------------------------ negotiation


def _negotiate(text: str) -> object:
    offer = SessionDescription.parse(text.encode())
    try:
        return answer_offer(offer, "203.0.113.10", 40000, session_id=1, session_version=1)
    except NegotiationError as exc:
        return exc


def _big_offer(n: int) -> str:
    """Many m= sections, each a long list of formats: ours is the last audio one."""
    sections = min(MAX_MEDIA_SECTIONS, n // 900 + 1)
    formats = " 96" * ((n // sections - 40) // 3)
    return (
        HEAD
        + f"m=video 5000 RTP/AVP{formats}\r\n" * (sections - 1)
        + (f"m=audio 4000 RTP/AVP{formats} 0\r\n")
    )


def test_answering_a_60_kb_offer_is_linear() -> None:
    answer, params = answer_offer(
        SessionDescription.parse(_big_offer(60_000).encode()), "203.0.113.10", 40000,
        session_id=1, session_version=1,
    )  # fmt: skip
    assert len(answer.media) == MAX_MEDIA_SECTIONS and params.codec.name == "PCMU"
    _assert_linear_in_size(_negotiate, _big_offer)


@given(
    st.sampled_from(VECTORS), st.integers(min_value=0, max_value=2000),
    st.binary(min_size=0, max_size=6),
)  # fmt: skip
def test_whatever_parses_negotiates_or_raises_negotiation_error(
    path: Path, at: int, junk: bytes
) -> None:
    data = path.read_bytes()
    at %= len(data)
    try:
        parsed = SessionDescription.parse(data[:at] + junk + data[at + 1 :])
    except SdpError:
        return
    ours = build_offer("203.0.113.10", 40000, session_id=1, session_version=1)
    for attempt in (
        lambda: answer_offer(parsed, "203.0.113.10", 40000, session_id=1, session_version=1),
        lambda: accept_answer(ours, parsed),
    ):
        try:
            attempt()
        except NegotiationError:
            continue
