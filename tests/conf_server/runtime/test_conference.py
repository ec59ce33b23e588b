"""The conference runtime against a recording engine, a fake call layer and the real store.

What is checked is the mapping the module docstring promises: IVR prompts and lookups, the join
into the right meeting with the right role, hold music for a caller outside the mix, hang-up
after the queued prompts, leave on hang-up, and the LiveControl seam the REST API uses. Prompt
ends are driven by hand (``finish``), so nothing here waits on audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import structlog
from numpy.typing import NDArray

from conf_server.domain.attributes import Role
from conf_server.domain.live import LiveControl
from conf_server.domain.lockout import Lockout, LockoutPolicy
from conf_server.domain.meeting import CallJoined, Event, MeetingStarted, TalkingChanged
from conf_server.prompts import load_language
from conf_server.runtime.calls import Call, CallHooks
from conf_server.runtime.conference import HOLD_PREFIX, Conference
from conf_server.runtime.conference_media import PromptLibrary
from conf_server.runtime.seams import EngineControl
from conf_server.store import Store
from conf_server.store.provision import provision_file
from media.dtmf import Digit
from media.mixer import MAX_GAIN_DB, MIN_GAIN_DB
from sip.events import DialogId, InviteId

ROOT = Path(__file__).resolve().parents[3]
DID = "+12125550100"


class Playback:
    def __init__(self, names: list[str], exclusive: bool, on_done: Callable[[], None] | None):
        self.names = names
        self.exclusive = exclusive
        self.on_done = on_done
        self.cancelled = False
        self.done = False

    def cancel(self) -> None:
        self.cancelled = True


class Engine:
    """Records what the conference asks of the media engine."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # id(clip) → prompt name, to read plays back as names
        self.log: list[tuple[Any, ...]] = []
        self.plays: dict[Any, list[Playback]] = {}
        self.recordings: list[tuple[Any, float, Callable[[NDArray[np.int16]], None]]] = []

    def play(self, leg: Any, clips: Sequence[NDArray[np.int16]], *, exclusive: bool,
             on_done: Callable[[], None] | None = None) -> Playback:  # fmt: skip
        handle = Playback([self.names.get(id(c), "tone") for c in clips], exclusive, on_done)
        self.plays.setdefault(leg, []).append(handle)
        return handle

    def play_meeting(
        self, meeting: str, clips: Sequence[NDArray[np.int16]], *, exclude: Sequence[Any] = ()
    ) -> None:
        names = [self.names.get(id(c), "tone") for c in clips]
        self.log.append(("play_meeting", meeting, names, tuple(exclude)))

    def record(
        self, leg: Any, seconds: float, on_done: Callable[[NDArray[np.int16]], None]
    ) -> None:
        self.recordings.append((leg, seconds, on_done))

    def join(self, leg: Any, meeting: str) -> None:
        self.log.append(("join", leg, meeting))

    def leave(self, leg: Any) -> None:
        self.log.append(("leave", leg))

    def set_flags(self, leg: Any, **flags: Any) -> None:
        self.log.append(("flags", leg, flags))

    def watch_talking(self, leg: Any, callback: Callable[[bool], None] | None) -> None:
        leg.on_talking = callback  # the real engine sets it between ticks

    def current(self, leg: Any) -> Playback:
        live = [p for p in self.plays.get(leg, []) if not p.cancelled and not p.done]
        return live[-1]

    def finish(self, leg: Any) -> list[str]:
        """The leg's current prompt ends by itself; returns its names."""
        handle = self.current(leg)
        handle.done = True
        assert handle.on_done is not None
        handle.on_done()
        return handle.names


class Leg:
    def __init__(self, name: str) -> None:
        self.name = name
        self.on_talking: Callable[[bool], None] | None = None

    def __repr__(self) -> str:
        return self.name


