"""Live ``/meetings`` and ``/calls``: read and control running meetings through ``LiveControl``.

Sources: the Meetings and Calls sections of ``seeds/004_…``; Sinch's conference
operations (``seeds/002_…``: info, mute/unmute a participant, kick one, kick all).

Theory of operation
-------------------
Every change goes through the one ``MeetingService`` (``outcome = service.op(..., now)``, then
``live.apply(outcome)``), so an operator's PUT and a host's keypad raise the same events. A
request is checked completely before the first change, so a 422 never leaves a call half
changed; the service does the checking (``check_gain``, ``check_mute``) and the API only names
the field in its error body. ``muteMode``/``holdMode`` take 0 (off) or 40 (on: by the
host/operator); a listener shows ``muteMode`` 32 (listeners are never heard). ``gainLevel`` is
the call's input gain in dB, within the mixer's limits (``media.mixer``, ±20 dB). Besides the
meeting's own attributes, ``PUT /meetings/{n}/attributes/{name}`` accepts three live switches,
``conference_locked``, ``conference_muted`` and ``conference_held`` (``on``/``off``): lock, mute
all and hold all; the counts ``conf_*_count`` are read-only. Regular users see and control only
the meetings of their own rooms. Live times are monotonic in the service; they are shown as UNIX
milliseconds by offsetting with the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from conf_server.api import shapes
from conf_server.api.auth import Principal
from conf_server.api.bodies import AttributeValue, CallUpdate
from conf_server.api.context import ApiContext, Ctx, Id, Owners, Who, item_query, list_query
from conf_server.api.errors import (
    ConflictApiError,
    LiveUnavailableError,
    NotFoundApiError,
    PermissionDeniedError,
    ValidationApiError,
)
from conf_server.api.query import Known
from conf_server.domain.attributes import Role
from conf_server.domain.errors import IllegalInputError
from conf_server.domain.live import LiveCallInfo, LiveControl
from conf_server.domain.meeting import (
    Meeting,
    MeetingError,
    MeetingState,
    NotAllowedError,
    UnknownCallError,
    UnknownMeetingError,
)
from conf_server.domain.service import MeetingService, Outcome

router = APIRouter()
Json = dict[str, Any]
ON_MODE: Final = 40
LISTENER_MODE: Final = 32
_NONE: Final = frozenset[str]()
MEETING_FIELDS: Final[Known] = dict.fromkeys(
    [
        "attributes",
        "created",
        "duration",
        "holdMode",
        "id",
        "isRecording",
        "isSecured",
        "locked",
        "meetingNumber",
        "muteMode",
        "participantCount",
        "qaMode",
        "state",
        "subscriberName",
        "type",
    ],
    _NONE,
)
CALL_FIELDS: Final[Known] = dict.fromkeys(
    [
        "accessCode",
        "addressFrom",
        "addressTo",
        "bridgeName",
        "callee",
        "caller",
        "codec",
        "connectionStatus",
        "created",
        "customName",
        "duration",
        "gainLevel",
        "holdMode",
        "id",
        "joined",
        "meetingNumber",
        "muteMode",
        "nodeName",
        "presenterMedia",
        "qaMode",
        "role",
        "state",
    ],
    _NONE,
)
NAME_VALUE: Final[Known] = {"name": _NONE, "value": _NONE}
_ON_OFF: Final = {"on": True, "off": False}
_SWITCHES: Final[Mapping[str, Callable[[MeetingService, str, bool, float], Outcome]]] = {
    "conference_locked": lambda s, room, on, now: s.lock(room, on, now),
    "conference_muted": lambda s, room, on, now: s.mute_all(room, on, now),
    "conference_held": lambda s, room, on, now: s.hold_all(room, on, now),
}
_READ_ONLY: Final = frozenset(
    {"conf_participants_count", "conf_hosts_count", "conf_listeners_count"}
)
_MEETING_STATE: Final = {
    MeetingState.WAITING: 0,
    MeetingState.ACTIVE: 2,
    MeetingState.ENDING: 2,
    MeetingState.ENDED: 0,
}


def _live(ctx: ApiContext) -> LiveControl:
    if ctx.live is None:
        raise LiveUnavailableError
    return ctx.live


@contextmanager
def meeting_errors(field: str | None = None) -> Iterator[None]:
    """The service's exceptions as HTTP errors; a refusal names ``field`` of the request."""
    try:
        yield
    except UnknownCallError as exc:
        raise NotFoundApiError("call") from exc
    except UnknownMeetingError as exc:
        raise NotFoundApiError("meeting") from exc
    except NotAllowedError as exc:
        raise ConflictApiError(str(exc), field) from exc
    except ValueError as exc:  # InvalidValueError and the attribute checks
        raise ValidationApiError.one(field, str(exc)) from exc
    except (MeetingError, IllegalInputError) as exc:  # not possible in this state: 409
        raise ConflictApiError(str(exc), field) from exc


