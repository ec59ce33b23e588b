"""The store on a real SQLite file: call-path lookups, CRUD and the uniqueness rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conf_server.store import (
    ConflictError,
    DidGroupInfo,
    DidGroupRef,
    DidGroupSpec,
    DidSpec,
    InvalidDataError,
    KeySpec,
    NotFoundError,
    PinSpec,
    Role,
    RoomSpec,
    Store,
    SubscriberSpec,
)
from conf_server.store.passwords import verify_password

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path}/store.db", clock=lambda: T0)
    yield opened
    await opened.close()


async def _group(store: Store, name: str = "main", **attributes: object) -> DidGroupInfo:
    return await store.create_did_group(DidGroupSpec(name, attributes=attributes))


def _keys(*pairs: tuple[str, Role]) -> tuple[KeySpec, ...]:
    return tuple(KeySpec(code, role) for code, role in pairs)


# --- call path --------------------------------------------------------------------------------


async def test_find_did_carries_group_and_call_flow(store: Store) -> None:
    group = await _group(store, call_operator_after=5)
    did = await store.create_did(DidSpec("(212) 555-0100", group.id, "main line"))
    assert did.phone_number == "+12125550100"
    assert did.country_code == "US"
    assert did.created == datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)

    found = await store.find_did("12125550100")
    assert found == did
    assert found.did_group.name == "main"
    assert found.did_group.call_flow.name == "CONF"
    assert found.did_group.attributes == {"call_operator_after": "5"}
    assert await store.find_did("+12125550199") is None
    assert await store.find_did("not a number") is None


async def test_find_room_by_code_gives_room_and_role(store: Store) -> None:
    group = await _group(store)
    keys = _keys(("1111", Role.HOST), ("2222", Role.PARTICIPANT), ("3333", Role.LISTENER))
    room = await store.create_room(RoomSpec(group.id, 100001, keychain=keys))
    for code, role in [("1111", Role.HOST), ("2222", Role.PARTICIPANT), ("3333", Role.LISTENER)]:
        found = await store.find_room_by_code(group.id, code)
        assert found is not None
        assert found[0].meeting_number == 100001
        assert found[0].id == room.id
        assert found[1] is role
    assert await store.find_room_by_code(group.id, "4444") is None
    other = await _group(store, "other")
    assert await store.find_room_by_code(other.id, "1111") is None


async def test_only_active_references_reach_a_room(store: Store) -> None:
    main, partner = await _group(store), await _group(store, "partner")
    refs = (DidGroupRef(partner.id, 2),)  # disabled
    spec = RoomSpec(main.id, 100001, did_group_refs=refs, keychain=_keys(("1", Role.HOST)))
    room = await store.create_room(spec)
    assert await store.find_room_by_code(partner.id, "1") is None
    await store.update_room(100001, replace(room.spec(), did_group_refs=(DidGroupRef(partner.id),)))
    assert await store.find_room_by_code(partner.id, "1") is not None


async def test_room_pins_and_organizer(store: Store) -> None:
    group = await _group(store)
    pins = (PinSpec("2468", organizer=True), PinSpec("1357"))
    room = await store.create_room(RoomSpec(group.id, 100002, pins=pins))
    assert room.has_pins
    found = await store.room_pins(room.id)
    assert sorted((p.pin, p.organizer) for p in found) == [("1357", False), ("2468", True)]
    assert all(p.room_id == room.id for p in found)
    bare = await store.create_room(RoomSpec(group.id, 100003))
    assert not bare.has_pins
    assert await store.room_pins(bare.id) == []


async def test_effective_attributes_layer_group_did_and_room(store: Store) -> None:
    group = await _group(store, conference_start_how="explicit", call_delay=1)
    did = await store.create_did(DidSpec("+12125550100", group.id, attributes={"call_delay": 2}))
    room = await store.create_room(
        RoomSpec(group.id, 100002, attributes={"conference_start_how": "moderator"})
    )
    before = await store.effective_attributes(did, None)
    assert before["conference_start_how"] == "explicit"
    assert before["call_delay"] == 2
    inside = await store.effective_attributes(did, room)
    assert inside["conference_start_how"] == "moderator"
    assert inside["conference_language"] == "EN"


# --- validation and conflicts -----------------------------------------------------------------


async def test_access_code_unique_among_rooms_of_one_group(store: Store) -> None:
    group = await _group(store)
    await store.create_room(RoomSpec(group.id, 100001, keychain=_keys(("1111", Role.HOST))))
    with pytest.raises(ConflictError, match="access code '1111' is already used by meeting room"):
        await store.create_room(
            RoomSpec(group.id, 100002, keychain=_keys(("1111", Role.PARTICIPANT)))
        )
    assert (await store.list_rooms()).total == 1  # the failed create left nothing behind


async def test_same_code_in_unrelated_groups_is_fine_until_they_share_one(store: Store) -> None:
    first, second = await _group(store, "first"), await _group(store, "second")
    await store.create_room(RoomSpec(first.id, 100001, keychain=_keys(("1111", Role.HOST))))
    room = await store.create_room(RoomSpec(second.id, 100002, keychain=_keys(("1111", Role.HOST))))
    with pytest.raises(ConflictError, match="which DID group 1 also reaches"):
        await store.update_room(
            100002, replace(room.spec(), did_group_refs=(DidGroupRef(first.id),))
        )
    found = await store.find_room_by_code(second.id, "1111")
    assert found is not None
    assert found[0].meeting_number == 100002


async def test_a_room_may_keep_its_own_codes_on_update(store: Store) -> None:
    group = await _group(store)
    room = await store.create_room(
        RoomSpec(group.id, 100001, keychain=_keys(("1111", Role.HOST), ("2222", Role.LISTENER)))
    )
    changed = await store.update_room(
        100001, replace(room.spec(), keychain=_keys(("1111", Role.PARTICIPANT)))
    )
    assert [(k.code, k.role) for k in changed.keychain] == [("1111", Role.PARTICIPANT)]
    assert changed.keychain[0].id == room.keychain[0].id  # ids stay stable
    assert await store.find_room_by_code(group.id, "2222") is None


@pytest.mark.parametrize(
    ("spec_change", "error", "message"),
    [
        ({"keychain": _keys(("12#", Role.HOST))}, InvalidDataError, "must be 1-32 keys"),
        ({"keychain": _keys(("1", Role.HOST), ("1", Role.LISTENER))}, ConflictError, "twice"),
        ({"pins": (PinSpec("12a"),)}, InvalidDataError, "PIN '12a' must be"),
        ({"meeting_number": 0}, InvalidDataError, "meeting number 0 must be positive"),
        ({"primary_did_group_id": 99}, NotFoundError, "DID group 99 does not exist"),
        ({"attributes": {"call_delay": 3}}, InvalidDataError, "cannot be set on a meeting room"),
        ({"attributes": {"nope": 3}}, InvalidDataError, "'nope': unknown attribute"),
        ({"subscriber_sid": "ghost"}, NotFoundError, "subscriber 'ghost' does not exist"),
    ],
)
async def test_room_errors(
    store: Store, spec_change: dict[str, object], error: type[Exception], message: str
) -> None:
    group = await _group(store)
    spec = replace(RoomSpec(group.id, 100001), **spec_change)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        await store.create_room(spec)


async def test_meeting_number_conflict_and_generation(store: Store) -> None:
    group = await _group(store)
    await store.create_room(RoomSpec(group.id, 100001))
    with pytest.raises(ConflictError, match="meeting number 100001 is already used"):
        await store.create_room(RoomSpec(group.id, 100001))
    generated = await store.create_room(RoomSpec(group.id))
    assert 100000 <= generated.meeting_number <= 999999
    kept = await store.update_room(generated.meeting_number, replace(generated.spec(),
                                   meeting_number=None, description="renamed"))  # fmt: skip
    assert kept.meeting_number == generated.meeting_number
    assert kept.description == "renamed"


async def test_did_errors(store: Store) -> None:
    group = await _group(store)
    await store.create_did(DidSpec("+12125550100", group.id))
    with pytest.raises(ConflictError, match=r"phone number \+12125550100 is already DID 1"):
        await store.create_did(DidSpec("2125550100", group.id))
    with pytest.raises(InvalidDataError, match="'555' is not a valid phone number"):
        await store.create_did(DidSpec("555", group.id))
    with pytest.raises(InvalidDataError, match="'conference_maxcalls': cannot be set on a DID"):
        await store.create_did(DidSpec("+12125550101", group.id, attributes={
            "conference_maxcalls": 3}))  # fmt: skip


async def test_did_group_errors(store: Store) -> None:
    await _group(store)
    with pytest.raises(ConflictError, match="DID group name 'main' is already used"):
        await _group(store)
    with pytest.raises(NotFoundError, match="call flow 1 does not exist"):
        await store.create_did_group(DidGroupSpec("spectel", call_flow_id=1))
    with pytest.raises(InvalidDataError, match="collide with"):
        await _group(store, "clash", conference_lock_dtmf_binding="*6")
    with pytest.raises(InvalidDataError, match="needs a name"):
        await _group(store, " ")


# --- CRUD -------------------------------------------------------------------------------------


async def test_did_group_crud_and_delete_rules(store: Store) -> None:
    group = await _group(store)
    did = await store.create_did(DidSpec("+12125550100", group.id))
    await store.create_room(RoomSpec(group.id, 100001))
    updated = await store.update_did_group(group.id, replace(group.spec(), description="new"))
    assert updated.description == "new"
    assert (await store.get_did_group(group.id)).description == "new"
    assert await store.find_did_group("main") == updated
    assert [d.id for d in await store.did_group_dids(group.id)] == [did.id]
    with pytest.raises(ConflictError, match="still has 1 DID"):
        await store.delete_did_group(group.id)
    await store.delete_did(did.id)
    await store.delete_room(100001)
    await store.delete_did_group(group.id)
    with pytest.raises(NotFoundError, match=f"DID group {group.id} does not exist"):
        await store.get_did_group(group.id)


async def test_did_crud(store: Store) -> None:
    first, second = await _group(store, "a"), await _group(store, "b")
    did = await store.create_did(DidSpec("+12125550100", first.id))
    moved = await store.update_did(did.id, replace(did.spec(), did_group_id=second.id,
                                   phone_number="+44 20 7183 8750"))  # fmt: skip
    assert (moved.did_group.name, moved.phone_number, moved.country_code) == (
        "b",
        "+442071838750",
        "GB",
    )
    assert await store.get_did(did.id) == moved
    await store.delete_did(did.id)
    with pytest.raises(NotFoundError, match=f"DID {did.id} does not exist"):
        await store.delete_did(did.id)


async def test_room_crud_and_pages(store: Store) -> None:
    group = await _group(store)
    for number in (100003, 100001, 100002):
        await store.create_room(RoomSpec(group.id, number, description=f"room {number}"))
    page = await store.list_rooms(offset=1, limit=1)
    assert [r.meeting_number for r in page.items] == [100002]
    assert (page.total, page.offset) == (3, 1)
    room = await store.get_room(100002)
    assert room.description == "room 100002"
    await store.delete_room(100002)
    assert [r.meeting_number for r in (await store.list_rooms()).items] == [100001, 100003]
    with pytest.raises(NotFoundError, match="meeting room 100002 does not exist"):
        await store.get_room(100002)
    with pytest.raises(InvalidDataError, match="must not be negative"):
        await store.list_rooms(offset=-1)


async def test_deleting_a_room_frees_its_codes(store: Store) -> None:
    group = await _group(store)
    await store.create_room(RoomSpec(group.id, 100001, keychain=_keys(("1111", Role.HOST))))
    await store.delete_room(100001)
    again = await store.create_room(RoomSpec(group.id, 100002, keychain=_keys(("1111", Role.HOST))))
    assert again.keychain[0].code == "1111"


async def test_subscriber_crud_passwords_and_rooms(store: Store) -> None:
    alice = await store.create_subscriber(SubscriberSpec("alice", "pw1", first_name="Alice"))
    assert len(alice.sid) == 32
    assert verify_password("pw1", alice.password_hash)
    assert "pw1" not in repr(alice)
    group = await store.create_did_group(DidGroupSpec("g", subscriber_sid=alice.sid))
    assert group.subscriber_sid == alice.sid
    await store.create_room(RoomSpec(group.id, 100001, subscriber_sid=alice.sid))
    assert (await store.get_subscriber(alice.sid)).meeting_numbers == (100001,)

    kept = await store.update_subscriber(alice.sid, replace(alice.spec(), email="a@example.org"))
    assert kept.password_hash == alice.password_hash  # password None keeps the hash
    changed = await store.update_subscriber(alice.sid, replace(alice.spec(), password="pw2"))
    assert verify_password("pw2", changed.password_hash)
    assert await store.find_subscriber("alice") == changed
    with pytest.raises(ConflictError, match="login 'alice' is already used"):
        await store.create_subscriber(SubscriberSpec("alice"))
    with pytest.raises(InvalidDataError, match="subscriber role 7 is not 1, 2 or 3"):
        await store.create_subscriber(SubscriberSpec("bob", role=7))
    bob = await store.create_subscriber(SubscriberSpec("bob", parent_sid=alice.sid))
    assert [s.login for s in (await store.list_subscribers()).items] == ["alice", "bob"]

    await store.delete_subscriber(alice.sid)
    assert (await store.get_room(100001)).subscriber_sid is None  # ON DELETE SET NULL
    assert (await store.get_subscriber(bob.sid)).parent_sid is None
    with pytest.raises(NotFoundError, match="subscriber"):
        await store.get_subscriber(alice.sid)


async def test_call_flow_lookup(store: Store) -> None:
    flow = await store.get_call_flow(3)
    assert (flow.name, dict(flow.attributes)) == ("CONF", {})
    with pytest.raises(NotFoundError, match="call flow 9 does not exist"):
        await store.get_call_flow(9)
