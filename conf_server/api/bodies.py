"""Request bodies of the REST API (pydantic models; the OpenAPI document is built from them).

Source: the "create"/"update" columns of the object tables in ``seeds/004_…`` and Horn's
PIN object (``seeds/000_…``).

Theory of operation
-------------------
A create model requires what the spec requires (``primaryDidGroupId`` for a room, ``role`` for
a meeting key …); an update model makes every field optional, and the handler changes only the
fields the client sent (``model_fields_set``), as the spec's PUT is a partial update. Unknown
fields are refused (422 naming the field) rather than ignored, so a typo never silently does
nothing. Values are coerced the way the spec's own samples need (``"callFlowId": "1"``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

DbInt = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
"""Integers the database can hold (a bigger one is a 422, not a driver overflow)."""


class _Body(BaseModel):
    # The wire names are the spec's camelCase; Python uses snake_case.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)


class AttributeIn(_Body):
    """``{"name": "call_maxduration", "value": 120}``; a null value removes the override."""

    name: str = Field(min_length=1, max_length=64)
    value: str | int | None


class KeyIn(_Body):
    """A keychain entry; ``id`` may be echoed back from a GET (keys are matched by code)."""

    access_code: str = Field(min_length=1, max_length=32)
    role: DbInt | str
    id: DbInt | None = None


class RefIn(_Body):
    did_group_id: DbInt
    state: DbInt = 0


class PinIn(_Body):
    pin: str = Field(min_length=1, max_length=32)
    organizer: bool = False


class RoomCreate(_Body):
    primary_did_group_id: DbInt
    meeting_number: DbInt | None = None
    description: str = ""
    did_group_references: list[RefIn] = []
    keychain: list[KeyIn] = []
    attributes: list[AttributeIn] = []
    pins: list[PinIn] = []
    subscriber_sid: str | None = None


class RoomUpdate(_Body):
    primary_did_group_id: DbInt | None = None
    meeting_number: DbInt | None = None
    description: str | None = None
    did_group_references: list[RefIn] | None = None
    keychain: list[KeyIn] | None = None
    attributes: list[AttributeIn] | None = None
    pins: list[PinIn] | None = None
    subscriber_sid: str | None = Field(default=None, min_length=1, max_length=64)


class KeyCreate(_Body):
    role: DbInt | str
    access_code: str | None = Field(default=None, min_length=1, max_length=32)


class KeyUpdate(_Body):
    role: DbInt | str | None = None
    access_code: str | None = Field(default=None, min_length=1, max_length=32)


class DidCreate(_Body):
    did_group_id: DbInt
    phone_number: str = Field(min_length=1, max_length=32)
    description: str = ""
    attributes: list[AttributeIn] = []


class DidUpdate(_Body):
    did_group_id: DbInt | None = None
    phone_number: str | None = Field(default=None, min_length=1, max_length=32)
    description: str | None = None
    attributes: list[AttributeIn] | None = None


class DidGroupCreate(_Body):
    name: str = Field(min_length=1, max_length=128)
    call_flow_id: DbInt = 3
    description: str = ""
    attributes: list[AttributeIn] = []


class DidGroupUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    call_flow_id: DbInt | None = None
    description: str | None = None
    attributes: list[AttributeIn] | None = None


class CallbackIn(_Body):
    url: str = Field(max_length=2048)


class SubscriberCreate(_Body):
    login: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone_number: str = ""
    details: str = ""
    role: DbInt = 3
    callback: CallbackIn | None = None
    event_callback_url: str | None = Field(default=None, max_length=2048)


class SubscriberUpdate(_Body):
    login: str | None = Field(default=None, min_length=1, max_length=128)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    details: str | None = None
    role: DbInt | None = None
    callback: CallbackIn | None = None
    event_callback_url: str | None = Field(default=None, max_length=2048)


class CallUpdate(_Body):
    """Live call changes: ``muteMode``/``holdMode`` 0 (off) or 40 (on), ``gainLevel`` in dB."""

    custom_name: str | None = Field(default=None, max_length=128)
    gain_level: DbInt | None = None
    mute_mode: DbInt | None = None
    hold_mode: DbInt | None = None


class AttributeValue(_Body):
    value: str | int
