"""Parse + serialize throughput of a realistic INVITE with SDP (issue 2 target: >= 20,000/s).

Runs on one core, in process: ``parse_message`` then ``bytes()`` of the result, in a loop.
A second figure adds what the transaction layer reads from every request (top Via branch,
CSeq, Call-ID, From/To tags) and ``validate_request``.

    .venv/bin/python benchmarks/bench_sip_parse.py [seconds]
"""

from __future__ import annotations

import sys
import time

from sip.message import Request, parse_message, validate_request

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=Session SDP\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)
HEAD = (
    b"INVITE sip:+15551230000@conf.example.com;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds-3bf8;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Example" <sip:alice@example.com>;tag=1928301774\r\n'
    b"To: <sip:+15551230000@conf.example.com;user=phone>\r\n"
    b"Call-ID: a84b4c76e66710-4c2e-9f61@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b'Contact: <sip:alice@192.0.2.10:5060;transport=udp>;+sip.instance="<urn:uuid:0001>"\r\n'
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, REFER\r\n"
    b"Supported: replaces, timer, 100rel\r\n"
    b"User-Agent: ExamplePhone/4.2.1 (Linux; build 20240101)\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n"
)
MESSAGE = HEAD + SDP


def _rate(step: object, seconds: float) -> float:
    assert callable(step)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(500):
            step()
        count += 500
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def parse_serialize() -> None:
    bytes(parse_message(MESSAGE))


def parse_views_serialize() -> None:
    message = parse_message(MESSAGE)
    assert isinstance(message, Request)
    _ = message.top_via.branch, message.cseq, message.call_id, message.from_.tag, message.to.tag
    validate_request(message)
    bytes(message)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    if bytes(parse_message(MESSAGE)) != MESSAGE:
        raise SystemExit("round trip is not byte-exact")
    headers = HEAD.count(b"\r\n") - 2
    print(f"message: {len(MESSAGE)} octets, {headers} headers")
    views = _rate(parse_views_serialize, seconds)
    print(f"sip parse+views+validate+serialize: {views:,.0f} messages/s")
    rate = _rate(parse_serialize, seconds)
    print(f"sip parse+serialize: {rate:,.0f} messages/s")


if __name__ == "__main__":
    main()
