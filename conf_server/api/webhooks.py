"""Signed event callbacks: HMAC-SHA256 signatures and ordered, retried, non-blocking delivery.

Sources: RFC 2104 (HMAC) with SHA-256; the CarrierX Subscriber ``callback.url`` /
``eventCallbackUrl`` (``seeds/004_…``); Sinch's primary and fallback callback URLs
(``seeds/002_…``).

Theory of operation
-------------------
Each POST carries ``Conf-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." +
body)>``. Signing the timestamp with the body lets a receiver refuse replays: ``verify``
rejects a bad MAC and anything older (or newer) than ``tolerance`` seconds (300 by default).

``Deliverer`` keeps one FIFO queue and one worker task per target URL, so the events of a
meeting reach a receiver in sequence order even while an earlier one is being retried. A failed
POST (connection error, timeout, non-2xx) is retried after ``first_delay``, doubling up to
``max_delay``, at most ``attempts`` times; then the event goes to the fallback URL (same rules)
or is dropped with a log line. ``submit`` only appends to a bounded queue — a full queue drops
its oldest event, counted — so nothing here can hold up the event loop or the media tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import httpx

from conf_server.logs import get_logger

SIGNATURE_HEADER: Final = "Conf-Signature"
DEFAULT_TOLERANCE: Final = 300.0
_QUEUE_LIMIT: Final = 10_000
log = get_logger("api.webhooks")


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class SignatureError(ValueError):
    """A signature header that is malformed, wrong or outside the time tolerance."""


def verify(
    secret: bytes, header: str, body: bytes, now: float, tolerance: float = DEFAULT_TOLERANCE
) -> int:
    """Check a signature header; returns its timestamp or raises ``SignatureError``."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed signature element {part!r}")
        fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise SignatureError("the signature needs exactly one numeric t=")
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp {timestamp} is more than {tolerance:g} s from now")
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    if not any(hmac.compare_digest(expected, v) for v in fields.get("v1", [])):
        raise SignatureError("no v1 signature matches")
    return timestamp


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 5.0

    def delays(self) -> list[float]:
        """The waits between attempts: ``first_delay`` doubling, capped at ``max_delay``."""
        return [min(self.first_delay * 2**i, self.max_delay) for i in range(self.attempts - 1)]


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    event_id: str


class Deliverer:
    """Per-URL ordered queues with retry and fallback (see the module docstring)."""

    def __init__(
        self,
        secret: bytes,
        policy: RetryPolicy,
        fallback_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._policy = policy
        self._fallback = fallback_url
        self._clock = clock
        self._queues: dict[str, deque[Delivery]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._client = httpx.AsyncClient(timeout=policy.timeout)
        self.dropped = 0
        self.delivered = 0

    def submit(self, url: str, delivery: Delivery) -> None:
        """Queue ``delivery`` for ``url``; never waits."""
        queue = self._queues.setdefault(url, deque())
        if len(queue) >= _QUEUE_LIMIT:
            queue.popleft()
            self.dropped += 1
            log.warning("webhook.queue_full", url=url)
        queue.append(delivery)
        self._wake.setdefault(url, asyncio.Event()).set()
        if url not in self._tasks:
            self._tasks[url] = asyncio.get_running_loop().create_task(self._run(url))

    async def _run(self, url: str) -> None:
        queue, wake = self._queues[url], self._wake[url]
        while True:
            while not queue:
                wake.clear()
                await wake.wait()
            delivery = queue[0]
            if not await self._post_with_retry(url, delivery):
                await self._to_fallback(url, delivery)
            queue.popleft()

    async def _to_fallback(self, url: str, delivery: Delivery) -> None:
        fallback = self._fallback and self._fallback != url
        if fallback and await self._post_with_retry(self._fallback, delivery):
            return
        self.dropped += 1
        log.warning("webhook.undelivered", url=url, event_id=delivery.event_id)

    async def _post_with_retry(self, url: str, delivery: Delivery) -> bool:
        for delay in [*self._policy.delays(), None]:
            if await self._post(url, delivery):
                self.delivered += 1
                return True
            if delay is not None:
                await asyncio.sleep(delay)
        return False

    async def _post(self, url: str, delivery: Delivery) -> bool:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, delivery.body, int(self._clock())),
        }
        try:
            response = await self._client.post(url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            log.info("webhook.failed", url=url, event_id=delivery.event_id, error=str(exc))
            return False
        if response.is_success:
            return True
        log.info(
            "webhook.refused", url=url, event_id=delivery.event_id, status=response.status_code
        )
        return False

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._client.aclose()
