"""JSON shapes of the CarrierX Conference v1 objects, built from store records and live state.

Source: the object tables of ``seeds/004_…`` (Call Flow, DID, DID Group, Meeting Room,
Meeting Key, Subscriber, File Descriptor, Meeting, Call) and Horn's dial-in PIN object
(``seeds/000_…``).

Theory of operation
-------------------
One function per object turns a frozen record into the dict the client sees; the ``*_FIELDS``
tables list every field (and nested field) of that shape so the query layer can refuse an
unknown field even on an empty list. Timestamps are UNIX milliseconds as in the samples; phone
numbers are shown as E.164 digits without ``+`` as in the samples. Fields the spec hides when
unset (a DID's ``description``, a subscriber's ``callback``) are left out when empty.
Secrets never appear: no password, hash, PIN-free shape carries them (PINs are shown only on
their own endpoint, to the room's owner).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from conf_server.api.query import Known
from conf_server.domain import attributes as catalogue
from conf_server.store.records import (
    CallFlowInfo,
    DidGroupInfo,
    DidInfo,
    KeyInfo,
    PinInfo,
    RoomInfo,
    SubscriberInfo,
)

Json = dict[str, Any]
_NONE: Final = frozenset[str]()
ATTRIBUTE_FIELDS: Final = frozenset({"name", "value", "description", "group"})
KEY_FIELDS: Final[Known] = {"accessCode": _NONE, "id": _NONE, "role": _NONE}
REF_FIELDS: Final = frozenset({"didGroupId", "state"})
DID_FIELDS: Final[Known] = {
    "attributes": ATTRIBUTE_FIELDS,
    "countryCode": _NONE,
    "description": _NONE,
    "didGroupId": _NONE,
    "id": _NONE,
    "phoneNumber": _NONE,
    "state": _NONE,
}
DID_GROUP_FIELDS: Final[Known] = {
    "attributes": ATTRIBUTE_FIELDS,
    "callFlowId": _NONE,
    "description": _NONE,
    "dids": frozenset(DID_FIELDS),
    "id": _NONE,
    "name": _NONE,
    "state": _NONE,
    "subscriberSid": _NONE,
}
CALL_FLOW_FIELDS: Final[Known] = {
    "attributeTemplates": frozenset(
        {"description", "enumValues", "group", "name", "type", "value"}
    ),
    "id": _NONE,
    "name": _NONE,
    "path": _NONE,
}
ROOM_FIELDS: Final[Known] = {
    "attributes": ATTRIBUTE_FIELDS,
    "created": _NONE,
    "description": _NONE,
    "didGroupReferences": REF_FIELDS,
    "keychain": frozenset(KEY_FIELDS),
    "meetingNumber": _NONE,
    "primaryDidGroupId": _NONE,
    "subscriberSid": _NONE,
}
SUBSCRIBER_FIELDS: Final[Known] = {
    "callback": frozenset({"id", "url"}),
    "created": _NONE,
    "details": _NONE,
    "didGroupReferences": REF_FIELDS,
    "email": _NONE,
    "externalId": _NONE,
    "firstName": _NONE,
    "lastName": _NONE,
    "login": _NONE,
    "meetingRooms": _NONE,
    "parentSid": _NONE,
    "phoneNumber": _NONE,
    "role": _NONE,
    "sid": _NONE,
}
PIN_FIELDS: Final[Known] = {"pin": _NONE, "organizer": _NONE}
FILE_FIELDS: Final[Known] = {"duration": _NONE, "name": _NONE, "size": _NONE, "url": _NONE}


def millis(stamp: datetime) -> int:
    return int(stamp.timestamp() * 1000)


def digits(e164: str) -> str:
    """``+15162065319`` → ``15162065319`` (the samples' form)."""
    return e164.removeprefix("+")


def attribute_list(values: Mapping[str, str]) -> list[Json]:
    """Overrides as the spec's attribute objects, with the catalogue's description and group."""
    out: list[Json] = []
    for name in sorted(values):
        entry = catalogue.CATALOGUE.get(name)
        out.append(
            {
                "description": entry.description if entry else "",
                "group": int(entry.group) if entry else 0,
                "name": name,
                "value": values[name],
            }
        )
    return out


def call_flow(flow: CallFlowInfo) -> Json:
    templates = []
    for name, entry in sorted(catalogue.CATALOGUE.items()):
        templates.append(
            {
                "description": entry.description,
                "enumValues": ",".join(entry.choices),
                "group": int(entry.group),
                "name": name,
                "type": int(entry.type),
                "value": flow.attributes.get(name, entry.default),
            }
        )
    return {
        "attributeTemplates": templates,
        "id": flow.id,
        "name": flow.name,
        "path": f"/callflows/{flow.name}",
    }


def did(info: DidInfo) -> Json:
    out: Json = {
        "attributes": attribute_list(info.attributes),
        "countryCode": info.country_code,
        "didGroupId": info.did_group.id,
        "id": info.id,
        "phoneNumber": digits(info.phone_number),
        "state": info.state,
    }
    if info.description:
        out["description"] = info.description
    return out


def did_group(info: DidGroupInfo, dids: Sequence[DidInfo]) -> Json:
    return {
        "attributes": attribute_list(info.attributes),
        "callFlowId": info.call_flow.id,
        "description": info.description,
        "dids": [did(d) for d in dids],
        "id": info.id,
        "name": info.name,
        "state": info.state,
        "subscriberSid": info.subscriber_sid,
    }


def key(info: KeyInfo, room_id: int | None = None) -> Json:
    out: Json = {"accessCode": info.code, "id": info.id, "role": int(info.role)}
    if room_id is not None:  # the spec returns meetingRoomId on POST and PUT only
        out["meetingRoomId"] = room_id
    return out


def pin(info: PinInfo) -> Json:
    return {"pin": info.pin, "organizer": info.organizer}


def room(info: RoomInfo) -> Json:
    return {
        "attributes": attribute_list(info.attributes),
        "created": millis(info.created),
        "description": info.description,
        "didGroupReferences": [
            {"didGroupId": r.did_group_id, "state": r.state} for r in info.did_group_refs
        ],
        "keychain": [key(k) for k in info.keychain],
        "meetingNumber": info.meeting_number,
        "primaryDidGroupId": info.primary_did_group_id,
        "subscriberSid": info.subscriber_sid,
    }


def subscriber(info: SubscriberInfo, group_ids: Sequence[int] = ()) -> Json:
    out: Json = {
        "created": millis(info.created),
        "didGroupReferences": [{"didGroupId": g, "state": 0} for g in group_ids],
        "externalId": -1,
        "firstName": info.first_name,
        "lastName": info.last_name,
        "login": info.login,
        "meetingRooms": list(info.meeting_numbers),
        "parentSid": info.parent_sid,
        "role": info.role,
        "sid": info.sid,
    }
    optional = {"details": info.details, "email": info.email, "phoneNumber": info.phone_number}
    out.update({k: v for k, v in optional.items() if v})
    if info.callback_url:
        # One callback per subscriber: its id is stable and only names it.
        out["callback"] = {"id": zlib.crc32(info.sid.encode()), "url": info.callback_url}
    return out
