"""The RFC 4475 / RFC 5118 torture corpus against the message layer (tests/data/sip_torture.toml).

The table says what a UAS answers to each message; here we check the part that belongs to the
message layer: which messages are grammar errors (ParseError with the status to answer), that
nothing raises anything else, that a stateless answer can be built when a Via is readable, and
the semantic traps the RFCs call out.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from sip.errors import ParseError
from sip.message import (
    Message,
    Request,
    Response,
    error_response_for,
    parse_message,
    validate_request,
)
from sip.uri import AbsoluteUri, SipUri

TABLE = Path(__file__).resolve().parent.parent / "data" / "sip_torture.toml"
ENTRIES: list[dict[str, Any]] = tomllib.loads(TABLE.read_text())["message"]
IDS = [e["file"] for e in ENTRIES]
# 400s decided above the message layer: badbranch is a transaction-layer rejection (§3.2.1).
NOT_GRAMMAR = {"rfc4475/badbranch.dat"}
STATUSES = {"drop", "200", "400", "404", "405", "406", "415", "416", "420", "481", "501", "505"}


def _outcome(data: bytes) -> Message | ParseError:
    """Parse and (for requests) validate; any exception other than ParseError fails the test."""
    try:
        message = parse_message(data)
        if isinstance(message, Request):
            validate_request(message)
    except ParseError as exc:
        return exc
    return message


def _load(torture_dir: Path, name: str) -> bytes:
    return (torture_dir / name).read_bytes()


def test_table_covers_the_corpus_exactly(torture_dir: Path) -> None:
    on_disk = sorted(
        str(p.relative_to(torture_dir))
        for sub in ("rfc4475", "rfc5118-wire", "variants")
        for p in (torture_dir / sub).iterdir()
    )
    assert sorted(IDS) == on_disk
    assert len(on_disk) == 63


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_table_schema(entry: dict[str, Any]) -> None:
    assert set(entry) == {"file", "section", "expect", "accept", "headers", "via_count", "notes"}
    assert entry["expect"] in STATUSES
    assert all(s in STATUSES - {"drop", entry["expect"]} for s in entry["accept"])
    assert all(isinstance(h, str) and h for h in entry["headers"])
    assert isinstance(entry["via_count"], int) and entry["via_count"] >= 0
    assert entry["notes"]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_message_layer_verdict(torture_dir: Path, entry: dict[str, Any]) -> None:
    data = _load(torture_dir, entry["file"])
    outcome = _outcome(data)
    expect = entry["expect"]
    if expect in ("400", "505") and entry["file"] not in NOT_GRAMMAR:
        assert isinstance(outcome, ParseError), f"{entry['file']} should be a grammar error"
        assert outcome.status == int(expect)
        answer = error_response_for(data, outcome)
        assert answer is not None
        response = Response.parse(answer)
        assert response.status == int(expect)
        assert response.headers.lines("Via")
    elif expect == "drop":
        if isinstance(outcome, ParseError):
            assert error_response_for(data, outcome) is None
        else:
            assert isinstance(outcome, Response)
    else:
        assert isinstance(outcome, Request), f"{entry['file']}: {outcome}"
        if entry["via_count"]:
            assert len(outcome.vias) == entry["via_count"]


def _parsed(torture_dir: Path, name: str) -> Request:
    message = parse_message(_load(torture_dir, name))
    assert isinstance(message, Request)
    validate_request(message)
    return message


def test_esc01_user_compares_unescaped(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/esc01.dat")
    assert isinstance(req.uri, SipUri)
    assert req.uri.user == "sips%3Auser%40example.com"
    assert req.uri.user_unescaped == "sips:user@example.com"
    to_uri = req.to.uri
    assert isinstance(to_uri, SipUri) and to_uri.user_unescaped == "user"
    contact = req.headers.get("Contact")
    assert contact is not None and "v%61lue%25%34%31" in contact  # value%41 stays != valueA


def test_escnull_keeps_escaped_nul(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/escnull.dat")
    users = [str(getattr(req.to.uri, "user", "")), *req.headers.get_all("Contact")]
    assert any("%00" in u for u in users)
    assert req.to.uri != req.from_.uri or "%00" in str(req.to.uri)


def test_esc02_method_is_not_register(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/esc02.dat")
    assert req.method == "RE%47IST%45R"
    assert req.method != "REGISTER"
    assert len(req.headers.get_all("Contact")) == 2  # C%6Fntact is another header


def test_semiuri_user_part(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/semiuri.dat")
    assert isinstance(req.uri, SipUri)
    assert req.uri.user == "user;par=u%40example.net"
    assert req.uri.user_unescaped == "user;par=u@example.net"
    assert req.uri.host == "example.com" and req.uri.params == ()


def test_longreq_has_34_vias_and_a_long_answer(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/longreq.dat")
    assert len(req.vias) == 34
    assert bytes(parse_message(bytes(req))) == bytes(req)


def test_dblreq_is_one_register_with_empty_body(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/dblreq.dat")
    assert req.method == "REGISTER"
    assert req.body == b""


def test_mpart01_body_is_553_octets_with_nuls(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/mpart01.dat")
    assert len(req.body) == 553
    assert b"\x00" in req.body
    assert req.body.endswith(b"\r\n")


def test_intmeth_raw_octets_round_trip(torture_dir: Path) -> None:
    data = _load(torture_dir, "rfc4475/intmeth.dat")
    req = _parsed(torture_dir, "rfc4475/intmeth.dat")
    assert req.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert isinstance(req.uri, SipUri) and req.uri.password is not None
    assert parse_message(bytes(req)) == req
    out = bytes(req)
    for raw in (b'"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"', "\ufeff大停電".encode()):
        assert raw in data and raw in out


def test_port_ambiguous_host(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc5118-wire/port-ambiguous.dat")
    assert isinstance(req.uri, SipUri)
    assert (req.uri.host, req.uri.port) == ("2001:db8::10:5070", None)


def test_ipv6_bug_abnf_three_colons_parses(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc5118-wire/ipv6-bug-abnf-3-colons.dat")
    assert isinstance(req.uri, SipUri) and req.uri.host == "2001:db8:::192.0.2.1"


def test_received_with_and_without_brackets(torture_dir: Path) -> None:
    with_delim = _parsed(torture_dir, "rfc5118-wire/via-received-param-with-delim.dat")
    no_delim = _parsed(torture_dir, "rfc5118-wire/via-received-param-no-delim.dat")
    assert with_delim.top_via.received == no_delim.top_via.received == "2001:db8::9:255"


def test_unknown_schemes_stay_opaque(torture_dir: Path) -> None:
    assert _parsed(torture_dir, "rfc4475/unkscm.dat").uri == AbsoluteUri(
        "nobodyKnowsThisScheme", "totallyopaquecontent"
    )
    req = _parsed(torture_dir, "rfc4475/unksm2.dat")
    assert req.to.uri == AbsoluteUri("isbn", "2983792873")


def test_inv2543_body_is_rest_of_datagram(torture_dir: Path) -> None:
    data = _load(torture_dir, "rfc4475/inv2543.dat")
    req = _parsed(torture_dir, "rfc4475/inv2543.dat")
    assert req.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert req.top_via.branch is None and req.from_.tag is None


def test_test_dat_cannot_be_answered(torture_dir: Path) -> None:
    data = _load(torture_dir, "rfc4475/test.dat")
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert error_response_for(data, info.value) is None


def test_wsinv_values_after_unfolding(torture_dir: Path) -> None:
    req = _parsed(torture_dir, "rfc4475/wsinv.dat")
    assert req.max_forwards == 68
    assert req.cseq.seq == 9
    assert [v.transport for v in req.vias] == ["UDP", "TCP", "UDP"]
    assert req.vias[2].branch == "z9hG4bK30239"
    assert req.to.tag == "1918181833n"
    assert req.from_.display_name == 'J Rosenberg \\"'
    assert req.headers.get("Subject") == ""
    assert req.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
