"""Provisioning files: the demo, idempotency, updates, atomicity and every error path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conf_server.store import ProvisionError, Role, Store
from conf_server.store.passwords import verify_password
from conf_server.store.provision import provision_file

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "config" / "demo.toml"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path}/store.db")
    yield opened
    await opened.close()


def _write(tmp_path: Path, text: str, name: str = "setup.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_demo_provisions_the_documented_values(store: Store) -> None:
    report = await provision_file(store, DEMO)
    assert report.changes == 4
    did = await store.find_did("+12125550100")
    assert did is not None
    group = did.did_group.id
    expected = {
        "1111": (100001, Role.HOST),
        "2222": (100001, Role.PARTICIPANT),
        "3333": (100001, Role.LISTENER),
        "4444": (100002, Role.HOST),
        "5555": (100002, Role.PARTICIPANT),
    }
    for code, (number, role) in expected.items():
        found = await store.find_room_by_code(group, code)
        assert found is not None, code
        assert (found[0].meeting_number, found[1]) == (number, role)
    open_room = await store.get_room(100001)
    assert not open_room.has_pins
    assert (await store.effective_attributes(did, open_room))["conference_start_how"] == "first"
    moderated = await store.get_room(100002)
    pins = {(p.pin, p.organizer) for p in await store.room_pins(moderated.id)}
    assert pins == {("2468", True), ("1357", False)}
    values = await store.effective_attributes(did, moderated)
    assert values["conference_start_how"] == "moderator"


async def test_second_run_reports_no_changes(store: Store) -> None:
    first = await provision_file(store, DEMO)
    second = await provision_file(store, DEMO)
    assert first.counts["rooms"].created == 2
    assert second.changes == 0
    assert second.counts["rooms"].unchanged == 2
    assert second.counts["dids"].unchanged == 1
    assert second.counts["did_groups"].unchanged == 1
    assert second.lines()[3] == "rooms: 0 created, 0 updated, 2 unchanged"


FULL = """
region = "GB"

[[subscribers]]
login = "alice"
password = "pw"
first_name = "Alice"

[[subscribers]]
login = "bob"
parent = "alice"

[[did_groups]]
name = "uk"
subscriber = "alice"
attributes = { call_operator_after = 5 }

[[did_groups]]
name = "partners"

[[dids]]
number = "020 7183 8750"
did_group = "uk"
attributes = { dnis_welcomeprompt = "welcome" }

[[rooms]]
meeting_number = 200001
did_group = "uk"
did_groups = ["partners"]
subscriber = "alice"
description = "Board"
attributes = { conference_stop_how = "moderator" }
keychain = [{ code = "0123", role = 1 }, { code = "9", role = "LISTENER" }]
pins = [{ pin = "42", organizer = true }]
"""


async def test_every_kind_with_references_and_idempotent_passwords(
    store: Store, tmp_path: Path
) -> None:
    path = _write(tmp_path, FULL)
    report = await provision_file(store, path)
    assert [(k, c.created) for k, c in report.counts.items()] == [
        ("subscribers", 2), ("did_groups", 2), ("dids", 1), ("rooms", 1),
    ]  # fmt: skip
    alice = await store.find_subscriber("alice")
    bob = await store.find_subscriber("bob")
    assert alice is not None
    assert bob is not None
    assert verify_password("pw", alice.password_hash)
    assert bob.parent_sid == alice.sid
    did = await store.find_did("+442071838750")
    assert did is not None
    partners = await store.find_did_group("partners")
    assert partners is not None
    found = await store.find_room_by_code(partners.id, "0123")  # leading zero kept
    assert found is not None
    room, role = found
    assert role is Role.HOST
    assert room.subscriber_sid == alice.sid
    values = await store.effective_attributes(did, room)
    assert (values["call_operator_after"], values["dnis_welcomeprompt"]) == (5, "welcome")
    assert values["conference_stop_how"] == "moderator"
    assert (await provision_file(store, path)).changes == 0


async def test_changes_are_counted_as_updates(store: Store, tmp_path: Path) -> None:
    await provision_file(store, _write(tmp_path, FULL))
    changed = FULL.replace('password = "pw"', 'password = "new"').replace(
        '{ pin = "42", organizer = true }', '{ pin = "42" }'
    )
    report = await provision_file(store, _write(tmp_path, changed, "changed.toml"))
    assert report.counts["subscribers"].updated == 1
    assert report.counts["subscribers"].unchanged == 1
    assert report.counts["rooms"].updated == 1
    assert report.changes == 2
    alice = await store.find_subscriber("alice")
    assert alice is not None
    assert verify_password("new", alice.password_hash)
    room = await store.get_room(200001)
    assert [(p.pin, p.organizer) for p in room.pins] == [("42", False)]


async def test_a_code_may_move_between_rooms_of_one_file(store: Store, tmp_path: Path) -> None:
    rooms = """
