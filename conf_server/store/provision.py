"""Provisioning: load a whole set-up from a TOML file, idempotently.

``conf-server provision FILE.toml`` and ``conf-server run --demo`` (``config/demo.toml``) call
``provision_file``. Objects are matched by natural key — subscriber ``login``, DID group
``name``, DID ``number`` (after E.164 normalisation), room ``meeting_number`` — and created when
missing, updated when different, left alone when equal; the report counts each per kind, so a
second run of the same file reports 0 changes. Provisioning never deletes an object that the
file does not mention; for an object it does mention, the file is the whole truth (attributes,
keychain, PINs and references are replaced by the file's). The whole file is one transaction:
any error and nothing is written.

File format
-----------
::

    region = "US"                  # optional: region for numbers written without +country

    [[subscribers]]
    login = "alice"                # required, identifies the subscriber
    password = "s3cret"            # optional, stored only as a scrypt hash
    first_name = "Alice"           # optional: first_name last_name email phone_number details
    role = 3                       # optional: 1 administrator, 2 operator, 3 user (default)

    [[did_groups]]
    name = "demo"                  # required, identifies the group
    description = "Demo numbers"   # optional
    call_flow = "CONF"             # optional (default CONF)
    subscriber = "alice"           # optional, a subscriber login
    attributes = { call_operator_after = 3 }   # optional meeting attributes (group bit 1)

    [[dids]]
    number = "+1 212 555 0100"     # required, any format; stored as E.164 (+12125550100)
    did_group = "demo"             # required, a DID group name
    description = "Main number"    # optional
    attributes = { dnis_welcomeprompt = "welcome" }   # optional (group bit 2)

    [[rooms]]
    meeting_number = 100002        # required, identifies the room
    did_group = "demo"             # required: the primary DID group
    did_groups = ["partners"]      # optional: more DID groups that reach the room
    description = "Board"          # optional
    subscriber = "alice"           # optional owner login
    attributes = { conference_start_how = "moderator" }   # optional (group bit 4)
    keychain = [                   # access code → role (host, participant, listener or 1/2/3)
        { code = "4444", role = "host" },
        { code = "5555", role = "participant" },
    ]
    pins = [                       # optional Horn PINs; an organizer PIN joins as host
        { pin = "2468", organizer = true },
        { pin = "1357" },
    ]

Codes and PINs are strings of 0-9 and ``*`` (quote them: a leading zero matters). A bad file
raises ``ProvisionError`` whose message is ``FILE: KEY: REASON`` with KEY a path such as
``rooms[1].keychain[0].code`` (indices from 0).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conf_server.domain import attributes, numbers
from conf_server.domain.attributes import AttributeValueError, Level, Role
from conf_server.store import ops
from conf_server.store.errors import AccessCodeConflictError, ProvisionError, StoreError
from conf_server.store.models import (
    AccessCodeClaim,
    CallFlow,
    Did,
    DidGroup,
    MeetingRoom,
    Subscriber,
)
from conf_server.store.records import (
    DidGroupRef,
    DidGroupSpec,
    DidSpec,
    KeySpec,
    PinSpec,
    RoomSpec,
    SubscriberSpec,
)
from conf_server.store.store import Store

KINDS = ("subscribers", "did_groups", "dids", "rooms")
_SUBSCRIBER_TEXT = ("first_name", "last_name", "email", "phone_number", "details")


@dataclass
class KindCount:
    """Objects of one kind created, updated and left unchanged by one run."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ProvisionReport:
    """What one run did, per kind (``subscribers``, ``did_groups``, ``dids``, ``rooms``)."""

    file: Path
    counts: dict[str, KindCount] = field(default_factory=lambda: {k: KindCount() for k in KINDS})

    @property
    def changes(self) -> int:
        """Objects created or updated; 0 on a re-run of the same file."""
        return sum(c.created + c.updated for c in self.counts.values())

    def lines(self) -> list[str]:
        """One readable line per kind, for the CLI."""
        return [
            f"{kind}: {c.created} created, {c.updated} updated, {c.unchanged} unchanged"
            for kind, c in self.counts.items()
        ]


