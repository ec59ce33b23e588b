"""Live meetings and calls through LiveControl + MeetingService, and the Sinch operations."""

from __future__ import annotations

from conf_server.domain.attributes import Role
from conf_server.domain.meeting import (
    CallLeft,
    CallMuted,
    Hangup,
    LeaveReason,
    LockChanged,
    SetFlags,
)
from media.mixer import MAX_GAIN_DB, MIN_GAIN_DB
from tests.conf_server.api.conftest import ALICE, BASE, BOB, OPERATOR, World, basic


def _flags(world: World, call: str) -> SetFlags:
    return [a for a in world.bridge.applied if isinstance(a, SetFlags) and a.call == call][-1]


async def test_sinch_info_mute_unmute_kick_and_kick_all(world: World) -> None:
    """Sinch: GET conference info, PATCH mute/unmute, DELETE participant, DELETE conference."""
    b, c, op = world.bridge, world.client, basic(OPERATOR)
    room = world.alice_room
    b.join("h", room, Role.HOST)
    b.join("p1", room, Role.PARTICIPANT)
    b.join("p2", room, Role.PARTICIPANT)
    info = await c.get(f"{BASE}/calls", headers=op, params={"filter": f"meetingNumber eq {room}"})
    assert {x["id"] for x in info.json()["calls"]} == {"h", "p1", "p2"}
    muted = await c.put(f"{BASE}/calls/p1", headers=op, json={"muteMode": 40})
    assert muted.json()["calls"][0]["muteMode"] == 40
    assert _flags(world, "p1").muted
    assert isinstance(b.events[-1], CallMuted) and b.events[-1].by == "api"
    unmuted = await c.put(f"{BASE}/calls/p1", headers=op, json={"muteMode": 0})
    assert unmuted.json()["calls"][0]["muteMode"] == 0
    assert not _flags(world, "p1").muted
    kicked = await c.delete(f"{BASE}/calls/p2", headers=op)
    assert kicked.status_code == 204
    assert Hangup("p2", LeaveReason.KICKED) in b.applied
    left = [e for e in b.events if isinstance(e, CallLeft)]
    assert (left[-1].call, left[-1].reason) == ("p2", LeaveReason.KICKED)
    assert (await c.get(f"{BASE}/calls/p2", headers=op)).status_code == 404
    ended = await c.delete(f"{BASE}/meetings/{room}", headers=op)
    assert ended.status_code == 204
    assert {a.call for a in b.applied if isinstance(a, Hangup)} == {"h", "p1", "p2"}
    assert (await c.get(f"{BASE}/meetings", headers=op)).json()["total"] == 0


async def test_call_update_changes_gain_hold_and_name(world: World) -> None:
    b, c = world.bridge, world.client
    b.join("h", world.alice_room, Role.HOST)
    b.join("p", world.alice_room, Role.PARTICIPANT)
    body = {"gainLevel": 6, "holdMode": 40, "customName": "Reception"}
    r = await c.put(f"{BASE}/calls/p", headers=basic(ALICE), json=body)
    call = r.json()["calls"][0]
    assert (call["gainLevel"], call["holdMode"], call["customName"]) == (6, 40, "Reception")
    flags = _flags(world, "p")
    assert (flags.gain_in_db, flags.held) == (6.0, True)


async def test_call_update_is_checked_before_any_change(world: World) -> None:
    b, c = world.bridge, world.client
    b.join("h", world.alice_room, Role.HOST)
    b.join("l", world.alice_room, Role.LISTENER)
    before = len(b.applied)
    bad_mode = await c.put(
        f"{BASE}/calls/h", headers=basic(ALICE), json={"gainLevel": 3, "muteMode": 7}
    )
    assert bad_mode.status_code == 422
    assert bad_mode.json()["errors"][0]["field"] == "muteMode"
    too_loud = await c.put(f"{BASE}/calls/h", headers=basic(ALICE), json={"gainLevel": 99})
    assert too_loud.status_code == 422
    listener = await c.put(f"{BASE}/calls/l", headers=basic(ALICE), json={"muteMode": 0})
    assert listener.status_code == 409
    assert listener.json()["errors"] == [
        {
            "field": "muteMode",
            "message": "a listener is never heard and cannot be unmuted",
            "reference_sid": None,
        }
    ]
    both = await c.put(
        f"{BASE}/calls/l", headers=basic(ALICE), json={"gainLevel": 3, "muteMode": 0}
    )
    assert both.status_code == 409  # the service refuses the mute before the gain is changed
    assert len(b.applied) == before
    shown = await c.get(f"{BASE}/calls/l", headers=basic(ALICE))
    assert shown.json()["muteMode"] == 32


