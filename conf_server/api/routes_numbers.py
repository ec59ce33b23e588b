"""``/callFlows``, ``/dids`` and ``/didGroups`` (CarrierX Conference API v1).

Source: the Call Flows, DIDs and DID Groups sections of ``seeds/004_…``. Every
authenticated subscriber may read them (a room owner needs the DID group ids); only an
administrator writes. A PUT changes the fields sent; ``attributes`` are merged by name (a null
value removes an override), as the spec's rule for nested objects says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from conf_server.api import shapes
from conf_server.api.bodies import (
    AttributeIn,
    DidCreate,
    DidGroupCreate,
    DidGroupUpdate,
    DidUpdate,
)
from conf_server.api.context import Ctx, Id, Who, item_query, list_query, store_errors
from conf_server.store import DidGroupSpec, DidInfo, DidSpec

router = APIRouter()
Json = dict[str, Any]


def merge_attributes(
    current: Mapping[str, str], changes: Sequence[AttributeIn] | None
) -> dict[str, object]:
    """Apply a PUT's ``attributes`` array to the current overrides."""
    merged: dict[str, object] = dict(current)
    for change in changes or ():
        if change.value is None:
            merged.pop(change.name, None)
        else:
            merged[change.name] = change.value
    return merged


# --- call flows ---------------------------------------------------------------------------------


@router.get("/callFlows")
async def list_call_flows(request: Request, ctx: Ctx, who: Who) -> Json:
    query = list_query(request, shapes.CALL_FLOW_FIELDS)
    flows = await ctx.store.list_call_flows()
    return query.envelope("callFlows", [shapes.call_flow(f) for f in flows.items])


@router.get("/callFlows/{flow_id}")
async def get_call_flow(flow_id: Id, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.CALL_FLOW_FIELDS)
    with store_errors("call flow"):
        flow = await ctx.store.get_call_flow(flow_id)
    return query.trim(shapes.call_flow(flow))


# --- DIDs ---------------------------------------------------------------------------------------


@router.post("/dids")
async def create_did(body: DidCreate, ctx: Ctx, who: Who) -> Json:
    who.require_admin()
    spec = DidSpec(
        body.phone_number,
        body.did_group_id,
        body.description,
        merge_attributes({}, body.attributes),
    )
    with store_errors("DID", writing=True):
        return shapes.did(await ctx.store.create_did(spec))


@router.get("/dids")
async def list_dids(request: Request, ctx: Ctx, who: Who) -> Json:
    query = list_query(request, shapes.DID_FIELDS)
    dids = await ctx.store.list_dids()
    return query.envelope("dids", [shapes.did(d) for d in dids.items])


async def _did(ctx: Ctx, did_id: Id) -> DidInfo:
    with store_errors("DID"):
        return await ctx.store.get_did(did_id)


@router.get("/dids/{did_id}")
async def get_did(did_id: Id, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.DID_FIELDS)
    return query.trim(shapes.did(await _did(ctx, did_id)))


@router.put("/dids/{did_id}")
async def update_did(did_id: Id, body: DidUpdate, ctx: Ctx, who: Who) -> Json:
    who.require_admin()
    current = await _did(ctx, did_id)
    spec = current.spec()
    sent = body.model_fields_set
    spec = dataclasses.replace(
        spec,
        phone_number=body.phone_number
        if "phone_number" in sent and body.phone_number
        else spec.phone_number,
        did_group_id=body.did_group_id if body.did_group_id is not None else spec.did_group_id,
        description=body.description if body.description is not None else spec.description,
        attributes=merge_attributes(current.attributes, body.attributes),
    )
    with store_errors("DID", writing=True):
        return shapes.did(await ctx.store.update_did(did_id, spec))


@router.delete("/dids/{did_id}", status_code=204)
async def delete_did(did_id: Id, ctx: Ctx, who: Who) -> Response:
    who.require_admin()
    with store_errors("DID"):
        await ctx.store.delete_did(did_id)
    return Response(status_code=204)


# --- DID groups ---------------------------------------------------------------------------------


async def _group_shape(ctx: Ctx, group_id: Id) -> Json:
    with store_errors("DID group"):
        group = await ctx.store.get_did_group(group_id)
        dids = await ctx.store.did_group_dids(group_id)
    return shapes.did_group(group, dids)


@router.post("/didGroups")
async def create_did_group(body: DidGroupCreate, ctx: Ctx, who: Who) -> Json:
    who.require_admin()
    spec = DidGroupSpec(
        body.name, body.call_flow_id, body.description, None, merge_attributes({}, body.attributes)
    )
    with store_errors("DID group", writing=True):
        group = await ctx.store.create_did_group(spec)
    return shapes.did_group(group, [])


@router.get("/didGroups")
async def list_did_groups(request: Request, ctx: Ctx, who: Who) -> Json:
    query = list_query(request, shapes.DID_GROUP_FIELDS)
    groups = await ctx.store.list_did_groups()
    dids = await ctx.store.list_dids()
    by_group: dict[int, list[DidInfo]] = {}
    for d in dids.items:
        by_group.setdefault(d.did_group.id, []).append(d)
    items = [shapes.did_group(g, by_group.get(g.id, [])) for g in groups.items]
    return query.envelope("didGroups", items)


@router.get("/didGroups/{group_id}")
async def get_did_group(group_id: Id, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, shapes.DID_GROUP_FIELDS)
    return query.trim(await _group_shape(ctx, group_id))


@router.put("/didGroups/{group_id}")
async def update_did_group(group_id: Id, body: DidGroupUpdate, ctx: Ctx, who: Who) -> Json:
    who.require_admin()
    with store_errors("DID group"):
        current = await ctx.store.get_did_group(group_id)
    spec = current.spec()
    spec = dataclasses.replace(
        spec,
        name=body.name if body.name is not None else spec.name,
        call_flow_id=body.call_flow_id if body.call_flow_id is not None else spec.call_flow_id,
        description=body.description if body.description is not None else spec.description,
        attributes=merge_attributes(current.attributes, body.attributes),
    )
    with store_errors("DID group", writing=True):
        await ctx.store.update_did_group(group_id, spec)
    return await _group_shape(ctx, group_id)


@router.delete("/didGroups/{group_id}", status_code=204)
async def delete_did_group(group_id: Id, ctx: Ctx, who: Who) -> Response:
    who.require_admin()
    with store_errors("DID group"):
        await ctx.store.delete_did_group(group_id)
    return Response(status_code=204)
