"""The store façade: what the runtime, the IVR and the REST API call.

``Store.open(url)`` creates the engine and runs the migrations (``upgrade head``), so a new file
gets the schema and an old one is upgraded with its data kept. Each public method is one
transaction and returns frozen records (``conf_server.store.records``); callers never see a
session or an ORM object. Database constraint violations that slip past the explicit checks
(two writers racing) surface as ``ConflictError``.

The call path uses four methods: ``find_did`` (INVITE → DID, group and call flow),
``find_room_by_code`` (access code → room and role, only through active references),
``room_pins`` and ``effective_attributes`` (Call Flow → DID Group → DID → Room, see
``conf_server.domain.attributes``). The rest is CRUD per object for the REST API: ``create_*``,
``get_*`` (``NotFoundError`` when absent), ``list_*`` (a ``Page``), ``update_*`` (full
replacement by a spec) and ``delete_*``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from conf_server.domain import attributes, numbers
from conf_server.domain.attributes import AttributeValueError, Role
from conf_server.store import ops
from conf_server.store.db import DEFAULT_URL, create_engine, upgrade
from conf_server.store.errors import ConflictError, InvalidDataError
from conf_server.store.models import CallFlow, Did, DidGroup, MeetingRoom, Pin, Subscriber
from conf_server.store.records import (
    CallFlowInfo,
    DidGroupInfo,
    DidGroupSpec,
    DidInfo,
    DidSpec,
    Page,
    PinInfo,
    RoomInfo,
    RoomSpec,
    SubscriberInfo,
    SubscriberSpec,
)

T = TypeVar("T")
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Persistent CarrierX objects behind a small typed API (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._clock = clock

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, *, clock: Clock = _utc_now) -> Store:
        """Connect to ``url`` and bring its schema to the newest revision."""
        engine = create_engine(url)
        await upgrade(engine)
        return cls(engine, clock)

    async def close(self) -> None:
        await self._engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction; commits on success, maps constraint violations to ConflictError.

        For this package's provisioning; other callers use the typed methods.
        """
        try:
            async with self._sessions.begin() as session:
                yield session
        except IntegrityError as exc:
            raise ConflictError(f"the database refused the change: {exc.orig}") from exc

    def now(self) -> datetime:
        """The store clock (UTC, whole milliseconds) used for ``created`` stamps."""
        return ops.stamp(self._clock())

    # --- call path ----------------------------------------------------------------------------

    async def find_did(self, e164: str) -> DidInfo | None:
        """The DID dialled as ``e164`` (any format ``numbers.normalize`` accepts), or None."""
        number = numbers.normalize(e164)
        if number is None:
            return None
        async with self.transaction() as session:
            row = await ops.did_by_number(session, number)
            return None if row is None else ops.did_info(row)

    async def find_room_by_code(self, did_group_id: int, code: str) -> tuple[RoomInfo, Role] | None:
        async with self.transaction() as session:
            return await ops.room_by_code(session, did_group_id, code)

    async def room_pins(self, room_id: int) -> list[PinInfo]:
        async with self.transaction() as session:
            rows = await session.scalars(select(Pin).where(Pin.room_id == room_id).order_by(Pin.id))
            return [PinInfo(pin.id, room_id, pin.pin, pin.organizer) for pin in rows]

    async def effective_attributes(self, did: DidInfo, room: RoomInfo | None) -> dict[str, object]:
        """Resolved values for a call on ``did`` (and in ``room`` once known)."""
        group = did.did_group
        try:
            return attributes.resolve(
                group.call_flow.attributes,
                group.attributes,
                did.attributes,
                None if room is None else room.attributes,
            )
        except AttributeValueError as exc:
            raise InvalidDataError(str(exc)) from exc

    # --- helpers ------------------------------------------------------------------------------

    async def _page(
        self,
        model: type[Any],
        order: InstrumentedAttribute[Any],
        convert: Callable[[Any], T],
        offset: int,
        limit: int | None,
    ) -> Page[T]:
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidDataError("offset and limit must not be negative")
        async with self.transaction() as session:
            total = await session.scalar(select(func.count()).select_from(model)) or 0
            query = select(model).order_by(order).offset(offset).limit(limit)
            rows = (await session.scalars(query)).all()
            return Page(tuple(convert(row) for row in rows), total, offset)

    # --- call flows ---------------------------------------------------------------------------

    async def get_call_flow(self, flow_id: int) -> CallFlowInfo:
        async with self.transaction() as session:
            return ops.call_flow_info(await ops.call_flow_row(session, flow_id))

    async def list_call_flows(
        self, offset: int = 0, limit: int | None = None
    ) -> Page[CallFlowInfo]:
        return await self._page(CallFlow, CallFlow.id, ops.call_flow_info, offset, limit)

    # --- DID groups ---------------------------------------------------------------------------

    async def create_did_group(self, spec: DidGroupSpec) -> DidGroupInfo:
        async with self.transaction() as session:
            row = DidGroup(state=-1, created=self.now())
            await ops.write_did_group(session, row, spec)
            session.add(row)
            await session.flush()
            return ops.did_group_info(row)

    async def get_did_group(self, group_id: int) -> DidGroupInfo:
        async with self.transaction() as session:
            return ops.did_group_info(await ops.did_group_row(session, group_id))

    async def find_did_group(self, name: str) -> DidGroupInfo | None:
        async with self.transaction() as session:
            row = await ops.did_group_by_name(session, name)
            return None if row is None else ops.did_group_info(row)

    async def list_did_groups(
        self, offset: int = 0, limit: int | None = None
    ) -> Page[DidGroupInfo]:
        return await self._page(DidGroup, DidGroup.id, ops.did_group_info, offset, limit)

    async def update_did_group(self, group_id: int, spec: DidGroupSpec) -> DidGroupInfo:
        async with self.transaction() as session:
            row = await ops.did_group_row(session, group_id)
            await ops.write_did_group(session, row, spec)
            await session.flush()
            return ops.did_group_info(row)

    async def delete_did_group(self, group_id: int) -> None:
        """Refused with ConflictError while DIDs or rooms still use the group."""
        async with self.transaction() as session:
            await ops.delete_did_group(session, group_id)

    async def did_group_dids(self, group_id: int) -> list[DidInfo]:
        """The DIDs of a group (the spec's read-only ``dids`` array)."""
        async with self.transaction() as session:
            await ops.did_group_row(session, group_id)
            query = select(Did).where(Did.did_group_id == group_id).order_by(Did.id)
            return [ops.did_info(row) for row in await session.scalars(query)]

    # --- DIDs ---------------------------------------------------------------------------------

    async def create_did(self, spec: DidSpec) -> DidInfo:
        async with self.transaction() as session:
            row = Did(state=-1, created=self.now())
            await ops.write_did(session, row, spec)
            session.add(row)
            await session.flush()
            return ops.did_info(row)

    async def get_did(self, did_id: int) -> DidInfo:
        async with self.transaction() as session:
            return ops.did_info(await ops.did_row(session, did_id))

    async def list_dids(self, offset: int = 0, limit: int | None = None) -> Page[DidInfo]:
        return await self._page(Did, Did.id, ops.did_info, offset, limit)

    async def update_did(self, did_id: int, spec: DidSpec) -> DidInfo:
        async with self.transaction() as session:
            row = await ops.did_row(session, did_id)
            await ops.write_did(session, row, spec)
            await session.flush()
            return ops.did_info(row)

    async def delete_did(self, did_id: int) -> None:
        async with self.transaction() as session:
            await session.delete(await ops.did_row(session, did_id))

    # --- meeting rooms ------------------------------------------------------------------------

    async def create_room(self, spec: RoomSpec) -> RoomInfo:
        async with self.transaction() as session:
            row = MeetingRoom(created=self.now())
            await ops.write_room(session, row, spec)
            return ops.room_info(row)

    async def get_room(self, meeting_number: int) -> RoomInfo:
        async with self.transaction() as session:
            return ops.room_info(await ops.room_row(session, meeting_number))

    async def list_rooms(self, offset: int = 0, limit: int | None = None) -> Page[RoomInfo]:
        return await self._page(
            MeetingRoom, MeetingRoom.meeting_number, ops.room_info, offset, limit
        )

    async def update_room(self, meeting_number: int, spec: RoomSpec) -> RoomInfo:
        """Replace the room's writable fields; ``spec.meeting_number`` None keeps the number."""
        async with self.transaction() as session:
            row = await ops.room_row(session, meeting_number)
            await ops.write_room(session, row, spec)
            return ops.room_info(row)

    async def delete_room(self, meeting_number: int) -> None:
        async with self.transaction() as session:
            await session.delete(await ops.room_row(session, meeting_number))

    # --- subscribers --------------------------------------------------------------------------

    async def create_subscriber(self, spec: SubscriberSpec) -> SubscriberInfo:
        async with self.transaction() as session:
            row = Subscriber(sid=ops.new_sid(), password_hash="", created=self.now())
            await ops.write_subscriber(session, row, spec)
            session.add(row)
            await session.flush()
            return await ops.subscriber_info(session, row)

    async def get_subscriber(self, sid: str) -> SubscriberInfo:
        async with self.transaction() as session:
            return await ops.subscriber_info(session, await ops.subscriber_row(session, sid))

    async def find_subscriber(self, login: str) -> SubscriberInfo | None:
        """By login, for the REST API's authentication."""
        async with self.transaction() as session:
            row = await ops.subscriber_by_login(session, login)
            return None if row is None else await ops.subscriber_info(session, row)

    async def list_subscribers(
        self, offset: int = 0, limit: int | None = None
    ) -> Page[SubscriberInfo]:
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidDataError("offset and limit must not be negative")
        async with self.transaction() as session:
            total = await session.scalar(select(func.count()).select_from(Subscriber)) or 0
            query = select(Subscriber).order_by(Subscriber.login).offset(offset).limit(limit)
            rows = (await session.scalars(query)).all()
            items = [await ops.subscriber_info(session, row) for row in rows]
            return Page(tuple(items), total, offset)

    async def update_subscriber(self, sid: str, spec: SubscriberSpec) -> SubscriberInfo:
        async with self.transaction() as session:
            row = await ops.subscriber_row(session, sid)
            await ops.write_subscriber(session, row, spec)
            await session.flush()
            return await ops.subscriber_info(session, row)

    async def delete_subscriber(self, sid: str) -> None:
        """Rooms and DID groups of the subscriber stay, without an owner."""
        async with self.transaction() as session:
            await session.delete(await ops.subscriber_row(session, sid))
