"""The call layer's DID cache: hits, misses remembered, expiry, bounded size."""

from __future__ import annotations

from typing import Any

from conf_server.runtime.calls import DidCache


class _Directory:
    def __init__(self) -> None:
        self.lookups: list[str] = []
        self.known = {"+12125550100": {"id": 1}}

    async def find_did(self, e164: str) -> Any | None:
        self.lookups.append(e164)
        return self.known.get(e164)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _found(cache: DidCache, number: str) -> Any:
    return await cache.find_did(number)  # the directory double's records are plain dicts


async def test_found_and_missing_dids_are_remembered_until_the_ttl() -> None:
    directory, clock = _Directory(), _Clock()
    cache = DidCache(directory, clock, ttl=5.0)
    assert await _found(cache, "+12125550100") == {"id": 1}
    assert await _found(cache, "+12125550100") == {"id": 1}
    assert await cache.find_did("+19998887777") is None
    assert await cache.find_did("+19998887777") is None
    assert directory.lookups == ["+12125550100", "+19998887777"]
    directory.known["+19998887777"] = {"id": 2}
    clock.now += 5.1
    assert await _found(cache, "+19998887777") == {"id": 2}
    assert directory.lookups[-1] == "+19998887777"


async def test_memory_is_bounded() -> None:
    directory, clock = _Directory(), _Clock()
    cache = DidCache(directory, clock, ttl=60.0)
    cache._max = 10
    for i in range(25):
        await cache.find_did(f"+1212555{i:04d}")
    assert len(cache._entries) <= 10
