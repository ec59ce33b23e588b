"""RFC 4475 / RFC 5118 torture messages fed to a SipEndpoint acting as the conference UAS.

The test plays the runtime: any IncomingInvite is refused with 404, as the DID router does for
the non-DID users of the corpus.  Each message must get exactly the answer of
``tests/data/sip_torture.toml`` (or one of its ``accept`` alternatives), at most one final
response, the listed headers and Via values, and the endpoint must still answer OPTIONS.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from sip.endpoint import EndpointConfig, SipEndpoint
from sip.events import IncomingInvite
from sip.ids import SequentialIds
from sip.message import Response, parse_message
from tests.sip.harness import raw_request

DATA = Path(__file__).resolve().parent.parent / "data" / "sip_torture.toml"
ENTRIES: list[dict[str, Any]] = tomllib.loads(DATA.read_text(encoding="utf-8"))["message"]
PEER = ("192.0.2.77", 5099)


def _endpoint() -> SipEndpoint:
    return SipEndpoint(EndpointConfig(host="192.0.2.1", port=5060), SequentialIds("t"))


def _replay(ep: SipEndpoint, data: bytes, now: float) -> list[Response]:
    """Feed one datagram, reject any new call with 404 as the DID router would, collect answers."""
    ep.receive_datagram(data, PEER, now)
    while (event := ep.next_event()) is not None:
        if isinstance(event, IncomingInvite):
            ep.send_response(event.invite_id, 404, now)
    answers = []
    for out in ep.datagrams_to_send(now):
        assert out.addr == PEER
        message = parse_message(out.data)
        assert isinstance(message, Response)
        answers.append(message)
    return answers


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_torture_message_gets_the_expected_answer(entry: dict[str, Any], torture_dir: Path) -> None:
    ep = _endpoint()
    data = (torture_dir / entry["file"]).read_bytes()
    answers = [r for r in _replay(ep, data, 0.0) if r.status != 100]
    if entry["expect"] == "drop":
        assert answers == []
    else:
        allowed = {int(entry["expect"]), *(int(s) for s in entry["accept"])}
        assert len(answers) == 1, f"{entry['file']}: {[r.status for r in answers]}"
        answer = answers[0]
        assert answer.status in allowed, f"{entry['file']}: got {answer.status}, want {allowed}"
        for name in entry["headers"]:
            assert name in answer.headers, f"{entry['file']}: {answer.status} lacks {name}"
        if entry["via_count"]:
            assert len(answer.vias) == entry["via_count"]
    # Timers run out without a second final response, and the server keeps answering.
    for at in (1.0, 5.0, 40.0):
        ep.handle_timer(at)
        late = [r.status for r in _responses(ep, at) if r.status >= 200]
        assert len(late) <= (0 if entry["expect"] == "drop" else 1)
    options = raw_request("OPTIONS", uri="sip:192.0.2.1", call_id="after", branch="z9hG4bKafter")
    after = _replay(ep, options, 41.0)
    assert [r.status for r in after] == [200]


def _responses(ep: SipEndpoint, now: float) -> list[Response]:
    out = []
    for o in ep.datagrams_to_send(now):
        message = parse_message(o.data)
        assert isinstance(message, Response)
        out.append(message)
    return out


def test_whole_corpus_through_one_endpoint(torture_dir: Path) -> None:
    """Back to back into one endpoint: at most one final answer each, nothing crashes."""
    ep = _endpoint()
    for i, entry in enumerate(ENTRIES):
        data = (torture_dir / entry["file"]).read_bytes()
        finals = [r for r in _replay(ep, data, float(i)) if r.status >= 200]
        assert len(finals) <= 1, entry["file"]
        if entry["expect"] == "drop":
            assert finals == [], entry["file"]
    options = raw_request("OPTIONS", uri="sip:192.0.2.1", call_id="end", branch="z9hG4bKend")
    assert [r.status for r in _replay(ep, options, 100.0)] == [200]


def test_error_answers_carry_received_for_a_foreign_sent_by(torture_dir: Path) -> None:
    """§18.2.1: the Via of an answer says where the request really came from."""
    ep = _endpoint()
    answer = _replay(ep, (torture_dir / "rfc4475/badinv01.dat").read_bytes(), 0.0)
    assert [r.status for r in answer] == [400]
    ep2 = _endpoint()
    answer = _replay(ep2, (torture_dir / "rfc4475/intmeth.dat").read_bytes(), 0.0)
    assert answer[0].top_via.received == PEER[0]