# --- reading the file -------------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table; every failure names the file and the key path."""

    def __init__(self, file: Path, table: object, key: str, allowed: tuple[str, ...]) -> None:
        self.file, self.key = file, key
        if not isinstance(table, dict):
            self.fail("", f"must be a table, not {type(table).__name__}")
        self.table: dict[str, Any] = table
        for name in self.table:
            if name not in allowed:
                self.fail(name, f"unknown key (expected one of {', '.join(allowed)})")

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key and name else self.key or name

    def fail(self, name: str, reason: str) -> NoReturn:
        raise ProvisionError(self.file, self.path(name), reason)

    def text(self, name: str, default: str | None = None) -> str:
        value = self.table.get(name, default)
        if value is None:
            self.fail(name, "is required")
        if not isinstance(value, str):
            self.fail(name, f"must be a string, not {type(value).__name__} (quote it)")
        return str(value)

    def optional_text(self, name: str) -> str | None:
        return self.text(name) if name in self.table else None

    def integer(self, name: str, default: int | None = None) -> int:
        value = self.table.get(name, default)
        if value is None:
            self.fail(name, "is required")
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, f"must be an integer, not {type(value).__name__}")
        return int(value)

    def flag(self, name: str) -> bool:
        value = self.table.get(name, False)
        if not isinstance(value, bool):
            self.fail(name, f"must be true or false, not {value!r}")
        return bool(value)

    def items(self, name: str) -> list[tuple[str, object]]:
        """``name`` as a list (of tables or values), each with its key path."""
        value = self.table.get(name, [])
        if not isinstance(value, list):
            self.fail(name, f"must be a list, not {type(value).__name__}")
        return [(f"{self.path(name)}[{index}]", item) for index, item in enumerate(value)]

    def attributes(self, level: Level) -> dict[str, str]:
        values = self.table.get("attributes", {})
        if not isinstance(values, dict):
            self.fail("attributes", "must be a table of attribute = value")
        for name, value in values.items():
            try:
                attributes.validate(name, value, level)
            except AttributeValueError as exc:
                self.fail(f"attributes.{name}", exc.reason)
        return attributes.validate_all(values, level)


@dataclass(frozen=True)
class _Item:
    key: str
    spec: Any
    refs: Mapping[str, str] = field(default_factory=dict)  # spec field → name in the file


def _subscriber(file: Path, key: str, table: object) -> _Item:
    allowed = ("login", "password", "role", "parent", *_SUBSCRIBER_TEXT)
    r = _Reader(file, table, key, allowed)
    texts = {name: r.text(name, "") for name in _SUBSCRIBER_TEXT}
    role = r.integer("role", 3)
    if role not in (1, 2, 3):
        r.fail("role", f"must be 1, 2 or 3, not {role}")
    spec = SubscriberSpec(login=r.text("login"), password=r.optional_text("password"),
                          role=role, **texts)  # fmt: skip
    parent = r.optional_text("parent")
    return _Item(key, spec, {"parent_sid": parent} if parent else {})


def _did_group(file: Path, key: str, table: object) -> _Item:
    allowed = ("name", "description", "call_flow", "subscriber", "attributes")
    r = _Reader(file, table, key, allowed)
    spec = DidGroupSpec(
        r.text("name"), description=r.text("description", ""),
        attributes=r.attributes(Level.DID_GROUP),
    )  # fmt: skip
    refs = {"call_flow_id": r.text("call_flow", "CONF")}
    if (owner := r.optional_text("subscriber")) is not None:
        refs["subscriber_sid"] = owner
    return _Item(key, spec, refs)


def _did(file: Path, key: str, table: object, region: str) -> _Item:
    r = _Reader(file, table, key, ("number", "did_group", "description", "attributes"))
    number = numbers.normalize(r.text("number"), region)
    if number is None:
        r.fail("number", f"{r.text('number')!r} is not a valid phone number (region {region})")
    spec = DidSpec(str(number), 0, r.text("description", ""), r.attributes(Level.DID))
    return _Item(key, spec, {"did_group_id": r.text("did_group")})


def _code(r: _Reader, name: str, what: str) -> str:
    value = r.text(name)
    if not ops.CODE_PATTERN.fullmatch(value):
        r.fail(name, f"{what} {value!r} must be 1-32 keys of 0-9 and *")
    return value


def _keychain(r: _Reader, file: Path) -> tuple[KeySpec, ...]:
    keys: dict[str, KeySpec] = {}
    for key, table in r.items("keychain"):
        entry = _Reader(file, table, key, ("code", "role"))
        code = _code(entry, "code", "access code")
        if code in keys:
            entry.fail("code", f"access code {code!r} appears twice in this room")
        try:
            keys[code] = KeySpec(code, Role.parse(entry.table.get("role")))
        except ValueError as exc:
            entry.fail("role", str(exc))
    return tuple(keys.values())  # file order: conflict errors name the entry's index


def _pins(r: _Reader, file: Path) -> tuple[PinSpec, ...]:
    pins: dict[str, PinSpec] = {}
    for key, table in r.items("pins"):
        entry = _Reader(file, table, key, ("pin", "organizer"))
        pin = _code(entry, "pin", "PIN")
        if pin in pins:
            entry.fail("pin", f"PIN {pin!r} appears twice in this room")
        pins[pin] = PinSpec(pin, entry.flag("organizer"))
    return tuple(pins.values())


