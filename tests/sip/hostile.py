"""Adversarial SIP datagrams: every header kind in the shapes that broke or slowed parsers.

Shared by tests/sip/test_limits.py, tests/integration/test_sip_stall.py and
benchmarks/bench_sip_stall.py, so the tests and the benchmark measure the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterator

from sip.limits import UDP_MAX, Limits

# Every limit raised to the largest UDP datagram: the parsers themselves see 64 KB.
WIDE = Limits(
    max_message=UDP_MAX,
    max_headers=UDP_MAX,
    max_header_line=UDP_MAX,
    max_request_uri=UDP_MAX,
    max_vias=UDP_MAX,
)

BASE = {
    "Via": "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1",
    "From": "<sip:a@example.test>;tag=1",
    "To": "<sip:b@example.test>",
    "Call-ID": "c1",
    "CSeq": "1 OPTIONS",
    "Max-Forwards": "70",
}
KINDS = (
    "Request-URI", "Via", "From", "To", "Contact", "Route", "Record-Route", "Call-ID", "CSeq",
    "Max-Forwards", "Content-Type", "Content-Length", "Require", "Supported", "Accept",
    "Authorization", "Proxy-Authorization", "Session-Expires", "Event", "X-Unknown",
)  # fmt: skip
# (prefix, repeated filler, suffix): the shapes that broke or slowed parsers of this kind.
SHAPES = (
    ("sip:[", ":", "g]"),  # the IPv6 reference that backtracked
    ("SIP/2.0/UDP [", ":", "g]"),
    ("<sip:a@[", ":1", ":g]>"),
    ("sip:a@b;", '"', ">"),  # quoted strings in parameters
    ("SIP/2.0/UDP a;", '"a" ', '"'),
    ("", ",", '"'),  # list elements, then an unterminated quote
    ("<sip:", "a-", "@"),
    ("sip:a@b;", ";a=", "]"),
    ("Digest a=", '"\\"', '"'),
    ("", "\r\n ", "x"),  # line folding
    ("", "%4", "%"),
    ("1 ", "a.", "a"),
    ("", "\udcff", ""),  # the octet 0xff, not UTF-8 (decoded with surrogateescape)
)


def datagram(kind: str, shape: tuple[str, str, str], size: int) -> bytes:
    prefix, fill, suffix = shape
    room = size - 300 - len(prefix) - len(suffix)
    value = prefix + (fill * (room // len(fill) + 1))[:room] + suffix
    uri = f"sip:{value}" if kind == "Request-URI" else "sip:100@192.0.2.1"
    headers = dict(BASE)
    if kind != "Request-URI":
        headers[kind] = value
    lines = [f"OPTIONS {uri} SIP/2.0", *(f"{k}: {v}" for k, v in headers.items())]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    assert len(data) <= size
    return data


def _cases() -> Iterator[tuple[str, tuple[str, str, str]]]:
    for kind in KINDS:
        for shape in SHAPES:
            yield kind, shape


CASES = list(_cases())
IDS = [f"{kind}-{SHAPES.index(shape)}" for kind, shape in CASES]
