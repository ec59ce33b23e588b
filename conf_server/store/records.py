"""Plain values at the store's boundary: what callers read (``…Info``) and write (``…Spec``).

Callers never hold ORM objects or sessions: every method of ``Store`` takes and returns these
frozen dataclasses. ``…Info`` mirrors a CarrierX object as stored (ids, timestamps in UTC,
attribute overrides as canonical strings); ``…Spec`` is what a create or a full update writes.
An update is a full replacement of the writable fields: the API layer turns PATCH/PUT into a
spec with ``dataclasses.replace(info.spec(), …)``. ``spec()`` returns specs in canonical order
(keychain by code, PINs by pin, references by group), so two specs describing the same object
compare equal — provisioning relies on that to report "unchanged".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from conf_server.domain.attributes import Role

CONF_CALL_FLOW_ID = 3
T = TypeVar("T")


@dataclass(frozen=True)
class CallFlowInfo:
    """A call flow; ``attributes`` are its template overrides of the catalogue defaults."""

    id: int
    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DidGroupSpec:
    """A DID group to write; ``attributes`` are its overrides (group bit 1)."""

    name: str
    call_flow_id: int = CONF_CALL_FLOW_ID
    description: str = ""
    subscriber_sid: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DidGroupInfo:
    """A DID group with its call flow."""

    id: int
    name: str
    call_flow: CallFlowInfo
    description: str
    subscriber_sid: str | None
    state: int
    attributes: Mapping[str, str]
    created: datetime

    def spec(self) -> DidGroupSpec:
        return DidGroupSpec(
            self.name, self.call_flow.id, self.description, self.subscriber_sid, self.attributes
        )


@dataclass(frozen=True)
class DidSpec:
    """``phone_number`` in any format ``numbers.normalize`` accepts; stored as E.164."""

    phone_number: str
    did_group_id: int
    description: str = ""
    attributes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DidInfo:
    """A DID with its group and the group's call flow: all a call needs to route and resolve."""

    id: int
    phone_number: str
    country_code: str
    description: str
    did_group: DidGroupInfo
    state: int
    attributes: Mapping[str, str]
    created: datetime

    def spec(self) -> DidSpec:
        return DidSpec(self.phone_number, self.did_group.id, self.description, self.attributes)


@dataclass(frozen=True, order=True)
class KeySpec:
    """A keychain entry to write: access code (DTMF digits) → role."""

    code: str
    role: Role


@dataclass(frozen=True)
class KeyInfo:
    """A stored keychain entry; ``id`` is the spec's Meeting Key id."""

    id: int
    code: str
    role: Role


@dataclass(frozen=True, order=True)
class PinSpec:
    """A PIN to write; ``organizer`` makes it join as host."""

    pin: str
    organizer: bool = False


@dataclass(frozen=True)
class PinInfo:
    """A dial-in PIN of a room; an organizer PIN joins as host and starts the meeting."""

    id: int
    room_id: int
    pin: str
    organizer: bool


@dataclass(frozen=True, order=True)
class DidGroupRef:
    """A ``didGroupReferences`` entry; state 0 active, 1 invalidated, 2 disabled."""

    did_group_id: int
    state: int = 0


@dataclass(frozen=True)
class RoomSpec:
    """A meeting room to write. ``meeting_number`` None lets the store pick a free one.

    The primary DID group is always referenced (state 0 unless ``did_group_refs`` says
    otherwise); ``did_group_refs`` adds more groups whose numbers reach the room.
    """

    primary_did_group_id: int
    meeting_number: int | None = None
    description: str = ""
    did_group_refs: tuple[DidGroupRef, ...] = ()
    keychain: tuple[KeySpec, ...] = ()
    pins: tuple[PinSpec, ...] = ()
    subscriber_sid: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RoomInfo:
    """A meeting room with its references, keychain and PINs."""

    id: int
    meeting_number: int
    description: str
    primary_did_group_id: int
    did_group_refs: tuple[DidGroupRef, ...]
    keychain: tuple[KeyInfo, ...]
    pins: tuple[PinInfo, ...]
    subscriber_sid: str | None
    attributes: Mapping[str, str]
    created: datetime

    @property
    def has_pins(self) -> bool:
        """Whether callers must enter a PIN after the access code (Horn: empty list = open)."""
        return bool(self.pins)

    def spec(self) -> RoomSpec:
        return RoomSpec(
            primary_did_group_id=self.primary_did_group_id,
            meeting_number=self.meeting_number,
            description=self.description,
            did_group_refs=tuple(sorted(self.did_group_refs)),
            keychain=tuple(sorted(KeySpec(k.code, k.role) for k in self.keychain)),
            pins=tuple(sorted(PinSpec(p.pin, p.organizer) for p in self.pins)),
            subscriber_sid=self.subscriber_sid,
            attributes=self.attributes,
        )


@dataclass(frozen=True)
class SubscriberSpec:
    """A subscriber to write; ``password`` None keeps the stored hash on update."""

    login: str
    password: str | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone_number: str = ""
    details: str = ""
    role: int = 3
    parent_sid: str | None = None
    callback_url: str = ""


@dataclass(frozen=True)
class SubscriberInfo:
    """A subscriber; ``password_hash`` is for the REST auth check, never for a response."""

    sid: str
    login: str
    password_hash: str = field(repr=False)
    first_name: str
    last_name: str
    email: str
    phone_number: str
    details: str
    role: int
    parent_sid: str | None
    callback_url: str
    created: datetime
    meeting_numbers: tuple[int, ...]

    def spec(self) -> SubscriberSpec:
        return SubscriberSpec(
            self.login,
            None,
            self.first_name,
            self.last_name,
            self.email,
            self.phone_number,
            self.details,
            self.role,
            self.parent_sid,
            self.callback_url,
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: ``items`` from ``offset`` and the ``total`` count of all."""

    items: tuple[T, ...]
    total: int
    offset: int