def _room(file: Path, key: str, table: object) -> _Item:
    allowed = ("meeting_number", "did_group", "did_groups", "description", "subscriber",
               "attributes", "keychain", "pins")  # fmt: skip
    r = _Reader(file, table, key, allowed)
    number = r.integer("meeting_number")
    if number <= 0:
        r.fail("meeting_number", f"must be positive, not {number}")
    groups = [r.text("did_group")]
    for path, name in r.items("did_groups"):
        if not isinstance(name, str):
            raise ProvisionError(file, path, "must be a DID group name (a string)")
        groups.append(name)
    spec = RoomSpec(0, number, r.text("description", ""), keychain=_keychain(r, file),
                    pins=_pins(r, file), attributes=r.attributes(Level.ROOM))  # fmt: skip
    refs = {f"group{index}": name for index, name in enumerate(groups)}
    if (owner := r.optional_text("subscriber")) is not None:
        refs["subscriber_sid"] = owner
    return _Item(key, spec, refs)


def _read(file: Path) -> dict[str, list[_Item]]:
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProvisionError(file, "", f"cannot read the file: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(file, "", f"not valid TOML: {exc}") from exc
    top = _Reader(file, document, "", ("region", *KINDS))
    region = top.text("region", "US").upper()
    readers = {"subscribers": _subscriber, "did_groups": _did_group, "rooms": _room}
    items: dict[str, list[_Item]] = {}
    for kind in KINDS:
        entries = top.items(kind)
        if kind == "dids":
            items[kind] = [_did(file, key, table, region) for key, table in entries]
        else:
            items[kind] = [readers[kind](file, key, table) for key, table in entries]
    return items


def _natural_key(kind: str, item: _Item) -> object:
    spec = item.spec
    keys = {"subscribers": "login", "did_groups": "name", "dids": "phone_number"}
    return getattr(spec, keys.get(kind, "meeting_number"))


def _check_duplicates(file: Path, items: dict[str, list[_Item]]) -> None:
    for kind, entries in items.items():
        seen: dict[object, str] = {}
        for item in entries:
            natural = _natural_key(kind, item)
            if natural in seen:
                raise ProvisionError(
                    file, item.key, f"{natural!r} is already defined at {seen[natural]}"
                )
            seen[natural] = item.key


def _canonical(spec: RoomSpec) -> RoomSpec:
    """The order ``RoomInfo.spec()`` uses, so equal rooms compare equal."""
    return replace(spec, keychain=tuple(sorted(spec.keychain)), pins=tuple(sorted(spec.pins)))


# --- applying it ------------------------------------------------------------------------------


class _Applier:
    """Applies the read items in one session, counting what changed."""

    def __init__(self, store: Store, session: AsyncSession, report: ProvisionReport) -> None:
        self.store, self.session, self.report = store, session, report

    def fail(self, key: str, reason: str) -> ProvisionError:
        return ProvisionError(self.report.file, key, reason)

    async def _lookup(self, query: Any, key: str, what: str) -> Any:
        found = await self.session.scalar(query)
        if found is None:
            raise self.fail(key, f"no {what} (define it in this file or provision it first)")
        return found

    async def sid(self, login: str, key: str) -> str:
        query = select(Subscriber.sid).where(Subscriber.login == login)
        return str(await self._lookup(query, key, f"subscriber with login {login!r}"))

    async def group_id(self, name: str, key: str) -> int:
        query = select(DidGroup.id).where(DidGroup.name == name)
        return int(await self._lookup(query, key, f"DID group named {name!r}"))

    def count(self, kind: str, created: bool, changed: bool) -> None:
        tally = self.report.counts[kind]
        if created:
            tally.created += 1
        elif changed:
            tally.updated += 1
        else:
            tally.unchanged += 1

    async def subscriber(self, item: _Item) -> None:
        spec: SubscriberSpec = item.spec
        if "parent_sid" in item.refs:
            spec = replace(
                spec, parent_sid=await self.sid(item.refs["parent_sid"], f"{item.key}.parent")
            )
        row = await ops.subscriber_by_login(self.session, spec.login)
        if row is None:
            row = Subscriber(sid=ops.new_sid(), password_hash="", created=self.store.now())
            await ops.write_subscriber(self.session, row, spec)
            self.session.add(row)
            self.count("subscribers", created=True, changed=True)
            return
        info = await ops.subscriber_info(self.session, row)
        same = info.spec() == replace(spec, password=None)
        password_changed = await ops.write_subscriber(self.session, row, spec)
        self.count("subscribers", created=False, changed=password_changed or not same)

    async def did_group(self, item: _Item) -> None:
        flow_name = item.refs["call_flow_id"]
        flow = await self._lookup(
            select(CallFlow.id).where(CallFlow.name == flow_name),
            f"{item.key}.call_flow",
            f"call flow named {flow_name!r}",
        )
        spec = replace(item.spec, call_flow_id=int(flow))
        if "subscriber_sid" in item.refs:
            owner = await self.sid(item.refs["subscriber_sid"], f"{item.key}.subscriber")
            spec = replace(spec, subscriber_sid=owner)
        row = await ops.did_group_by_name(self.session, spec.name)
        created = row is None
        if row is None:
            row = DidGroup(state=-1, created=self.store.now())
        elif ops.did_group_info(row).spec() == spec:
            self.count("did_groups", created=False, changed=False)
            return
        await ops.write_did_group(self.session, row, spec)
        self.session.add(row)
        await self.session.flush()
        self.count("did_groups", created=created, changed=True)

    async def did(self, item: _Item) -> None:
        group = await self.group_id(item.refs["did_group_id"], f"{item.key}.did_group")
        spec = replace(item.spec, did_group_id=group)
        row = await ops.did_by_number(self.session, spec.phone_number)
        created = row is None
        if row is None:
            row = Did(state=-1, created=self.store.now())
        elif ops.did_info(row).spec() == spec:
            self.count("dids", created=False, changed=False)
            return
        await ops.write_did(self.session, row, spec)
        self.session.add(row)
        await self.session.flush()
        self.count("dids", created=created, changed=True)

    async def _room_spec(self, item: _Item) -> RoomSpec:
        group_ids: list[int] = []
        for name, ref in sorted(item.refs.items()):
            if not name.startswith("group"):
                continue
            index = int(name.removeprefix("group"))
            key = f"{item.key}.did_group" if index == 0 else f"{item.key}.did_groups[{index - 1}]"
            group_ids.append(await self.group_id(ref, key))
        spec: RoomSpec = item.spec
        owner = item.refs.get("subscriber_sid")
        return replace(
            spec,
            primary_did_group_id=group_ids[0],
            did_group_refs=tuple(sorted({DidGroupRef(gid, 0) for gid in group_ids})),
            subscriber_sid=None
            if owner is None
            else await self.sid(owner, f"{item.key}.subscriber"),
        )

    async def room(self, item: _Item) -> None:
        spec = await self._room_spec(item)
        query = select(MeetingRoom).where(MeetingRoom.meeting_number == spec.meeting_number)
        row = await self.session.scalar(query)
        created = row is None
        if row is None:
            row = MeetingRoom(created=self.store.now())
        elif ops.room_info(row).spec() == _canonical(spec):
            await self._claim(item, row)  # claims were cleared for the whole file: restore
            self.count("rooms", created=False, changed=False)
            return
        try:
            await ops.write_room(self.session, row, spec)
        except AccessCodeConflictError as exc:
            raise self._code_error(item, exc) from exc
        self.count("rooms", created=created, changed=True)

    async def _claim(self, item: _Item, row: MeetingRoom) -> None:
        try:
            await ops.claim_codes(self.session, row)
        except AccessCodeConflictError as exc:
            raise self._code_error(item, exc) from exc

    def _code_error(self, item: _Item, exc: AccessCodeConflictError) -> ProvisionError:
        codes = [key.code for key in item.spec.keychain]
        index = codes.index(exc.code) if exc.code in codes else 0
        return self.fail(f"{item.key}.keychain[{index}].code", str(exc))

    async def release_codes(self, rooms: list[_Item]) -> None:
        """Drop the claims of the file's rooms first, so a code may move between them."""
        wanted = [item.spec.meeting_number for item in rooms]
        ids = select(MeetingRoom.id).where(MeetingRoom.meeting_number.in_(wanted))
        await self.session.execute(delete(AccessCodeClaim).where(AccessCodeClaim.room_id.in_(ids)))


async def _apply(applier: _Applier, items: dict[str, list[_Item]]) -> None:
    steps = {
        "subscribers": applier.subscriber,
        "did_groups": applier.did_group,
        "dids": applier.did,
        "rooms": applier.room,
    }
    await applier.release_codes(items["rooms"])
    for kind in KINDS:
        for item in items[kind]:
            try:
                await steps[kind](item)
                await applier.session.flush()
            except ProvisionError:
                raise
            except StoreError as exc:
                raise applier.fail(item.key, str(exc)) from exc
            except IntegrityError as exc:  # a race with another writer, past our own checks
                raise applier.fail(item.key, f"the database refused it: {exc.orig}") from exc


async def provision_file(store: Store, path: Path) -> ProvisionReport:
    """Apply the provisioning file ``path`` (format in the module docstring) in one transaction.

    Raises ``ProvisionError`` naming the file, the key path and the reason; then nothing is
    written.
    """
    items = _read(path)
    _check_duplicates(path, items)
    report = ProvisionReport(path)
    async with store.transaction() as session:
        await _apply(_Applier(store, session, report), items)
    return report