class Manager:
    """The ``calls.CallControl`` the conference's calls use; a hang-up ends the call at once."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.hung_up: list[str] = []
        self.conference: Conference | None = None

    def spawn(self, call: Call, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)

    def end_call(self, call: Call) -> None:
        if call.id not in self.calls:
            return
        self.hung_up.append(call.id)
        self.end(call, "local_bye")

    def end(self, call: Call, reason: str) -> None:
        if self.calls.pop(call.id, None) is not None and self.conference is not None:
            for task in call.tasks:
                task.cancel()
            self.conference.ended(call, reason)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    await provision_file(store, ROOT / "config" / "demo.toml")
    yield store
    await store.close()


@pytest.fixture
def library() -> tuple[PromptLibrary, dict[int, str]]:
    prompts = load_language(ROOT / "config" / "prompts", "en").prompts
    return PromptLibrary(prompts), {id(clip): name for name, clip in prompts.items()}


class Rig:
    def __init__(self, store: Store, library: tuple[PromptLibrary, dict[int, str]]) -> None:
        self.store = store
        self.engine = Engine(library[1])
        self.manager = Manager()
        self.conference = Conference(
            store,
            cast(EngineControl, self.engine),
            library[0],
            lockout=Lockout(LockoutPolicy(threshold=3)),
            rollcall_seconds=0.0,
        )
        self.manager.conference = self.conference
        self.events: list[Event] = []
        self.unsubscribe = self.conference.subscribe(self.events.append)

    async def settle(self) -> None:
        for _ in range(20):  # store lookups are a few awaits each
            await asyncio.sleep(0.01)

    async def answer(self, name: str, caller: str = "+15550001") -> Call:
        call = Call(
            id=name,
            did=DID,
            caller=caller,
            peer="192.0.2.9:5060",
            source_ip="192.0.2.9",
            invite_id=InviteId(name),
            started=self.conference.now(),
            log=structlog.get_logger().bind(call_id=name),
            control=self.manager,
            dialog_id=DialogId(name, "a", "b"),
            did_info=await self.store.find_did(DID),  # as the call layer routes it
            leg=cast(Any, Leg(name)),  # the engine double's leg
            answered=self.conference.now(),
        )
        self.manager.calls[name] = call
        self.conference.answered(call)
        await self.settle()
        return call

    async def keys(self, call: Call, keys: str) -> None:
        for key in keys:
            self.conference.digit(call, Digit(key, 100, "rfc4733"))
        await self.settle()

    async def enter(self, call: Call, *codes: str) -> None:
        assert self.engine.finish(call.leg) == ["welcome", "enter_access_code"]
        for code in codes:
            await self.keys(call, code)


async def test_code_joins_the_room_with_its_role(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    with structlog.testing.capture_logs() as logs:
        call = await rig.answer("c1")
        assert rig.engine.current(call.leg).exclusive
        await rig.enter(call, "2222#")
    assert rig.conference.service.room_of("c1") == "100001"
    assert ("join", call.leg, "100001") in rig.engine.log
    flags = [e[2] for e in rig.engine.log if e[0] == "flags" and e[1] is call.leg]
    assert flags[-1]["muted"] is False and flags[-1]["listener"] is False
    assert rig.engine.current(call.leg).names == ["first_participant"]
    (joined,) = [line for line in logs if line["event"] == "call.joined"]
    assert joined["since_last_key_ms"] >= 0
    assert [type(e) for e in rig.events] == [CallJoined, MeetingStarted]
    info = rig.conference.call_info("c1")
    assert info is not None and (info.room, info.role, info.caller) == (
        "100001",
        Role.PARTICIPANT,
        "+15550001",
    )
    # The call layer's ``call.ended`` line uses call.log: meeting and role are bound on it.
    with structlog.testing.capture_logs() as logs:
        call.log.info("probe")
    assert (logs[0]["meeting"], logs[0]["role"]) == ("100001", "participant")


async def test_waiting_caller_hears_music_until_the_host_then_joins(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    guest = await rig.answer("guest")
    await rig.enter(guest, "5555#")
    assert rig.engine.finish(guest.leg) == ["enter_pin"]
    await rig.keys(guest, "1357#")
    assert rig.conference.service.meeting("100002").state.value == "waiting"
    assert ("join", guest.leg, HOLD_PREFIX + "guest") in rig.engine.log
    assert ("flags", guest.leg, {"held": True}) in rig.engine.log
    assert rig.engine.current(guest.leg).names == ["waiting_for_host"]

    host = await rig.answer("host", caller="+15550002")
    await rig.enter(host, "4444#")
    rig.engine.finish(host.leg)
    await rig.keys(host, "2468#")  # the organizer PIN
    assert rig.conference.service.participant("host").role is Role.HOST
    after = rig.engine.log[rig.engine.log.index(("flags", guest.leg, {"held": True})) :]
    assert ("leave", guest.leg) in after and ("join", guest.leg, "100002") in after
    last_flags = [e[2] for e in after if e[0] == "flags" and e[1] is guest.leg][-1]
    assert last_flags["held"] is False


async def test_refused_caller_is_hung_up_only_after_the_prompt(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    host = await rig.answer("host")
    await rig.enter(host, "1111#")
    await rig.keys(host, "*7")  # lock
    assert rig.conference.service.meeting("100001").locked
    late = await rig.answer("late", caller="+15550003")
    await rig.enter(late, "2222#")
    assert rig.engine.current(late.leg).names == ["conference_locked", "goodbye"]
    assert rig.manager.hung_up == []  # the farewell is still playing
    rig.engine.finish(late.leg)
    assert rig.manager.hung_up == ["late"]


async def test_hang_up_leaves_the_meeting_and_ends_it(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    call = await rig.answer("c1")
    await rig.enter(call, "1111#")
    with structlog.testing.capture_logs() as logs:
        rig.manager.end(call, "remote_bye")
    assert not rig.conference.service.has_call("c1")
    assert [line["event"] for line in logs if line["event"].startswith(("meeting.", "call."))] == [
        "call.left",
        "meeting.ended",
    ]
    assert rig.conference.calls() == [] and rig.conference.call_info("c1") is None


async def test_wrong_codes_record_failures_and_the_lockout_refuses_the_next_call(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)  # threshold 3 for this test
    with structlog.testing.capture_logs() as logs:
        call = await rig.answer("c1", caller="+15559999")
        await rig.enter(call, "9999#")
        for _ in range(2):
            assert rig.engine.finish(call.leg) == ["invalid_code", "enter_access_code"]
            await rig.keys(call, "9998#")
        assert rig.engine.finish(call.leg) == ["invalid_code", "too_many_attempts", "goodbye"]
        assert rig.manager.hung_up == ["c1"]
        again = await rig.answer("c2", caller="+15559999")
        assert rig.engine.current(again.leg).names == ["access_refused", "goodbye"]
    names = [line["event"] for line in logs if line["event"].startswith("security.")]
    # The third failure locks both the (untrusted) source address and the caller number.
    assert names == [
        "security.lockout_started",
        "security.lockout_started",
        "security.attempts_exhausted",
        "security.call_refused",
    ]
    scopes = [line.get("ip") or line.get("caller") for line in logs if line["event"] == names[0]]
    assert scopes == ["192.0.2.9", "+15559999"]


async def test_keys_go_to_the_ivr_before_the_join_and_to_the_keypad_after(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    call = await rig.answer("c1")
    await rig.keys(call, "1")  # barge-in: the greeting is cut
    assert rig.engine.plays[call.leg][0].cancelled
    await rig.keys(call, "111#")
    assert rig.conference.service.has_call("c1")
    await rig.keys(call, "*6")
    assert rig.conference.service.participant("c1").muted
    assert rig.engine.finish(call.leg) == ["first_participant"]  # queued behind it
    assert rig.engine.current(call.leg).names == ["you_are_muted"]


async def test_live_control_for_the_api(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    live: LiveControl = rig.conference  # mypy checks the protocols are met
    hooks: CallHooks = rig.conference
    assert live.service is rig.conference.service and hooks is rig.conference
    call = await rig.answer("c1")
    await rig.enter(call, "1111#")
    assert [info.call_id for info in rig.conference.calls()] == ["c1"]
    assert rig.conference.set_custom_name("c1", "Alice")
    assert not rig.conference.set_custom_name("nobody", "x")
    info = rig.conference.call_info("c1")
    assert info is not None and info.custom_name == "Alice"
    now = rig.conference.now()
    rig.conference.apply(rig.conference.service.mute("c1", True, now))
    assert rig.conference.call_info("c1").muted  # type: ignore[union-attr]
    rig.conference.apply(rig.conference.service.set_gain("c1", MAX_GAIN_DB, MIN_GAIN_DB, now))
    shown = rig.conference.call_info("c1")
    engine = [e[2] for e in rig.engine.log if e[0] == "flags" and e[1] is call.leg][-1]
    assert shown is not None and (shown.gain_in_db, shown.gain_out_db) == (20.0, -20.0)
    assert (engine["gain_in_db"], engine["gain_out_db"]) == (20.0, -20.0)  # as shown, unclamped
    assert call.leg is not None and call.leg.on_talking is not None
    call.leg.on_talking(True)
    assert isinstance(rig.events[-1], TalkingChanged) and rig.events[-1].talking
    rig.unsubscribe()
    call.leg.on_talking(False)
    assert isinstance(rig.events[-1], TalkingChanged) and rig.events[-1].talking
    assert rig.conference.hangup("c1") and rig.manager.hung_up == ["c1"]
    assert not rig.conference.hangup("c1")


async def test_hang_up_during_the_ivr_leaves_no_timer_or_prompt_behind(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    call = await rig.answer("c1")
    rig.engine.finish(call.leg)  # greeting over: the first-digit timer runs
    assert ("c1", "ivr.first_digit") in rig.conference._timers
    await rig.keys(call, "12")
    rig.manager.end(call, "remote_bye")
    assert not rig.conference._timers
    assert not rig.conference.service.has_call("c1")
    assert rig.conference.hangup("c1") is False


async def test_operator_ends_the_meeting_everyone_hears_goodbye_then_bye(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    first = await rig.answer("a")
    await rig.enter(first, "1111#")
    second = await rig.answer("b", caller="+15550002")
    await rig.enter(second, "2222#")
    rig.conference.apply(rig.conference.service.end("100001", rig.conference.now()))
    assert rig.manager.hung_up == []
    for call in (first, second):
        while rig.engine.current(call.leg).names != ["conference_ended", "goodbye"]:
            rig.engine.finish(call.leg)  # what was queued before the farewell
        rig.engine.finish(call.leg)
    assert sorted(rig.manager.hung_up) == ["a", "b"]
    assert "100001" not in rig.conference.service.meetings()


async def _late_joiner_with_roll_call(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> tuple[Rig, Any]:
    """A host in room 100001 with roll call switched on, and a participant who just entered."""
    rig = Rig(store, library)
    first = await rig.answer("c1")
    await rig.enter(first, "1111#")
    service = rig.conference.service
    rig.conference.apply(
        service.set_attribute("100001", "conference_rollcall", "on", rig.conference.now())
    )
    late = await rig.answer("c2", caller="+15550002")
    await rig.enter(late, "2222#")
    return rig, late


async def test_roll_call_records_the_name_and_the_others_hear_it(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig, late = await _late_joiner_with_roll_call(store, library)
    service = rig.conference.service
    assert rig.engine.current(late.leg).names == ["recorded_name_prompt"]
    assert rig.engine.recordings == []  # the window opens after the prompt, not over it
    rig.engine.finish(late.leg)
    await rig.settle()
    ((leg, seconds, deliver),) = rig.engine.recordings
    assert leg is late.leg and seconds == rig.conference.rollcall_seconds
    assert service.participant("c2").phase.value == "naming"
    name = (np.arange(2400) % 97 * 50).astype(np.int16)  # what the engine taped
    rig.engine.names[id(name)] = "taped name"
    with structlog.testing.capture_logs() as logs:
        deliver(name)
        await rig.settle()
    assert service.participant("c2").phase.value == "in"
    assert ("join", late.leg, "100001") in rig.engine.log
    assert ("play_meeting", "100001", ["taped name", "has_joined"], (late.leg,)) in rig.engine.log
    assert "prompt.skipped" not in [line["event"] for line in logs]
    rig.manager.end(late, "remote_bye")
    assert ("play_meeting", "100001", ["taped name", "has_left"], ()) in rig.engine.log
    assert "rollcall/c2" not in rig.conference.prompts  # forgotten with the call


async def test_roll_call_recording_after_hang_up_is_dropped(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig, late = await _late_joiner_with_roll_call(store, library)
    service = rig.conference.service
    rig.engine.finish(late.leg)
    await rig.settle()
    rig.manager.end(late, "remote_bye")
    rig.engine.recordings[0][2](np.zeros(800, np.int16))
    await rig.settle()
    assert "rollcall/c2" not in rig.conference.prompts and not service.has_call("c2")


async def test_entry_tone_leaves_the_entrant_out(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    first = await rig.answer("c1")
    await rig.enter(first, "1111#")
    second = await rig.answer("c2", caller="+15550002")
    await rig.enter(second, "2222#")
    tones = [e for e in rig.engine.log if e[0] == "play_meeting"]
    assert tones == [("play_meeting", "100001", ["tone"], (second.leg,))]


async def test_a_trunks_shared_caller_id_is_not_locked_out_by_one_guesser(
    store: Store, library: tuple[PromptLibrary, dict[int, str]]
) -> None:
    rig = Rig(store, library)
    lockout = Lockout(LockoutPolicy(threshold=3, trusted=("192.0.2.0/24",)))  # the rig's peer
    rig.conference.lockout = lockout
    main = "+15551230000"  # the PBX sends every call with its main number
    with structlog.testing.capture_logs() as logs:
        member = await rig.answer("member", caller=main)
        await rig.enter(member, "2222#")
        guesser = await rig.answer("guesser", caller=main)
        await rig.enter(guesser, "9999#")
        for _ in range(2):
            assert rig.engine.finish(guesser.leg) == ["invalid_code", "enter_access_code"]
            await rig.keys(guesser, "9998#")
        assert rig.engine.finish(guesser.leg) == ["invalid_code", "too_many_attempts", "goodbye"]
        assert rig.manager.hung_up == ["guesser"]
        rig.manager.end(member, "remote_bye")
        after = await rig.answer("after", caller=main)
        await rig.enter(after, "2222#")
    assert rig.conference.service.room_of("after") == "100001"
    names = [line["event"] for line in logs if line["event"].startswith("security.")]
    assert names == ["security.caller_shared", "security.attempts_exhausted"]
    (shared,) = [line for line in logs if line["event"] == "security.caller_shared"]
    assert (shared["caller"], shared["call_id"], shared["shared_for"]) == (main, "guesser", 86400.0)
    # Every call that ended was forgotten: one call up, one shared mark, the DID's count.
    assert lockout.tracked_keys() == 3
    rig.manager.end(after, "remote_bye")
    assert lockout.tracked_keys() == 2


async def test_the_ivr_takes_every_key_the_meeting_does_not(
    store: Store, library: tuple[PromptLibrary, dict[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys before the greeting and while the meeting join is pending reach the IVR, which drops
    them; a hang-up before the greeting ends the IVR quietly."""
    rig = Rig(store, library)
    ready = asyncio.Event()  # holds back the store's attributes: the greeting, then the join
    attributes = store.effective_attributes

    async def held_back(*args: Any) -> Any:
        await ready.wait()
        return await attributes(*args)

    monkeypatch.setattr(store, "effective_attributes", held_back)
    with structlog.testing.capture_logs() as logs:
        call = await rig.answer("c1")
        await rig.keys(call, "12")  # no greeting yet
        gone = await rig.answer("c2")
        rig.manager.end(gone, "remote_bye")
    assert [line["event"] for line in logs if line["event"].startswith("ivr.")] == [
        "ivr.early_digit",
        "ivr.early_digit",
    ]
    assert call.leg not in rig.engine.plays
    ready.set()
    await rig.settle()
    ready.clear()
    await rig.enter(call, "2222#")  # the IVR's Join: the meeting join waits for the attributes
    await rig.keys(call, "*6")  # dropped by the IVR: the meeting does not have the call yet
    ready.set()
    await rig.settle()
    assert rig.conference.service.room_of("c1") == "100001"
    assert not rig.conference.service.participant("c1").muted
    await rig.keys(call, "*6")
    assert rig.conference.service.participant("c1").muted
    assert rig.manager.hung_up == [] and "c2" not in rig.conference._calls