async def test_gain_is_refused_beyond_the_mixers_limits_and_taken_at_them(world: World) -> None:
    """The API shows the mixer's range (media.mixer) as the service applies it, never clamped."""
    b, c = world.bridge, world.client
    b.join("h", world.alice_room, Role.HOST)
    before = len(b.applied)
    for beyond in (MAX_GAIN_DB + 1, MIN_GAIN_DB - 1):
        r = await c.put(f"{BASE}/calls/h", headers=basic(ALICE), json={"gainLevel": int(beyond)})
        assert r.status_code == 422
        assert r.json() == {
            "message": "object validation error",
            "errors": [
                {
                    "field": "gainLevel",
                    "message": f"gain {int(beyond)} dB is outside [-20, 20] dB",
                    "reference_sid": None,
                }
            ],
        }
    assert len(b.applied) == before
    for limit in (MAX_GAIN_DB, MIN_GAIN_DB):
        r = await c.put(f"{BASE}/calls/h", headers=basic(ALICE), json={"gainLevel": int(limit)})
        assert r.status_code == 200
        assert r.json()["calls"][0]["gainLevel"] == limit
        assert _flags(world, "h").gain_in_db == limit  # what the mixer is given, as shown


async def test_live_attributes_and_switches(world: World) -> None:
    b, c, alice = world.bridge, world.client, basic(ALICE)
    b.join("h", world.alice_room, Role.HOST)
    url = f"{BASE}/meetings/{world.alice_room}/attributes"
    off = await c.put(f"{url}/conference_exittones", headers=alice, json={"value": "off"})
    assert off.json() == [{"name": "conference_exittones", "value": "off"}]
    assert b.svc.meeting(str(world.alice_room)).rules.exit_tones is False
    locked = await c.put(f"{url}/conference_locked", headers=alice, json={"value": "on"})
    assert locked.json() == [{"name": "conference_locked", "value": "on"}]
    assert isinstance(b.events[-1], LockChanged) and b.events[-1].locked
    meeting = await c.get(f"{BASE}/meetings/{world.alice_room}", headers=alice)
    assert meeting.json()["locked"] is True
    counts = await c.get(url, headers=alice, params={"filter": 'name like "conf_%_count"'})
    assert {a["name"]: a["value"] for a in counts.json()} == {
        "conf_hosts_count": "1",
        "conf_listeners_count": "0",
        "conf_participants_count": "0",
    }
    readonly = await c.put(f"{url}/conf_hosts_count", headers=alice, json={"value": "3"})
    assert readonly.status_code == 422
    unknown = await c.put(f"{url}/no_such_attribute", headers=alice, json={"value": "x"})
    assert unknown.status_code == 422
    assert "unknown attribute" in unknown.json()["errors"][0]["message"]
    bad = await c.put(f"{url}/conference_muted", headers=alice, json={"value": "maybe"})
    assert bad.status_code == 422


async def test_regular_users_control_only_their_own_meetings(world: World) -> None:
    b, c = world.bridge, world.client
    b.join("a", world.alice_room, Role.HOST)
    b.join("b", world.bob_room, Role.HOST)
    mine = await c.get(f"{BASE}/meetings", headers=basic(ALICE))
    assert [m["meetingNumber"] for m in mine.json()["meetings"]] == [world.alice_room]
    assert mine.json()["meetings"][0]["subscriberName"] == "Alice"
    calls = await c.get(f"{BASE}/calls", headers=basic(BOB))
    assert [x["id"] for x in calls.json()["calls"]] == ["b"]
    assert (
        await c.put(f"{BASE}/calls/a", headers=basic(BOB), json={"muteMode": 40})
    ).status_code == 403
    assert (
        await c.delete(f"{BASE}/meetings/{world.alice_room}", headers=basic(BOB))
    ).status_code == 403
    assert b.svc.has_call("a")


async def test_unknown_meeting_and_call_are_404(world: World) -> None:
    c, op = world.client, basic(OPERATOR)
    assert (await c.get(f"{BASE}/meetings/{world.alice_room}", headers=op)).status_code == 404
    r = await c.put(f"{BASE}/calls/nope", headers=op, json={"muteMode": 40})
    assert r.status_code == 404
    assert r.json()["errors"][0]["message"] == "cannot find call"
