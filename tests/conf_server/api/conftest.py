"""Fixtures for the REST API: a real store, a real MeetingService behind a recording LiveControl.

``Bridge`` implements ``LiveControl`` the way the runtime's conference object does, minus media
and SIP: ``apply`` records the outcome's actions and hands its events to the subscribers, and a
``Hangup`` action removes the call (the runtime would send BYE). Time is explicit (``clock``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from conf_server.api import ApiSettings, create_app
from conf_server.domain.attributes import Role, resolve
from conf_server.domain.live import LiveCallInfo
from conf_server.domain.meeting import Action, Event, Hangup
from conf_server.domain.service import MeetingService, Outcome
from conf_server.store import DidGroupSpec, DidSpec, RoomSpec, Store, SubscriberSpec

ADMIN = ("admin", "admin-secret")
OPERATOR = ("oper", "oper-secret")
ALICE = ("alice", "alice-secret")
BOB = ("bob", "bob-secret")
BASE = "/conference/v1"
WALL0 = 1_700_000_000.0


def basic(credentials: tuple[str, str]) -> dict[str, str]:
    token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Bridge:
    """A LiveControl over a real MeetingService that records what it was asked to do."""

    svc: MeetingService = field(default_factory=MeetingService)
    clock: float = 100.0
    applied: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    info: dict[str, LiveCallInfo] = field(default_factory=dict)
    names: dict[str, str | None] = field(default_factory=dict)
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    @property
    def service(self) -> MeetingService:
        return self.svc

    def now(self) -> float:
        return self.clock

    def apply(self, outcome: Outcome) -> None:
        self.applied.extend(outcome.actions)
        for action in outcome.actions:
            if isinstance(action, Hangup):
                self.info.pop(action.call, None)
        for event in outcome.events:
            self.events.append(event)
            for listener in list(self.listeners):
                listener(event)

    def join(self, call: str, room: int, role: Role, caller: str = "+15550001111") -> None:
        attributes = resolve(None, None, None, None)
        self.info[call] = LiveCallInfo(
            call, str(room), role, caller, "+15162065319", WALL0, False, False, False, 0.0, 0.0
        )
        self.apply(
            self.svc.join(call, str(room), role, caller, attributes=attributes, now=self.clock)
        )

    def calls(self) -> list[LiveCallInfo]:
        return [i for c in self.info if (i := self.call_info(c)) is not None]

    def call_info(self, call_id: str) -> LiveCallInfo | None:
        base = self.info.get(call_id)
        if base is None or not self.svc.has_call(call_id):
            return None
        p = self.svc.participant(call_id)
        return LiveCallInfo(
            call_id, base.room, p.role, base.caller, base.did, base.joined_at,
            p.muted, p.held, p.deaf, p.gain_in_db, p.gain_out_db, self.names.get(call_id),
        )  # fmt: skip

    def set_custom_name(self, call_id: str, name: str | None) -> bool:
        if call_id not in self.info:
            return False
        self.names[call_id] = name
        return True

    def hangup(self, call_id: str) -> bool:
        if call_id not in self.info:
            return False
        self.apply(self.svc.leave(call_id, self.clock))
        self.info.pop(call_id, None)
        return True

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)


@dataclass
class World:
    store: Store
    app: FastAPI
    bridge: Bridge
    client: httpx.AsyncClient
    alice_sid: str
    bob_sid: str
    group_id: int
    alice_room: int
    bob_room: int


async def seed(store: Store) -> tuple[str, str, int, int, int]:
    """Subscribers of every role, one DID group with a DID, a room for Alice and one for Bob."""
    await store.create_subscriber(SubscriberSpec(OPERATOR[0], OPERATOR[1], role=2))
    alice = await store.create_subscriber(SubscriberSpec(ALICE[0], ALICE[1], first_name="Alice"))
    bob = await store.create_subscriber(SubscriberSpec(BOB[0], BOB[1], first_name="Bob"))
    group = await store.create_did_group(DidGroupSpec("main"))
    await store.create_did(DidSpec("+15162065318", group.id))
    a = await store.create_room(RoomSpec(group.id, 111111, subscriber_sid=alice.sid))
    b = await store.create_room(RoomSpec(group.id, 222222, subscriber_sid=bob.sid))
    return alice.sid, bob.sid, group.id, a.meeting_number, b.meeting_number


def make_app(store: Store, bridge: Bridge, tmp_path: Path, **overrides: object) -> FastAPI:
    settings = ApiSettings(
        admin_login=ADMIN[0], admin_password=ADMIN[1], data_dir=tmp_path, webhook_secret="k"
    )
    return create_app(store, bridge, replace(settings, **overrides))  # type: ignore[arg-type]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await Store.open(f"sqlite:///{tmp_path}/api.db")
    alice, bob, group, room_a, room_b = await seed(store)
    bridge = Bridge()
    app = make_app(store, bridge, tmp_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield World(store, app, bridge, client, alice, bob, group, room_a, room_b)
    await store.close()