async def _owners(ctx: ApiContext) -> Owners:
    """room → (owner sid, owner's name) for every stored room (cached, see ``OwnerCache``)."""
    return await ctx.owners.get()


def _allowed(who: Principal, owners: Owners, room: str) -> bool:
    return who.live_operator or owners.get(room, (None, ""))[0] == who.sid


def _number(room: str) -> int | str:
    return int(room) if room.isdigit() else room


def meeting_shape(m: Meeting, live: LiveControl, owner_name: str) -> Json:
    now, wall = live.now(), time.time()
    return {
        "attributes": [],
        "created": int((wall - (now - m.created_at)) * 1000),
        "duration": int(now - m.created_at),
        "holdMode": ON_MODE if m.held_roles else 0,
        "id": int(m.room) * 1000 + m.instance % 1000 if m.room.isdigit() else m.instance,
        "isRecording": False,
        "isSecured": m.locked,
        "locked": m.locked,
        "meetingNumber": _number(m.room),
        "muteMode": ON_MODE if m.all_muted else 0,
        "participantCount": m.count(),
        "qaMode": 0,
        "state": 1 if m.held_roles and m.state is MeetingState.ACTIVE else _MEETING_STATE[m.state],
        "subscriberName": owner_name,
        "type": 0,
    }


def call_shape(c: LiveCallInfo) -> Json:
    joined = int(c.joined_at * 1000)
    mute = LISTENER_MODE if c.role is Role.LISTENER else ON_MODE if c.muted else 0
    return {
        "accessCode": "",
        "addressFrom": c.caller,
        "addressTo": c.did,
        "bridgeName": "conf-server",
        "callee": shapes.digits(c.did),
        "caller": c.caller,
        "codec": "",
        "connectionStatus": 0,
        "created": joined,
        "customName": c.custom_name or "",
        "duration": max(0, int(time.time() - c.joined_at)),
        "gainLevel": round(c.gain_in_db),
        "holdMode": ON_MODE if c.held else 0,
        "id": c.call_id,
        "joined": joined,
        "meetingNumber": _number(c.room),
        "muteMode": mute,
        "nodeName": "",
        "presenterMedia": 1,
        "qaMode": 0,
        "role": int(c.role),
        "state": 2,
    }


# --- meetings -----------------------------------------------------------------------------------


async def _meeting(
    ctx: ApiContext, who: Principal, number: int
) -> tuple[LiveControl, Meeting, str]:
    live = _live(ctx)
    owners = await _owners(ctx)
    room = str(number)
    with meeting_errors():
        meeting = live.service.meeting(room)
    if not _allowed(who, owners, room):
        raise PermissionDeniedError
    return live, meeting, owners.get(room, (None, ""))[1]


@router.get("/meetings")
async def list_meetings(request: Request, ctx: Ctx, who: Who) -> Json:
    query = list_query(request, MEETING_FIELDS)
    live = _live(ctx)
    owners = await _owners(ctx)
    items = [
        meeting_shape(m, live, owners.get(room, (None, ""))[1])
        for room, m in sorted(live.service.meetings().items())
        if _allowed(who, owners, room)
    ]
    return query.envelope("meetings", items)


@router.get("/meetings/{number}")
async def get_meeting(number: Id, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, MEETING_FIELDS)
    live, meeting, name = await _meeting(ctx, who, number)
    return query.trim(meeting_shape(meeting, live, name))


def _attribute_values(m: Meeting) -> dict[str, str]:
    values = {name: str(value) for name, value in m.attributes.items()}
    values.update(
        conference_locked="on" if m.locked else "off",
        conference_muted="on" if m.all_muted else "off",
        conference_held="on" if m.held_roles else "off",
        conf_participants_count=str(m.count(Role.PARTICIPANT)),
        conf_hosts_count=str(m.count(Role.HOST)),
        conf_listeners_count=str(m.count(Role.LISTENER)),
    )
    return values


@router.get("/meetings/{number}/attributes")
async def meeting_attributes(number: Id, request: Request, ctx: Ctx, who: Who) -> list[Json]:
    query = list_query(request, NAME_VALUE)
    _, meeting, _ = await _meeting(ctx, who, number)
    values = _attribute_values(meeting)
    page, _ = query.select([{"name": k, "value": v} for k, v in sorted(values.items())])
    return page


