"""HTTP Basic auth, the three roles, and the spec's error bodies and codes."""

from __future__ import annotations

import base64

import pytest

from conf_server.api.auth import parse_basic
from conf_server.api.errors import AuthenticationError
from tests.conf_server.api.conftest import ADMIN, ALICE, BASE, BOB, OPERATOR, World, basic

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer abc", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()],
)
def test_malformed_basic_credentials_are_refused(header: str | None) -> None:
    with pytest.raises(AuthenticationError):
        parse_basic(header)


def test_basic_credentials_golden() -> None:
    assert parse_basic("Basic " + base64.b64encode(b"alice:pa:ss").decode()) == ("alice", "pa:ss")


async def test_missing_and_wrong_credentials_are_401_with_the_spec_body(world: World) -> None:
    for headers in ({}, basic(("alice", "wrong")), basic(("nobody", "x"))):
        r = await world.client.get(f"{BASE}/meetingRooms", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic")
        assert r.json() == {
            "message": "authentication required",
            "errors": [
                {"field": "cause", "message": "authentication required", "reference_sid": None}
            ],
        }


async def test_a_cached_check_still_refuses_a_changed_password(world: World) -> None:
    assert (await world.client.get(f"{BASE}/subscribers/whoami", headers=basic(ALICE))).is_success
    r = await world.client.put(
        f"{BASE}/subscribers/{world.alice_sid}", headers=basic(ALICE), json={"password": "new-one"}
    )
    assert r.status_code == 200
    assert "password" not in r.json()
    old = await world.client.get(f"{BASE}/subscribers/whoami", headers=basic(ALICE))
    assert old.status_code == 401
    new = await world.client.get(f"{BASE}/subscribers/whoami", headers=basic(("alice", "new-one")))
    assert new.json()["login"] == "alice"


async def test_regular_user_sees_and_changes_only_own_rooms(world: World) -> None:
    mine = await world.client.get(f"{BASE}/meetingRooms", headers=basic(ALICE))
    assert [r["meetingNumber"] for r in mine.json()["meetingRooms"]] == [world.alice_room]
    other = f"{BASE}/meetingRooms/{world.bob_room}"
    assert (await world.client.get(other, headers=basic(ALICE))).status_code == 403
    put = await world.client.put(other, headers=basic(ALICE), json={"description": "x"})
    assert put.status_code == 403
    assert put.json()["message"] == "permission denied"
    assert (await world.client.delete(other, headers=basic(ALICE))).status_code == 403
    made = await world.client.post(
        f"{BASE}/meetingRooms", headers=basic(BOB), json={"primaryDidGroupId": world.group_id}
    )
    assert made.status_code == 201
    assert made.json()["subscriberSid"] == world.bob_sid


async def test_only_an_administrator_hands_a_room_to_another_subscriber(world: World) -> None:
    room = f"{BASE}/meetingRooms/{world.alice_room}"
    grab = await world.client.put(room, headers=basic(ALICE), json={"subscriberSid": world.bob_sid})
    assert grab.status_code == 403
    same = await world.client.put(
        room, headers=basic(ALICE), json={"subscriberSid": world.alice_sid}
    )
    assert same.status_code == 200  # naming the current owner changes nothing
    gone = await world.client.put(room, headers=basic(ADMIN), json={"subscriberSid": "SI-none"})
    assert gone.status_code == 422
    moved = await world.client.put(
        room, headers=basic(ADMIN), json={"subscriberSid": world.bob_sid}
    )
    assert moved.json()["subscriberSid"] == world.bob_sid
    assert (await world.client.get(room, headers=basic(BOB))).status_code == 200
    assert (await world.client.get(room, headers=basic(ALICE))).status_code == 403


async def test_operator_reads_everything_but_writes_no_store_object(world: World) -> None:
    rooms = await world.client.get(f"{BASE}/meetingRooms", headers=basic(OPERATOR))
    assert rooms.json()["total"] == 2
    put = await world.client.put(
        f"{BASE}/meetingRooms/{world.alice_room}",
        headers=basic(OPERATOR),
        json={"description": "x"},
    )
    assert put.status_code == 403
    did = await world.client.post(
        f"{BASE}/dids",
        headers=basic(OPERATOR),
        json={"didGroupId": world.group_id, "phoneNumber": "+15162065300"},
    )
    assert did.status_code == 403


async def test_only_an_administrator_manages_subscribers(world: World) -> None:
    body = {"login": "carol", "password": "pw"}
    assert (
        await world.client.post(f"{BASE}/subscribers", headers=basic(ALICE), json=body)
    ).status_code == 403
    made = await world.client.post(f"{BASE}/subscribers", headers=basic(ADMIN), json=body)
    assert made.status_code == 200
    who = await world.client.get(f"{BASE}/subscribers/whoami", headers=basic(ADMIN))
    assert made.json()["parentSid"] == who.json()["sid"]
    promote = await world.client.put(
        f"{BASE}/subscribers/{world.alice_sid}", headers=basic(ALICE), json={"role": 1}
    )
    assert promote.status_code == 403
    listed = await world.client.get(f"{BASE}/subscribers", headers=basic(ALICE))
    assert [s["login"] for s in listed.json()["subscribers"]] == ["alice"]


async def test_error_bodies_and_codes(world: World) -> None:
    c, admin = world.client, basic(ADMIN)
    bad_json = await c.post(f"{BASE}/dids", headers={**admin, **JSON}, content=b'{"a": ')
    assert (bad_json.status_code, bad_json.json()) == (
        400,
        {
            "body": {"message": "cannot parse json. Check json for validity", "errors": None},
            "status": 400,
        },
    )
    not_json = await c.post(
        f"{BASE}/dids", headers={**admin, "Content-Type": "text/plain"}, content=b"x=1"
    )
    assert not_json.status_code == 415
    assert not_json.json()["message"] == "unsupported media type"
    missing = await c.get(f"{BASE}/meetingRooms/999999", headers=admin)
    assert (missing.status_code, missing.json()) == (
        404,
        {
            "message": "no item error",
            "errors": [
                {"field": None, "message": "cannot find meeting room", "reference_sid": None}
            ],
        },
    )
    invalid = await c.post(f"{BASE}/meetingRooms", headers=admin, json={"description": 5})
    assert invalid.status_code == 422
    fields = {e["field"] for e in invalid.json()["errors"]}
    assert fields == {"primaryDidGroupId", "description"}
    typo = await c.put(
        f"{BASE}/meetingRooms/{world.alice_room}", headers=admin, json={"descripton": "x"}
    )
    assert typo.status_code == 422
    assert typo.json()["errors"][0]["field"] == "descripton"
    bad_filter = await c.get(f"{BASE}/dids", headers=admin, params={"filter": "phoneNumber eq"})
    assert bad_filter.status_code == 400
    assert bad_filter.json()["errors"][0]["field"] == "filter"


async def test_conflicts_are_409(world: World) -> None:
    c, admin = world.client, basic(ADMIN)
    keys = {"keychain": [{"accessCode": "4242", "role": 1}]}
    assert (
        await c.put(f"{BASE}/meetingRooms/{world.alice_room}", headers=admin, json=keys)
    ).is_success
    clash = await c.put(f"{BASE}/meetingRooms/{world.bob_room}", headers=admin, json=keys)
    assert clash.status_code == 409
    assert "4242" in clash.json()["errors"][0]["message"]
    dup = await c.post(
        f"{BASE}/subscribers", headers=admin, json={"login": "alice", "password": "x"}
    )
    assert dup.status_code == 409


async def test_pins_per_room(world: World) -> None:
    c, alice = world.client, basic(ALICE)
    url = f"{BASE}/meetingRooms/{world.alice_room}/pins"
    assert (await c.get(url, headers=alice)).json() == []
    added = await c.post(url, headers=alice, json={"pin": "9876", "organizer": True})
    assert added.json() == {"pin": "9876", "organizer": True}
    assert (await c.post(url, headers=alice, json={"pin": "9876"})).status_code == 409
    assert (await c.get(url, headers=basic(BOB))).status_code == 403
    assert (await c.get(url, headers=basic(OPERATOR))).status_code == 403
    assert (await world.store.get_room(world.alice_room)).has_pins
    assert (await c.delete(f"{url}/9876", headers=alice)).status_code == 204
    assert (await c.delete(f"{url}/9876", headers=alice)).status_code == 404
    assert (await c.get(url, headers=alice)).json() == []


async def test_key_without_code_gets_a_free_one(world: World) -> None:
    url = f"{BASE}/meetingRooms/{world.alice_room}/keychain"
    made = await world.client.post(url, headers=basic(ALICE), json={"role": "listener"})
    assert made.status_code == 200
    body = made.json()
    assert body["role"] == 3 and body["accessCode"].isdigit() and len(body["accessCode"]) == 6
    room = await world.store.get_room(world.alice_room)
    assert [k.code for k in room.keychain] == [body["accessCode"]]


async def test_files_must_be_8khz_mono_wav(world: World) -> None:
    from tests.conf_server.api.test_curl_examples import wav_bytes

    url = f"{BASE}/subscribers/{world.alice_sid}/files"
    stereo = {"file": ("a.wav", wav_bytes(channels=2), "audio/wav")}
    r = await world.client.post(url, headers=basic(ALICE), files=stereo)
    assert r.status_code == 422
    assert "8000 Hz mono 16-bit PCM, not 8000 Hz, 2 channel(s)" in r.json()["errors"][0]["message"]
    escape = {"file": ("../x.wav", wav_bytes(), "audio/wav")}
    assert (await world.client.post(url, headers=basic(ALICE), files=escape)).status_code == 422
    ok = {"file": ("hold.wav", wav_bytes(1.0), "audio/wav")}
    saved = await world.client.post(url, headers=basic(ALICE), files=ok)
    assert saved.json()["duration"] == 1000
    assert (await world.client.post(url, headers=basic(BOB), files=ok)).status_code == 403
    path = world.app.state.files.path_of(world.alice_sid, "hold.wav")
    assert path.read_bytes() == wav_bytes(1.0)
