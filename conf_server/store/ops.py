"""Reads and writes of the CarrierX objects inside one session (shared by Store and provisioning).

Every function takes an open ``AsyncSession`` and leaves transaction control to its caller, so
``Store`` wraps each public call in one transaction and provisioning applies a whole file in
one. Writes validate first and raise ``InvalidDataError`` / ``ConflictError`` / ``NotFoundError``
with a message naming the value; the database's own constraints are the last line, for races.

Conversions to the frozen records happen here, while the session is open, so lazy loads never
escape into callers.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import delete, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from conf_server.domain import attributes, numbers
from conf_server.domain.attributes import AttributeValueError, Level, Role
from conf_server.store.errors import (
    AccessCodeConflictError,
    ConflictError,
    InvalidDataError,
    NotFoundError,
)
from conf_server.store.models import (
    AccessCodeClaim,
    CallFlow,
    Did,
    DidGroup,
    MeetingKey,
    MeetingRoom,
    Pin,
    RoomDidGroup,
    Subscriber,
)
from conf_server.store.passwords import hash_password, verify_password
from conf_server.store.records import (
    CallFlowInfo,
    DidGroupInfo,
    DidGroupRef,
    DidGroupSpec,
    DidInfo,
    DidSpec,
    KeyInfo,
    PinInfo,
    RoomInfo,
    RoomSpec,
    SubscriberInfo,
    SubscriberSpec,
)

# Access codes and PINs are keyed in and ended with "#", so "#" cannot be part of them.
CODE_PATTERN = re.compile(r"[0-9*]{1,32}")
_MEETING_NUMBER_TRIES = 64


def _frozen(values: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


def _checked_attributes(values: Mapping[str, object], level: Level) -> dict[str, str]:
    try:
        return attributes.validate_all(values, level)
    except AttributeValueError as exc:
        raise InvalidDataError(str(exc)) from exc


# --- conversions ------------------------------------------------------------------------------


def call_flow_info(row: CallFlow) -> CallFlowInfo:
    return CallFlowInfo(row.id, row.name, _frozen(row.attributes))


def did_group_info(row: DidGroup) -> DidGroupInfo:
    return DidGroupInfo(
        row.id,
        row.name,
        call_flow_info(row.call_flow),
        row.description,
        row.subscriber_sid,
        row.state,
        _frozen(row.attributes),
        row.created,
    )


def did_info(row: Did) -> DidInfo:
    return DidInfo(
        row.id,
        row.phone_number,
        row.country_code,
        row.description,
        did_group_info(row.did_group),
        row.state,
        _frozen(row.attributes),
        row.created,
    )


def room_info(row: MeetingRoom) -> RoomInfo:
    return RoomInfo(
        row.id,
        row.meeting_number,
        row.description,
        row.primary_did_group_id,
        tuple(DidGroupRef(ref.did_group_id, ref.state) for ref in row.references),
        tuple(KeyInfo(key.id, key.access_code, Role(key.role)) for key in row.keys),
        tuple(PinInfo(pin.id, row.id, pin.pin, pin.organizer) for pin in row.pins),
        row.subscriber_sid,
        _frozen(row.attributes),
        row.created,
    )


async def subscriber_info(session: AsyncSession, row: Subscriber) -> SubscriberInfo:
    query = select(MeetingRoom.meeting_number).where(MeetingRoom.subscriber_sid == row.sid)
    rooms = tuple(sorted((await session.scalars(query)).all()))
    return SubscriberInfo(
        row.sid,
        row.login,
        row.password_hash,
        row.first_name,
        row.last_name,
        row.email,
        row.phone_number,
        row.details,
        row.role,
        row.parent_sid,
        row.callback_url,
        row.created,
        rooms,
    )


# --- lookups ----------------------------------------------------------------------------------


async def call_flow_row(session: AsyncSession, flow_id: int) -> CallFlow:
    row = await session.get(CallFlow, flow_id)
    if row is None:
        raise NotFoundError(f"call flow {flow_id} does not exist")
    return row


async def did_group_row(session: AsyncSession, group_id: int) -> DidGroup:
    row = await session.get(DidGroup, group_id)
    if row is None:
        raise NotFoundError(f"DID group {group_id} does not exist")
    return row


async def did_row(session: AsyncSession, did_id: int) -> Did:
    row = await session.get(Did, did_id)
    if row is None:
        raise NotFoundError(f"DID {did_id} does not exist")
    return row


async def room_row(session: AsyncSession, meeting_number: int) -> MeetingRoom:
    query = select(MeetingRoom).where(MeetingRoom.meeting_number == meeting_number)
    row = await session.scalar(query)
    if row is None:
        raise NotFoundError(f"meeting room {meeting_number} does not exist")
    return row


async def subscriber_row(session: AsyncSession, sid: str) -> Subscriber:
    row = await session.get(Subscriber, sid)
    if row is None:
        raise NotFoundError(f"subscriber {sid!r} does not exist")
    return row


async def did_group_by_name(session: AsyncSession, name: str) -> DidGroup | None:
    return await session.scalar(select(DidGroup).where(DidGroup.name == name))


async def did_by_number(session: AsyncSession, e164: str) -> Did | None:
    return await session.scalar(select(Did).where(Did.phone_number == e164))


async def subscriber_by_login(session: AsyncSession, login: str) -> Subscriber | None:
    return await session.scalar(select(Subscriber).where(Subscriber.login == login))


async def room_by_code(
    session: AsyncSession, did_group_id: int, code: str
) -> tuple[RoomInfo, Role] | None:
    """The room a code opens when dialled through ``did_group_id`` (active references only)."""
    query = (
        select(MeetingRoom, MeetingKey.role)
        .join(AccessCodeClaim, AccessCodeClaim.room_id == MeetingRoom.id)
        .join(MeetingKey, MeetingKey.room_id == MeetingRoom.id)
        .join(RoomDidGroup, RoomDidGroup.room_id == MeetingRoom.id)
        .where(
            AccessCodeClaim.did_group_id == did_group_id,
            AccessCodeClaim.access_code == code,
            MeetingKey.access_code == code,
            RoomDidGroup.did_group_id == did_group_id,
            RoomDidGroup.state == 0,
        )
    )
    found = (await session.execute(query)).first()
    if found is None:
        return None
    room, role = found
    return room_info(room), Role(role)


# --- DID groups -------------------------------------------------------------------------------


async def write_did_group(session: AsyncSession, row: DidGroup, spec: DidGroupSpec) -> None:
    """Validate ``spec`` and copy it onto ``row`` (new or existing)."""
    if not spec.name.strip():
        raise InvalidDataError("a DID group needs a name")
    other = await did_group_by_name(session, spec.name)
    if other is not None and other is not row:
        raise ConflictError(f"DID group name {spec.name!r} is already used by group {other.id}")
    flow = await call_flow_row(session, spec.call_flow_id)
    values = _checked_attributes(spec.attributes, Level.DID_GROUP)
    try:  # keypad bindings are set at this level only, so collisions are caught here
        attributes.resolve(flow.attributes, values, None, None)
    except AttributeValueError as exc:
        raise InvalidDataError(str(exc)) from exc
    if spec.subscriber_sid is not None:
        await subscriber_row(session, spec.subscriber_sid)
    row.name, row.description, row.call_flow = spec.name, spec.description, flow
    row.subscriber_sid, row.attributes = spec.subscriber_sid, values


async def delete_did_group(session: AsyncSession, group_id: int) -> None:
    row = await did_group_row(session, group_id)
    dids = await session.scalar(select(func.count()).where(Did.did_group_id == group_id))
    rooms = await session.scalar(select(func.count()).where(RoomDidGroup.did_group_id == group_id))
    if dids or rooms:
        raise ConflictError(
            f"DID group {group_id} still has {dids} DID(s) and {rooms} meeting room reference(s)"
        )
    await session.delete(row)


# --- DIDs -------------------------------------------------------------------------------------


async def write_did(session: AsyncSession, row: Did, spec: DidSpec) -> None:
    e164 = numbers.normalize(spec.phone_number)
    if e164 is None:
        raise InvalidDataError(f"{spec.phone_number!r} is not a valid phone number")
    other = await did_by_number(session, e164)
    if other is not None and other is not row:
        raise ConflictError(f"phone number {e164} is already DID {other.id}")
    group = await did_group_row(session, spec.did_group_id)
    row.attributes = _checked_attributes(spec.attributes, Level.DID)
    row.phone_number, row.country_code = e164, numbers.country_of(e164) or ""
    row.description, row.did_group = spec.description, group


# --- meeting rooms ----------------------------------------------------------------------------


def _check_codes(spec: RoomSpec) -> None:
    for what, values in (
        ("access code", [key.code for key in spec.keychain]),
        ("PIN", [pin.pin for pin in spec.pins]),
    ):
        for value in values:
            if not CODE_PATTERN.fullmatch(value):
                raise InvalidDataError(f"{what} {value!r} must be 1-32 keys of 0-9 and *")
            if values.count(value) > 1:
                raise ConflictError(f"{what} {value!r} appears twice in the room")


async def _free_meeting_number(session: AsyncSession) -> int:
    for _ in range(_MEETING_NUMBER_TRIES):
        candidate = 100000 + secrets.randbelow(900000)
        if await session.scalar(select(MeetingRoom.id).where(
            MeetingRoom.meeting_number == candidate
        )) is None:  # fmt: skip
            return candidate
    raise ConflictError("no free meeting number found")


async def _references(session: AsyncSession, spec: RoomSpec) -> dict[int, int]:
    refs = {spec.primary_did_group_id: 0}
    refs.update({ref.did_group_id: ref.state for ref in spec.did_group_refs})
    for group_id, state in refs.items():
        await did_group_row(session, group_id)
        if state not in (0, 1, 2):
            raise InvalidDataError(f"DID group reference state {state} is not 0, 1 or 2")
    return refs


async def claim_codes(session: AsyncSession, room: MeetingRoom) -> None:
    """Rewrite the room's claims, refusing a code another room holds in a shared group."""
    codes = [key.access_code for key in room.keys]
    refs = [ref.did_group_id for ref in room.references]
    await session.execute(delete(AccessCodeClaim).where(AccessCodeClaim.room_id == room.id))
    if not codes:
        return
    taken = await session.execute(
        select(AccessCodeClaim.access_code, AccessCodeClaim.did_group_id, MeetingRoom)
        .join(MeetingRoom, MeetingRoom.id == AccessCodeClaim.room_id)
        .where(AccessCodeClaim.did_group_id.in_(refs), AccessCodeClaim.access_code.in_(codes))
    )
    for code, group_id, other in taken:
        raise AccessCodeConflictError(
            f"access code {code!r} is already used by meeting room {other.meeting_number}, "
            f"which DID group {group_id} also reaches",
            code,
        )
    session.add_all(
        AccessCodeClaim(did_group_id=group_id, access_code=code, room_id=room.id)
        for group_id in refs
        for code in codes
    )


