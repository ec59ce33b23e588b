"""The room-owner cache behind the live endpoints: bounded store reads, writes seen at once."""

from __future__ import annotations

import asyncio

from conf_server.api.context import OWNERS_FRESH, OwnerCache
from conf_server.domain.attributes import Role
from tests.conf_server.api.conftest import ADMIN, ALICE, BASE, World, basic


async def test_one_store_read_per_fresh_period_and_forget_reads_again(world: World) -> None:
    clock = [100.0]
    cache = OwnerCache(world.store, clock=lambda: clock[0])
    first, second = await asyncio.gather(cache.get(), cache.get())  # one read serves both
    assert cache.reads == 1 and first == second
    assert first[str(world.alice_room)] == (world.alice_sid, "Alice")
    clock[0] += OWNERS_FRESH - 0.01
    await cache.get()
    assert cache.reads == 1
    clock[0] += 0.02
    await cache.get()
    assert cache.reads == 2
    cache.forget()
    await cache.get()
    assert cache.reads == 3


async def test_a_read_overlapping_a_forget_is_not_kept(world: World) -> None:
    cache = OwnerCache(world.store)
    reading = asyncio.create_task(cache.get())
    await asyncio.sleep(0)  # the read has started
    cache.forget()
    await reading
    await cache.get()
    assert cache.reads == 2


async def test_an_api_write_to_a_room_shows_in_the_next_meeting_list(world: World) -> None:
    world.bridge.join("h", world.alice_room, Role.HOST)
    meetings = f"{BASE}/meetings"
    before = await world.client.get(meetings, headers=basic(ADMIN))
    assert [m["subscriberName"] for m in before.json()["meetings"]] == ["Alice"]
    assert (await world.client.get(meetings, headers=basic(ALICE))).json()["total"] == 1
    moved = await world.client.put(
        f"{BASE}/meetingRooms/{world.alice_room}",
        headers=basic(ADMIN),
        json={"subscriberSid": world.bob_sid},
    )
    assert moved.status_code == 200
    after = await world.client.get(meetings, headers=basic(ADMIN))
    assert [m["subscriberName"] for m in after.json()["meetings"]] == ["Bob"]
    assert (await world.client.get(meetings, headers=basic(ALICE))).json()["total"] == 0
