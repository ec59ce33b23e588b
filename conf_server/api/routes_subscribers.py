"""``/subscribers``: CRUD, ``whoami``, ``logout`` and media ``files``.

Source: the Subscribers and File Descriptor sections of ``seeds/004_…``. Administrators
manage every subscriber (a new one's ``parentSid`` is its creator); operators read them;
a regular user reads and updates only their own record and may not change its role. The
``password`` is write-only; ``callback.url`` or ``eventCallbackUrl`` set the event callback.
``logout`` forgets the cached password check (Basic auth has no session to end).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Request, Response, UploadFile

from conf_server.api import shapes
from conf_server.api.auth import Principal
from conf_server.api.bodies import SubscriberCreate, SubscriberUpdate
from conf_server.api.context import Ctx, Who, item_query, list_query, store_errors
from conf_server.api.errors import ConflictApiError, PermissionDeniedError, ValidationApiError
from conf_server.api.files import FileStore, check_name
from conf_server.api.query import ListQuery
from conf_server.store import SubscriberInfo, SubscriberSpec

router = APIRouter()
Json = dict[str, Any]


async def _shape(ctx: Ctx, info: SubscriberInfo) -> Json:
    groups = (await ctx.store.list_did_groups()).items
    return shapes.subscriber(info, [g.id for g in groups if g.subscriber_sid == info.sid])


def _callback(body: SubscriberCreate | SubscriberUpdate) -> str | None:
    from_object = body.callback.url if body.callback is not None else None
    url = body.event_callback_url
    if url is not None and from_object is not None and url != from_object:
        raise ValidationApiError.one("eventCallbackUrl", "differs from callback.url")
    url = url if url is not None else from_object
    if url and not url.startswith(("http://", "https://")):
        raise ValidationApiError.one("callback.url", "must be an http:// or https:// URL")
    return url


async def _load(ctx: Ctx, who: Principal, sid: str) -> SubscriberInfo:
    if not who.live_operator and sid != who.sid:
        raise PermissionDeniedError
    with store_errors("subscriber"):
        return await ctx.store.get_subscriber(sid)


@router.post("/subscribers")
async def create_subscriber(body: SubscriberCreate, ctx: Ctx, who: Who) -> Json:
    who.require_admin()
    spec = SubscriberSpec(
        login=body.login,
        password=body.password,
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email,
        phone_number=body.phone_number,
        details=body.details,
        role=body.role,
        parent_sid=who.sid,
        callback_url=_callback(body) or "",
    )
    with store_errors("subscriber", writing=True):
        return await _shape(ctx, await ctx.store.create_subscriber(spec))


@router.get("/subscribers")
async def list_subscribers(request: Request, ctx: Ctx, who: Who) -> Json:
    query = list_query(request, shapes.SUBSCRIBER_FIELDS)
    found = (await ctx.store.list_subscribers()).items
    visible = [s for s in found if who.live_operator or s.sid == who.sid]
    groups = (await ctx.store.list_did_groups()).items
    items = [
        shapes.subscriber(s, [g.id for g in groups if g.subscriber_sid == s.sid]) for s in visible
    ]
    return query.envelope("subscribers", items)


@router.get("/subscribers/whoami")
async def whoami(request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.SUBSCRIBER_FIELDS)
    return query.trim(await _shape(ctx, await _load(ctx, who, who.sid)))


@router.post("/subscribers/logout", status_code=204)
async def logout(ctx: Ctx, who: Who) -> Response:
    ctx.auth.forget(who.login)
    return Response(status_code=204)


@router.get("/subscribers/{sid}")
async def get_subscriber(sid: str, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.SUBSCRIBER_FIELDS)
    return query.trim(await _shape(ctx, await _load(ctx, who, sid)))


@router.put("/subscribers/{sid}")
async def update_subscriber(sid: str, body: SubscriberUpdate, ctx: Ctx, who: Who) -> Json:
    current = await _load(ctx, who, sid)
    if not who.admin and (sid != who.sid or (body.role is not None and body.role != current.role)):
        raise PermissionDeniedError
    sent = {name: getattr(body, name) for name in body.model_fields_set}
    sent.pop("callback", None)
    sent.pop("event_callback_url", None)
    changes = {k: v for k, v in sent.items() if v is not None}
    url = _callback(body)
    if url is not None:
        changes["callback_url"] = url
    spec = dataclasses.replace(current.spec(), **changes)
    with store_errors("subscriber", writing=True):
        updated = await ctx.store.update_subscriber(sid, spec)
    ctx.auth.forget(current.login)  # a new password or role counts from the next request
    return await _shape(ctx, updated)


@router.delete("/subscribers/{sid}", status_code=204)
async def delete_subscriber(sid: str, ctx: Ctx, who: Who) -> Response:
    who.require_admin()
    if sid == who.sid:
        raise ConflictApiError("an administrator cannot delete their own subscriber", "sid")
    with store_errors("subscriber"):
        gone = await ctx.store.get_subscriber(sid)
        await ctx.store.delete_subscriber(sid)
    ctx.auth.forget(gone.login)
    return Response(status_code=204)


# --- media files --------------------------------------------------------------------------------


def _files(request: Request) -> FileStore:
    found: FileStore = request.app.state.files
    return found


async def _file_owner(ctx: Ctx, who: Principal, sid: str, write: bool) -> None:
    await _load(ctx, who, sid)
    if write and not who.admin and sid != who.sid:
        raise PermissionDeniedError


@router.post("/subscribers/{sid}/files")
async def upload_file(
    sid: str, request: Request, ctx: Ctx, who: Who, file: Annotated[UploadFile, File()]
) -> Json:
    await _file_owner(ctx, who, sid, write=True)
    limit = ctx.settings.max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ValidationApiError.one("file", f"files are limited to {limit} bytes")
    name = check_name(file.filename or "")
    saved = await _files(request).save(sid, name, data)
    return saved.shape()


@router.get("/subscribers/{sid}/files")
async def list_files(sid: str, request: Request, ctx: Ctx, who: Who) -> Json:
    await _file_owner(ctx, who, sid, write=False)
    query = ListQuery.parse(request.query_params, shapes.FILE_FIELDS)
    found = await _files(request).list_files(sid)
    return query.envelope("fileDescriptors", [f.shape() for f in found])


@router.delete("/subscribers/{sid}/files", status_code=204)
async def delete_files(
    sid: str, request: Request, ctx: Ctx, who: Who, names: Annotated[list[str], Body()]
) -> Response:
    await _file_owner(ctx, who, sid, write=True)
    await _files(request).delete(sid, names)
    return Response(status_code=204)


@router.delete("/subscribers/{sid}/files/{name}", status_code=204)
async def delete_file(sid: str, name: str, request: Request, ctx: Ctx, who: Who) -> Response:
    await _file_owner(ctx, who, sid, write=True)
    await _files(request).delete(sid, [name])
    return Response(status_code=204)
