"""A pair harness: two ``SipEndpoint`` wired in memory with an explicit clock.

``Pair.run`` moves every queued datagram to the endpoint whose address it names, collects the
events each side emits, and advances the fake clock to the next timer of either side until a
time limit.  Loss and duplication are rules on (direction, start line prefix) so a test can say
"lose every ACK from a to b" or "deliver the first INVITE twice".  Everything sent is logged
with its time, direction and first line for the assertions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sip.endpoint import EndpointConfig, SipEndpoint
from sip.events import Address, Event, Outgoing
from sip.ids import SequentialIds
from sip.protection import Guard

A_ADDR: Address = ("127.0.0.1", 5060)
B_ADDR: Address = ("127.0.0.2", 5062)


@dataclass
class Rule:
    direction: str  # "a>b" or "b>a"
    prefix: str  # start of the first line, e.g. "ACK" or "SIP/2.0 200"
    times: float  # how many more messages it applies to (math.inf = all)


@dataclass
class Sent:
    at: float
    direction: str
    first_line: str
    data: bytes
    lost: bool


@dataclass
class Pair:
    a: SipEndpoint
    b: SipEndpoint
    now: float = 0.0
    events: dict[str, list[Event]] = field(default_factory=lambda: {"a": [], "b": []})
    wire: list[Sent] = field(default_factory=list)
    losses: list[Rule] = field(default_factory=list)
    duplicates: list[Rule] = field(default_factory=list)
    # Rewrites the n-th message put on the wire (0-based) before delivery: fuzzing in flight.
    mangle: dict[int, Callable[[bytes], bytes]] = field(default_factory=dict)

    def lose(self, direction: str, prefix: str, times: float = math.inf) -> None:
        self.losses.append(Rule(direction, prefix, times))

    def duplicate(self, direction: str, prefix: str, times: float = 1) -> None:
        self.duplicates.append(Rule(direction, prefix, times))

    def side(self, name: str) -> SipEndpoint:
        return self.a if name == "a" else self.b

    def pump(self) -> None:
        """Deliver until both outboxes are empty (no time passes)."""
        for _ in range(10_000):
            moved = self._move("a", "b") + self._move("b", "a")
            self._collect()
            if not moved:
                return
        raise RuntimeError("message storm: the endpoints never went quiet")

    def _move(self, src: str, dst: str) -> int:
        outs = self.side(src).datagrams_to_send(self.now)
        direction = f"{src}>{dst}"
        target_addr = B_ADDR if dst == "b" else A_ADDR
        for out in outs:
            first = out.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
            lost = out.addr != target_addr or _consume(self.losses, direction, first)
            rewrite = self.mangle.get(len(self.wire))
            data = out.data if rewrite is None else rewrite(out.data)
            self.wire.append(Sent(self.now, direction, first, data, lost))
            if lost:
                continue
            source = A_ADDR if src == "a" else B_ADDR
            copies = 2 if _consume(self.duplicates, direction, first) else 1
            for _ in range(copies):
                self.side(dst).receive_datagram(data, source, self.now, out.transport)
        return len(outs)

    def _collect(self) -> None:
        for name in ("a", "b"):
            ep = self.side(name)
            while (event := ep.next_event()) is not None:
                self.events[name].append(event)

    def run(self, until: float) -> None:
        """Pump, then fire timers in time order up to ``until``; the clock ends at ``until``."""
        self.pump()
        while True:
            deadlines = [d for d in (self.a.get_timer(), self.b.get_timer()) if d is not None]
            if not deadlines or min(deadlines) > until:
                break
            self.now = max(self.now, min(deadlines))
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.pump()
        self.now = max(self.now, until)

    def take(self, name: str) -> list[Event]:
        out, self.events[name] = self.events[name], []
        return out

    def sent(self, direction: str, prefix: str) -> list[Sent]:
        return [
            s for s in self.wire if s.direction == direction and s.first_line.startswith(prefix)
        ]

    def inject(
        self, name: str, data: bytes, source: Address, transport: str = "UDP"
    ) -> list[Outgoing]:
        """Feed raw bytes to one side and return what it answers (not delivered anywhere)."""
        ep = self.side(name)
        ep.receive_datagram(data, source, self.now, transport)
        out = ep.datagrams_to_send(self.now)
        self._collect()
        return out


def _consume(rules: list[Rule], direction: str, first_line: str) -> bool:
    for rule in rules:
        if rule.times > 0 and rule.direction == direction and first_line.startswith(rule.prefix):
            rule.times -= 1
            return True
    return False


def make_endpoint(
    addr: Address, prefix: str, guard: Guard | None = None, **config: Any
) -> SipEndpoint:
    cfg = EndpointConfig(host=addr[0], port=addr[1], user_agent=f"test-{prefix}", **config)
    return SipEndpoint(cfg, SequentialIds(prefix), guard)


def make_pair(guard: Guard | None = None, **b_config: Any) -> Pair:
    """A (caller, no guard) and B (the server under test, with ``b_config`` and ``guard``)."""
    return Pair(make_endpoint(A_ADDR, "a"), make_endpoint(B_ADDR, "b", guard, **b_config))


def raw_request(
    method: str,
    *,
    uri: str = "sip:100@127.0.0.2:5062",
    call_id: str = "raw-call@example.test",
    from_tag: str = "ft1",
    to_tag: str | None = None,
    branch: str = "z9hG4bKraw1",
    cseq: int = 1,
    cseq_method: str | None = None,
    via_host: str = "127.0.0.9:5099",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> bytes:
    """A well-formed request as a peer would send it."""
    to = "<sip:100@127.0.0.2>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {via_host};branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:caller@example.test>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:caller@127.0.0.9:5099>",
        *(f"{name}: {value}" for name, value in headers),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