[[did_groups]]
name = "g"
[[rooms]]
meeting_number = 1
did_group = "g"
keychain = [{KEYS1}]
[[rooms]]
meeting_number = 2
did_group = "g"
keychain = [{KEYS2}]
"""
    key = '{ code = "7", role = "host" }'
    # room 1 comes first in the file and takes the code room 2 still holds until later
    before = rooms.replace("{KEYS1}", "").replace("{KEYS2}", key)
    after = rooms.replace("{KEYS1}", key).replace("{KEYS2}", "")
    await provision_file(store, _write(tmp_path, before))
    report = await provision_file(store, _write(tmp_path, after, "after.toml"))
    assert report.counts["rooms"].updated == 2
    group = await store.find_did_group("g")
    assert group is not None
    found = await store.find_room_by_code(group.id, "7")
    assert found is not None
    assert found[0].meeting_number == 1


BASE = """
[[did_groups]]
name = "g"

[[rooms]]
meeting_number = 1
did_group = "g"
keychain = [{ code = "1", role = "host" }]
"""

# (file text, key path named in the error, reason fragment)
ERRORS = [
    ("[[rooms]\n", "(top level)", "not valid TOML"),
    ("colour = 1\n", "colour", "unknown key"),
    ("region = 1\n", "region", "must be a string"),
    ("rooms = 3\n", "rooms", "must be a list"),
    ("rooms = [3]\n", "rooms[0]", "must be a table"),
    ('[[did_groups]]\nname = "g"\nbogus = 1\n', "did_groups[0].bogus", "unknown key"),
    ("[[did_groups]]\ndescription = 'x'\n", "did_groups[0].name", "is required"),
    ('[[did_groups]]\nname = "g"\ncall_flow = "SPECTEL"\n', "did_groups[0].call_flow",
     "no call flow named 'SPECTEL'"),
    ('[[did_groups]]\nname = "g"\nsubscriber = "x"\n', "did_groups[0].subscriber",
     "no subscriber with login 'x'"),
    ('[[did_groups]]\nname = "g"\nattributes = { conference_start_how = "later" }\n',
     "did_groups[0].attributes.conference_start_how", "'later' is not one of"),
    ('[[did_groups]]\nname = "g"\nattributes = { conference_lock_dtmf_binding = "*6" }\n',
     "did_groups[0]", "collide with"),
    ('[[did_groups]]\nname = "g"\nattributes = 5\n', "did_groups[0].attributes",
     "must be a table"),
    ('[[did_groups]]\nname = "g"\n[[did_groups]]\nname = "g"\n', "did_groups[1]",
     "already defined at did_groups[0]"),
    ('[[dids]]\nnumber = "12"\ndid_group = "g"\n', "dids[0].number", "not a valid phone number"),
    ('[[dids]]\nnumber = 12125550100\ndid_group = "g"\n', "dids[0].number", "must be a string"),
    ('[[dids]]\nnumber = "+12125550100"\ndid_group = "nowhere"\n', "dids[0].did_group",
     "no DID group named 'nowhere'"),
    ('[[dids]]\nnumber = "+12125550100"\ndid_group = "g"\n'
     'attributes = { conference_maxcalls = 2 }\n',
     "dids[0].attributes.conference_maxcalls", "cannot be set on a DID"),
    ('[[dids]]\nnumber = "+12125550100"\ndid_group = "g"\n[[dids]]\nnumber = "2125550100"\n'
     'did_group = "g"\n', "dids[1]", "'+12125550100' is already defined at dids[0]"),
    ("[[rooms]]\ndid_group = 'g'\n", "rooms[1].meeting_number", "is required"),
    ("[[rooms]]\nmeeting_number = '1'\ndid_group = 'g'\n", "rooms[1].meeting_number",
     "must be an integer"),
    ("[[rooms]]\nmeeting_number = -4\ndid_group = 'g'\n", "rooms[1].meeting_number",
     "must be positive"),
    ("[[rooms]]\nmeeting_number = 9\n", "rooms[1].did_group", "is required"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\ndid_groups = [3]\n",
     "rooms[1].did_groups[0]", "must be a DID group name"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\ndid_groups = ['zz']\n",
     "rooms[1].did_groups[0]", "no DID group named 'zz'"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nsubscriber = 'nobody'\n",
     "rooms[1].subscriber", "no subscriber with login 'nobody'"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nkeychain = [{ code = 1234, role = 1 }]\n",
     "rooms[1].keychain[0].code", "must be a string"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nkeychain = [{ code = '12#', role = 1 }]\n",
     "rooms[1].keychain[0].code", "must be 1-32 keys"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nkeychain = [{ code = '5', role = 'boss' }]\n",
     "rooms[1].keychain[0].role", "role must be"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nkeychain = [{ code = '5', role = 1 },"
     " { code = '5', role = 2 }]\n", "rooms[1].keychain[1].code", "appears twice"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nkeychain = [{ code = '5', role = 1,"
     " colour = 2 }]\n", "rooms[1].keychain[0].colour", "unknown key"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nkeychain = [{ code = '5', role = 1 },"
     " { code = '1', role = 2 }]\n", "rooms[1].keychain[1].code", "access code '1' is already"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\npins = [{ pin = 'x' }]\n",
     "rooms[1].pins[0].pin", "PIN 'x' must be"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\npins = [{ pin = '1', organizer = 'yes' }]\n",
     "rooms[1].pins[0].organizer", "must be true or false"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\npins = [{ pin = '1' }, { pin = '1' }]\n",
     "rooms[1].pins[1].pin", "appears twice"),
    ("[[rooms]]\nmeeting_number = 1\ndid_group = 'g'\n", "rooms[1]",
     "1 is already defined at rooms[0]"),
    ("[[rooms]]\nmeeting_number = 9\ndid_group = 'g'\nattributes = { call_operator_after = 1 }\n",
     "rooms[1].attributes.call_operator_after", "cannot be set on a meeting room"),
    ('[[subscribers]]\nlogin = "a"\nrole = 9\n', "subscribers[0].role", "must be 1, 2 or 3"),
    ('[[subscribers]]\nlogin = "a"\nparent = "zed"\n', "subscribers[0].parent",
     "no subscriber with login 'zed'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "reason"), ERRORS, ids=[e[1] for e in ERRORS])
async def test_bad_files_name_file_key_and_reason(
    store: Store, tmp_path: Path, text: str, key: str, reason: str
) -> None:
    # DIDs and rooms are tested in a file whose BASE already defines group "g" and room 1.
    body = BASE + text if text.startswith(("[[rooms]]", "[[dids]]")) else text
    path = _write(tmp_path, body)
    with pytest.raises(ProvisionError) as caught:
        await provision_file(store, path)
    error = caught.value
    assert (error.file, error.key or "(top level)") == (path, key)
    assert reason in error.reason
    assert str(error).startswith(f"{path}: {key}: ")
    assert (await store.list_rooms()).total == 0  # one transaction: nothing was written
    assert (await store.list_did_groups()).total == 0


async def test_missing_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ProvisionError, match=r"absent.toml: \(top level\): cannot read the file"):
        await provision_file(store, path)


async def test_conflict_with_a_room_outside_the_file(store: Store, tmp_path: Path) -> None:
    await provision_file(store, _write(tmp_path, BASE))
    other = (
        '[[rooms]]\nmeeting_number = 2\ndid_group = "g"\n'
        'keychain = [{ code = "3", role = 1 }, { code = "1", role = 2 }]\n'
    )
    with pytest.raises(ProvisionError) as caught:
        await provision_file(store, _write(tmp_path, other, "other.toml"))
    assert caught.value.key == "rooms[0].keychain[1].code"
    assert "already used by meeting room 1" in caught.value.reason
