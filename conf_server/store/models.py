"""The relational schema of the CarrierX resource model (SQLAlchemy 2 declarative).

Objects and their spec names: call flows (``callFlows``), DID groups (``didGroups``), DIDs
(``dids``), meeting rooms (``meetingRooms``) with their DID group references and keychain,
subscribers, and Horn-style dial-in PINs per room. Attribute overrides are kept per object as a
JSON object of canonical strings (``conf_server.domain.attributes``), as the spec's attribute
``value`` is a string and nothing queries inside it.

An access code must be unique among the rooms reachable from one DID group, otherwise a caller
of that group's numbers could not be routed. That rule spans rooms, keys and references, so the
store keeps a derived table ``access_code_claims`` with one row per (DID group, code) that the
database makes unique: the rule holds even when two writers race. The store rewrites a room's
claims whenever its keychain or references change.

SQL stays portable (SQLite and PostgreSQL): no dialect types; timestamps are stored with their
time zone where the database can, and read back as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Stable constraint names so migrations can name what they alter.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class CallFlow(Base):
    __tablename__ = "call_flows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    path: Mapped[str] = mapped_column(String(255), default="")
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class Subscriber(Base):
    __tablename__ = "subscribers"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    phone_number: Mapped[str] = mapped_column(String(32), default="")
    details: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[int] = mapped_column(Integer, default=3)
    parent_sid: Mapped[str | None] = mapped_column(
        ForeignKey("subscribers.sid", ondelete="SET NULL"), default=None
    )
    callback_url: Mapped[str] = mapped_column(String(2048), default="")
    created: Mapped[datetime] = mapped_column(UtcDateTime)


class DidGroup(Base):
    __tablename__ = "did_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    call_flow_id: Mapped[int] = mapped_column(ForeignKey("call_flows.id", ondelete="RESTRICT"))
    subscriber_sid: Mapped[str | None] = mapped_column(
        ForeignKey("subscribers.sid", ondelete="SET NULL"), default=None
    )
    state: Mapped[int] = mapped_column(Integer, default=-1)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UtcDateTime)

    call_flow: Mapped[CallFlow] = relationship(lazy="joined")


class Did(Base):
    __tablename__ = "dids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(16), unique=True)
    country_code: Mapped[str] = mapped_column(String(2), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    did_group_id: Mapped[int] = mapped_column(ForeignKey("did_groups.id", ondelete="RESTRICT"))
    state: Mapped[int] = mapped_column(Integer, default=-1)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UtcDateTime)

    did_group: Mapped[DidGroup] = relationship(lazy="joined")


class MeetingRoom(Base):
    __tablename__ = "meeting_rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_number: Mapped[int] = mapped_column(Integer, unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    primary_did_group_id: Mapped[int] = mapped_column(
        ForeignKey("did_groups.id", ondelete="RESTRICT")
    )
    subscriber_sid: Mapped[str | None] = mapped_column(
        ForeignKey("subscribers.sid", ondelete="SET NULL"), default=None
    )
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UtcDateTime)

    references: Mapped[list[RoomDidGroup]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="RoomDidGroup.did_group_id"
    )
    keys: Mapped[list[MeetingKey]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="MeetingKey.id"
    )
    pins: Mapped[list[Pin]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="Pin.id"
    )


class RoomDidGroup(Base):
    """A ``didGroupReferences`` entry: state 0 active, 1 invalidated, 2 disabled."""

    __tablename__ = "room_did_groups"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("meeting_rooms.id", ondelete="CASCADE"), primary_key=True
    )
    did_group_id: Mapped[int] = mapped_column(
        ForeignKey("did_groups.id", ondelete="RESTRICT"), primary_key=True
    )
    state: Mapped[int] = mapped_column(Integer, default=0)


class MeetingKey(Base):
    """A keychain entry: access code → role (1 host, 2 participant, 3 listener)."""

    __tablename__ = "meeting_keys"
    __table_args__ = (UniqueConstraint("room_id", "access_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("meeting_rooms.id", ondelete="CASCADE"))
    access_code: Mapped[str] = mapped_column(String(32))
    role: Mapped[int] = mapped_column(Integer)


class AccessCodeClaim(Base):
    """Derived: (DID group, code) is reachable in exactly one room. See the module docstring."""

    __tablename__ = "access_code_claims"

    did_group_id: Mapped[int] = mapped_column(
        ForeignKey("did_groups.id", ondelete="CASCADE"), primary_key=True
    )
    access_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("meeting_rooms.id", ondelete="CASCADE"))


class Pin(Base):
    """A dial-in PIN of a room (Horn); an organizer PIN starts the meeting as host."""

    __tablename__ = "pins"
    __table_args__ = (UniqueConstraint("room_id", "pin"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("meeting_rooms.id", ondelete="CASCADE"))
    pin: Mapped[str] = mapped_column(String(32))
    organizer: Mapped[bool] = mapped_column(Boolean, default=False)