def _sync_children(row: MeetingRoom, spec: RoomSpec, refs: dict[int, int]) -> None:
    """Edit keys, PINs and references in place.

    In place, not replace: a new row with the same unique key as a removed one would be
    INSERTed before the DELETE is flushed and break the unique constraint; it also keeps the
    keychain ids stable for the REST API.
    """
    roles = {key.code: int(key.role) for key in spec.keychain}
    row.keys = [key for key in row.keys if key.access_code in roles]
    for key in row.keys:
        key.role = roles.pop(key.access_code)
    row.keys.extend(MeetingKey(access_code=code, role=role) for code, role in roles.items())
    organizer = {pin.pin: pin.organizer for pin in sorted(spec.pins)}
    row.pins = [pin for pin in row.pins if pin.pin in organizer]
    for pin in row.pins:
        pin.organizer = organizer.pop(pin.pin)
    row.pins.extend(Pin(pin=pin, organizer=flag) for pin, flag in organizer.items())
    states = dict(refs)
    row.references = [ref for ref in row.references if ref.did_group_id in states]
    for ref in row.references:
        ref.state = states.pop(ref.did_group_id)
    row.references.extend(
        RoomDidGroup(did_group_id=group_id, state=state) for group_id, state in states.items()
    )


async def write_room(session: AsyncSession, row: MeetingRoom, spec: RoomSpec) -> None:
    _check_codes(spec)
    new = inspect(row).transient
    number = spec.meeting_number
    if number is None:
        number = await _free_meeting_number(session) if new else row.meeting_number
    if number <= 0:
        raise InvalidDataError(f"meeting number {number} must be positive")
    other = await session.scalar(select(MeetingRoom).where(MeetingRoom.meeting_number == number))
    if other is not None and other is not row:
        raise ConflictError(f"meeting number {number} is already used")
    refs = await _references(session, spec)
    if spec.subscriber_sid is not None:
        await subscriber_row(session, spec.subscriber_sid)
    row.attributes = _checked_attributes(spec.attributes, Level.ROOM)
    row.meeting_number, row.description = number, spec.description
    row.primary_did_group_id, row.subscriber_sid = spec.primary_did_group_id, spec.subscriber_sid
    _sync_children(row, spec, refs)
    if new:
        session.add(row)
    await session.flush()
    await claim_codes(session, row)
    await session.flush()


