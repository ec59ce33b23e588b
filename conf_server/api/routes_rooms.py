"""``/meetingRooms`` with keychain and PINs, also under ``/subscribers/{sid}/meetingRooms``.

Sources: Meeting Rooms, Meeting Key and the subscriber-scoped room sections of
``seeds/004_…``; Horn's dial-in PIN management (``seeds/000_…``: list, set with
``organizer``, delete; an empty list means the room is open).

Theory of operation
-------------------
The same handlers serve both paths; the subscriber-scoped one adds ``scope`` (the sid in the
path), and a room outside the scope is "not found". Regular users see and change only their own
rooms, operators read every room, administrators do everything. A PUT changes the fields sent:
``attributes`` merge by name, ``keychain``, ``didGroupReferences`` and ``pins`` replace the
whole array; ``subscriberSid`` hands the room to another subscriber (administrators only; a
missing subscriber is a 422). Keys are matched by access code in the store, so changing a key's
code gives it a new id. A key created without ``accessCode`` gets a random free six-digit one.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from conf_server.api import shapes
from conf_server.api.auth import Principal
from conf_server.api.bodies import KeyCreate, KeyIn, KeyUpdate, PinIn, RoomCreate, RoomUpdate
from conf_server.api.context import Ctx, Id, Who, item_query, list_query, store_errors
from conf_server.api.errors import (
    ConflictApiError,
    NotFoundApiError,
    PermissionDeniedError,
    ValidationApiError,
)
from conf_server.api.routes_numbers import merge_attributes
from conf_server.store import (
    DidGroupRef,
    KeySpec,
    PinSpec,
    Role,
    RoomInfo,
    RoomSpec,
)
from conf_server.store.errors import AccessCodeConflictError

router = APIRouter()
Json = dict[str, Any]
_CODE_TRIES: Final = 16
_SUB = "/subscribers/{sid}/meetingRooms"


def _role(value: int | str, field: str) -> Role:
    try:
        return Role.parse(value)
    except ValueError as exc:
        raise ValidationApiError.one(field, str(exc)) from None


def _keys(keys: list[KeyIn]) -> tuple[KeySpec, ...]:
    return tuple(KeySpec(k.access_code, _role(k.role, "keychain.role")) for k in keys)


async def load_room(
    ctx: Ctx, who: Principal, number: Id, scope: str | None, write: bool
) -> RoomInfo:
    with store_errors("meeting room"):
        room = await ctx.store.get_room(number)
    if scope is not None and room.subscriber_sid != scope:
        raise NotFoundApiError("meeting room")
    if write:
        who.require_write(room.subscriber_sid)
    else:
        who.require_owner(room.subscriber_sid)
    return room


def _check_scope(who: Principal, scope: str | None, write: bool) -> None:
    if scope is None:
        return
    if write:
        who.require_write(scope)
    else:
        who.require_owner(scope)


async def _save(ctx: Ctx, room: RoomInfo, spec: RoomSpec) -> RoomInfo:
    with store_errors("meeting room", writing=True):
        return await ctx.store.update_room(room.meeting_number, spec)


# --- rooms --------------------------------------------------------------------------------------


async def _create(ctx: Ctx, who: Principal, body: RoomCreate, scope: str | None) -> Json:
    owner = scope or body.subscriber_sid or who.sid
    if body.subscriber_sid is not None and scope is not None and body.subscriber_sid != scope:
        raise ValidationApiError.one("subscriberSid", "differs from the subscriber in the path")
    who.require_write(owner)
    spec = RoomSpec(
        primary_did_group_id=body.primary_did_group_id,
        meeting_number=body.meeting_number,
        description=body.description,
        did_group_refs=tuple(
            DidGroupRef(r.did_group_id, r.state) for r in body.did_group_references
        ),
        keychain=_keys(body.keychain),
        pins=tuple(PinSpec(p.pin, p.organizer) for p in body.pins),
        subscriber_sid=owner,
        attributes=merge_attributes({}, body.attributes),
    )
    with store_errors("meeting room", writing=True):
        return shapes.room(await ctx.store.create_room(spec))


async def _list(request: Request, ctx: Ctx, who: Principal, scope: str | None) -> Json:
    _check_scope(who, scope, write=False)
    query = list_query(request, shapes.ROOM_FIELDS)
    rooms = (await ctx.store.list_rooms()).items
    visible = [
        r
        for r in rooms
        if (scope is None or r.subscriber_sid == scope)
        and (who.live_operator or r.subscriber_sid == who.sid)
    ]
    return query.envelope("meetingRooms", [shapes.room(r) for r in visible])


async def _update(
    ctx: Ctx, who: Principal, number: Id, body: RoomUpdate, scope: str | None
) -> Json:
    room = await load_room(ctx, who, number, scope, write=True)
    spec = room.spec()
    changes: dict[str, Any] = {"attributes": merge_attributes(room.attributes, body.attributes)}
    if body.primary_did_group_id is not None:
        changes["primary_did_group_id"] = body.primary_did_group_id
    if body.meeting_number is not None:
        changes["meeting_number"] = body.meeting_number
    if body.description is not None:
        changes["description"] = body.description
    if body.did_group_references is not None:
        changes["did_group_refs"] = tuple(
            DidGroupRef(r.did_group_id, r.state) for r in body.did_group_references
        )
    if body.keychain is not None:
        changes["keychain"] = _keys(body.keychain)
    if body.pins is not None:
        changes["pins"] = tuple(PinSpec(p.pin, p.organizer) for p in body.pins)
    if body.subscriber_sid is not None and body.subscriber_sid != room.subscriber_sid:
        who.require_admin()  # giving a room away (or taking one) is an administrator's act
        changes["subscriber_sid"] = body.subscriber_sid
    return shapes.room(await _save(ctx, room, dataclasses.replace(spec, **changes)))


@router.post("/meetingRooms", status_code=201)
async def create_room(body: RoomCreate, ctx: Ctx, who: Who) -> Json:
    return await _create(ctx, who, body, None)


@router.post(_SUB)
async def create_subscriber_room(sid: str, body: RoomCreate, ctx: Ctx, who: Who) -> Json:
    return await _create(ctx, who, body, sid)


@router.get("/meetingRooms")
async def list_rooms(request: Request, ctx: Ctx, who: Who) -> Json:
    return await _list(request, ctx, who, None)


@router.get(_SUB)
async def list_subscriber_rooms(sid: str, request: Request, ctx: Ctx, who: Who) -> Json:
    return await _list(request, ctx, who, sid)


@router.get("/meetingRooms/{number}")
async def get_room(number: Id, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.ROOM_FIELDS)
    return query.trim(shapes.room(await load_room(ctx, who, number, None, write=False)))


@router.get(_SUB + "/{number}")
async def get_subscriber_room(sid: str, number: Id, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.ROOM_FIELDS)
    return query.trim(shapes.room(await load_room(ctx, who, number, sid, write=False)))


@router.put("/meetingRooms/{number}")
async def update_room(number: Id, body: RoomUpdate, ctx: Ctx, who: Who) -> Json:
    return await _update(ctx, who, number, body, None)


@router.put(_SUB + "/{number}")
async def update_subscriber_room(
    sid: str, number: Id, body: RoomUpdate, ctx: Ctx, who: Who
) -> Json:
    return await _update(ctx, who, number, body, sid)


async def _delete(ctx: Ctx, who: Principal, number: Id, scope: str | None) -> Response:
    await load_room(ctx, who, number, scope, write=True)
    with store_errors("meeting room"):
        await ctx.store.delete_room(number)
    return Response(status_code=204)


@router.delete("/meetingRooms/{number}", status_code=204)
async def delete_room(number: Id, ctx: Ctx, who: Who) -> Response:
    return await _delete(ctx, who, number, None)


@router.delete(_SUB + "/{number}", status_code=204)
async def delete_subscriber_room(sid: str, number: Id, ctx: Ctx, who: Who) -> Response:
    return await _delete(ctx, who, number, sid)


@router.get("/meetingRooms/{number}/attributes")
async def room_attributes(number: Id, ctx: Ctx, who: Who) -> list[Json]:
    room = await load_room(ctx, who, number, None, write=False)
    return shapes.attribute_list(room.attributes)


# --- keychain -----------------------------------------------------------------------------------


def _key_by_id(room: RoomInfo, key_id: Id) -> KeySpec:
    for key in room.keychain:
        if key.id == key_id:
            return KeySpec(key.code, key.role)
    raise NotFoundApiError("meeting key")


def _saved_key(room: RoomInfo, code: str) -> Json:
    key = next(k for k in room.keychain if k.code == code)
    return shapes.key(key, room.id)


async def _add_key(
    ctx: Ctx, who: Principal, number: Id, body: KeyCreate, scope: str | None
) -> Json:
    room = await load_room(ctx, who, number, scope, write=True)
    role = _role(body.role, "role")
    keys = room.spec().keychain
    if body.access_code is not None:
        if any(k.code == body.access_code for k in keys):
            raise ConflictApiError(
                f"access code {body.access_code!r} is already in this room", "accessCode"
            )
        spec = dataclasses.replace(room.spec(), keychain=(*keys, KeySpec(body.access_code, role)))
        return _saved_key(await _save(ctx, room, spec), body.access_code)
    for _ in range(_CODE_TRIES):
        code = f"{100000 + secrets.randbelow(900000)}"
        spec = dataclasses.replace(room.spec(), keychain=(*keys, KeySpec(code, role)))
        try:
            saved = await ctx.store.update_room(room.meeting_number, spec)
        except AccessCodeConflictError:
            continue  # a random code another room holds: draw again
        return _saved_key(saved, code)
    raise ConflictApiError("no free access code found", "accessCode")


async def _keychain(
    request: Request, ctx: Ctx, who: Principal, number: Id, scope: str | None
) -> list[dict[str, Any]]:
    room = await load_room(ctx, who, number, scope, write=False)
    page, _ = list_query(request, shapes.KEY_FIELDS).select([shapes.key(k) for k in room.keychain])
    return page


async def _update_key(
    ctx: Ctx, who: Principal, number: Id, key_id: Id, body: KeyUpdate, *, scope: str | None
) -> Json:
    room = await load_room(ctx, who, number, scope, write=True)
    old = _key_by_id(room, key_id)
    new = KeySpec(
        body.access_code if body.access_code is not None else old.code,
        _role(body.role, "role") if body.role is not None else old.role,
    )
    keys = tuple(new if k == old else k for k in room.spec().keychain)
    return _saved_key(
        await _save(ctx, room, dataclasses.replace(room.spec(), keychain=keys)), new.code
    )


async def _delete_key(
    ctx: Ctx, who: Principal, number: Id, key_id: Id, scope: str | None
) -> Response:
    room = await load_room(ctx, who, number, scope, write=True)
    old = _key_by_id(room, key_id)
    keys = tuple(k for k in room.spec().keychain if k != old)
    await _save(ctx, room, dataclasses.replace(room.spec(), keychain=keys))
    return Response(status_code=204)


_KEYS = "/meetingRooms/{number}/keychain"


@router.post(_KEYS)
async def add_key(number: Id, body: KeyCreate, ctx: Ctx, who: Who) -> Json:
    return await _add_key(ctx, who, number, body, None)


@router.post(_SUB + "/{number}/keychain")
async def add_subscriber_key(sid: str, number: Id, body: KeyCreate, ctx: Ctx, who: Who) -> Json:
    return await _add_key(ctx, who, number, body, sid)


@router.get(_KEYS)
async def list_keys(number: Id, request: Request, ctx: Ctx, who: Who) -> list[Json]:
    return await _keychain(request, ctx, who, number, None)


@router.get(_SUB + "/{number}/keychain")
async def list_subscriber_keys(
    sid: str, number: Id, request: Request, ctx: Ctx, who: Who
) -> list[Json]:
    return await _keychain(request, ctx, who, number, sid)


async def _get_key(ctx: Ctx, who: Principal, number: Id, key_id: Id, scope: str | None) -> Json:
    room = await load_room(ctx, who, number, scope, write=False)
    found = next((k for k in room.keychain if k.id == key_id), None)
    if found is None:
        raise NotFoundApiError("meeting key")
    return shapes.key(found)


@router.get(_KEYS + "/{key_id}")
async def get_key(number: Id, key_id: Id, ctx: Ctx, who: Who) -> Json:
    return await _get_key(ctx, who, number, key_id, None)


@router.get(_SUB + "/{number}/keychain/{key_id}")
async def get_subscriber_key(sid: str, number: Id, key_id: Id, ctx: Ctx, who: Who) -> Json:
    return await _get_key(ctx, who, number, key_id, sid)


@router.put(_KEYS + "/{key_id}")
async def update_key(number: Id, key_id: Id, body: KeyUpdate, ctx: Ctx, who: Who) -> Json:
    return await _update_key(ctx, who, number, key_id, body, scope=None)


@router.put(_SUB + "/{number}/keychain/{key_id}")
async def update_subscriber_key(
    sid: str, number: Id, key_id: Id, body: KeyUpdate, *, ctx: Ctx, who: Who
) -> Json:
    return await _update_key(ctx, who, number, key_id, body, scope=sid)


@router.delete(_KEYS + "/{key_id}", status_code=204)
async def delete_key(number: Id, key_id: Id, ctx: Ctx, who: Who) -> Response:
    return await _delete_key(ctx, who, number, key_id, None)


@router.delete(_SUB + "/{number}/keychain/{key_id}", status_code=204)
async def delete_subscriber_key(sid: str, number: Id, key_id: Id, ctx: Ctx, who: Who) -> Response:
    return await _delete_key(ctx, who, number, key_id, sid)


# --- PINs (Horn) --------------------------------------------------------------------------------


async def _pin_room(ctx: Ctx, who: Principal, number: Id) -> RoomInfo:
    # PINs are secrets of the room: only its owner and administrators see them.
    room = await load_room(ctx, who, number, None, write=False)
    if not who.admin and room.subscriber_sid != who.sid:
        raise PermissionDeniedError
    return room


@router.get("/meetingRooms/{number}/pins")
async def list_pins(number: Id, ctx: Ctx, who: Who) -> list[Json]:
    room = await _pin_room(ctx, who, number)
    return [shapes.pin(p) for p in room.pins]


@router.post("/meetingRooms/{number}/pins")
async def add_pin(number: Id, body: PinIn, ctx: Ctx, who: Who) -> Json:
    room = await _pin_room(ctx, who, number)
    if any(p.pin == body.pin for p in room.pins):
        raise ConflictApiError("this PIN is already set on the room", "pin")
    pins = (*room.spec().pins, PinSpec(body.pin, body.organizer))
    saved = await _save(ctx, room, dataclasses.replace(room.spec(), pins=pins))
    return shapes.pin(next(p for p in saved.pins if p.pin == body.pin))


@router.delete("/meetingRooms/{number}/pins/{pin}", status_code=204)
async def delete_pin(number: Id, pin: str, ctx: Ctx, who: Who) -> Response:
    room = await _pin_room(ctx, who, number)
    if not any(p.pin == pin for p in room.pins):
        raise NotFoundApiError("PIN")
    pins = tuple(p for p in room.spec().pins if p.pin != pin)
    await _save(ctx, room, dataclasses.replace(room.spec(), pins=pins))
    return Response(status_code=204)