@router.put("/meetings/{number}/attributes/{name}")
async def set_meeting_attribute(
    number: Id, name: str, body: AttributeValue, ctx: Ctx, who: Who
) -> list[Json]:
    live, meeting, _ = await _meeting(ctx, who, number)
    if name in _READ_ONLY:
        raise ValidationApiError.one("name", f"{name} is read-only")
    with meeting_errors():
        if name in _SWITCHES:
            on = _ON_OFF.get(str(body.value).lower())
            if on is None:
                raise ValidationApiError.one("value", f"{name} takes on or off")
            outcome = _SWITCHES[name](live.service, meeting.room, on, live.now())
        else:
            outcome = live.service.set_attribute(meeting.room, name, body.value, live.now())
        live.apply(outcome)
        after = live.service.meeting(meeting.room)
    return [{"name": name, "value": _attribute_values(after)[name]}]


@router.delete("/meetings/{number}", status_code=204)
async def end_meeting(number: Id, ctx: Ctx, who: Who) -> Response:
    live, meeting, _ = await _meeting(ctx, who, number)
    with meeting_errors():
        live.apply(live.service.end(meeting.room, live.now()))
    return Response(status_code=204)


# --- calls --------------------------------------------------------------------------------------


async def _call(ctx: ApiContext, who: Principal, call_id: str) -> tuple[LiveControl, LiveCallInfo]:
    live = _live(ctx)
    info = live.call_info(call_id)
    if info is None:
        raise NotFoundApiError("call")
    if not who.live_operator and not _allowed(who, await _owners(ctx), info.room):
        raise PermissionDeniedError
    return live, info


@router.get("/calls")
async def list_calls(request: Request, ctx: Ctx, who: Who) -> Json:
    query = list_query(request, CALL_FIELDS)
    live = _live(ctx)
    owners = {} if who.live_operator else await _owners(ctx)
    calls = sorted(live.calls(), key=lambda c: (c.room, c.joined_at, c.call_id))
    items = [call_shape(c) for c in calls if _allowed(who, owners, c.room)]
    return query.envelope("calls", items)


@router.get("/calls/{call_id}")
async def get_call(call_id: str, request: Request, ctx: Ctx, who: Who) -> Json:
    query = item_query(request, CALL_FIELDS)
    _, info = await _call(ctx, who, call_id)
    return query.trim(call_shape(info))


def _mode(value: int | None, field: str) -> bool | None:
    if value is None:
        return None
    if value not in (0, ON_MODE):
        raise ValidationApiError.one(field, f"{field} takes 0 (off) or {ON_MODE} (on)")
    return value == ON_MODE


@router.put("/calls/{call_id}")
async def update_call(call_id: str, body: CallUpdate, ctx: Ctx, who: Who) -> Json:
    live, info = await _call(ctx, who, call_id)
    muted, held = _mode(body.mute_mode, "muteMode"), _mode(body.hold_mode, "holdMode")
    with meeting_errors("gainLevel"):  # the service decides, for the whole request at once
        if body.gain_level is not None:
            live.service.check_gain(body.gain_level, info.gain_out_db)
    with meeting_errors("muteMode"):
        if muted is not None:
            live.service.check_mute(call_id, muted)
    steps: list[Callable[[MeetingService, float], Outcome]] = []
    if body.gain_level is not None:
        gain = float(body.gain_level)
        steps.append(lambda s, now: s.set_gain(call_id, gain, info.gain_out_db, now))
    if muted is not None and muted != info.muted:
        steps.append(lambda s, now: s.mute(call_id, muted, now))
    if held is not None and held != info.held:
        steps.append(lambda s, now: s.hold(call_id, held, now))
    with meeting_errors():
        for run in steps:  # each applied at once, so the bridge always mirrors the service
            live.apply(run(live.service, live.now()))
    if "custom_name" in body.model_fields_set:
        live.set_custom_name(call_id, body.custom_name or None)
    updated = live.call_info(call_id)
    page = [call_shape(updated)] if updated is not None else []
    return {"calls": page, "last": len(page) - 1, "offset": 0, "total": len(page)}


@router.delete("/calls/{call_id}", status_code=204)
async def hang_up_call(call_id: str, ctx: Ctx, who: Who) -> Response:
    live, _ = await _call(ctx, who, call_id)
    with meeting_errors():
        live.apply(live.service.kick(call_id, live.now()))
    return Response(status_code=204)