# --- subscribers ------------------------------------------------------------------------------


async def write_subscriber(session: AsyncSession, row: Subscriber, spec: SubscriberSpec) -> bool:
    """Copy ``spec`` onto ``row``; True when the password changed (a new hash was made)."""
    if not spec.login.strip():
        raise InvalidDataError("a subscriber needs a login")
    other = await subscriber_by_login(session, spec.login)
    if other is not None and other is not row:
        raise ConflictError(f"login {spec.login!r} is already used")
    if spec.role not in (1, 2, 3):
        raise InvalidDataError(f"subscriber role {spec.role} is not 1, 2 or 3")
    if spec.parent_sid is not None:
        await subscriber_row(session, spec.parent_sid)
    row.login, row.first_name, row.last_name = spec.login, spec.first_name, spec.last_name
    row.email, row.phone_number, row.details = spec.email, spec.phone_number, spec.details
    row.role, row.parent_sid, row.callback_url = spec.role, spec.parent_sid, spec.callback_url
    changed = spec.password is not None and not verify_password(
        spec.password, row.password_hash or ""
    )
    if spec.password is not None and changed:
        row.password_hash = hash_password(spec.password)
    return changed


def new_sid() -> str:
    """A fresh subscriber secure id (32 URL-safe characters, as in the spec's samples)."""
    return secrets.token_urlsafe(24)


def stamp(now: datetime) -> datetime:
    """Timestamps are whole milliseconds: the API shows UNIX milliseconds."""
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
