"""The conference runtime: answered calls → IVR → meetings, on real media and SIP.

References: DESIGN.md §1 points 3–6; RFC 3261 §15 (a call we end gets our BYE), RFC 4733
(digits), RFC 3550 (the legs' media). The behaviour is the pure cores': the IVR
(``conf_server.domain.ivr``), guessing protection (``domain.lockout``) and the meeting rules
(``domain.service`` / ``meeting_flow``); this module only carries out what they decide.

Theory of operation
-------------------
:class:`Conference` is the ``CallHooks`` of the ``CallManager`` and the ``LiveControl`` of the
REST API. For each answered call it creates a prompt queue (``Speaker``) and an ``IvrCall``;
digits go to ``MeetingService.digit`` once the meeting has the call, to the IVR until then (it
accepts a key in every state and drops what it cannot use: before the greeting, during a lookup,
after its ``Join``). The join resolves the room's attributes (Call Flow → DID Group → DID → Room)
and calls ``MeetingService.join``. PINs are checked by the domain (``pins.match_pin``) against the
room's PINs from the store.

Every ``Outcome`` — from a join, a key, a timer, a talking change, a hang-up or the REST API —
goes through :meth:`Conference.apply`: its actions are carried out in order by
``_handle_<action>`` methods, then its events are logged and published to subscribers. How the
actions map onto the media engine:

* ``JoinMix``/``LeaveMix``/``SetFlags`` → ``engine.join``/``leave``/``set_flags``;
* ``StartMusicOnHold`` for a caller outside the mix (waiting for the host) puts the leg alone in
  a private meeting ``hold:<call>`` with ``held`` set, so it hears the engine's shared hold music
  and its exclusive prompts still cut in; for a caller in the mix the ``held`` flag does it;
* ``PlayToCall`` → the call's ``Speaker`` (queued after what it is playing); ``PlayToMeeting`` →
  ``engine.play_meeting`` with the ``exclude`` call's leg left out (an entrant does not hear its
  own entry tone, but keeps hearing the meeting);
* ``Hangup`` → BYE once the call's queued prompts have played;
* ``StartTimer``/``CancelTimer`` → ``loop.call_at`` handles by name; a fired one is fed to
  ``MeetingService.timer_fired``;
* ``RecordName`` → once "recorded_name_prompt" has played, ``engine.record`` takes
  ``ROLLCALL_SECONDS`` of the caller's received audio; the clip is stored in the
  ``PromptLibrary`` under the action's prompt name (``rollcall/<call>``), so the service's
  "<name> has joined/left" announcements play it, and ``name_recorded`` lets the caller in.
  The clip is dropped from the library when the call ends (after its "has left").

Logging: ``meeting`` and ``role`` are bound on ``call.log`` (None until the join) so every later
line of the call — ``call.joined``, ``call.left`` and the call layer's ``call.ended`` — carries
them next to ``call_id``, ``did`` and ``caller``. Meetings log ``meeting.started``/``ended``;
guessing protection logs ``security.<kind>``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from conf_server.domain import ivr
from conf_server.domain.attributes import Role
from conf_server.domain.ivr import CancelTimer, StartTimer
from conf_server.domain.live import LiveCallInfo
from conf_server.domain.lockout import Lockout, SecurityEvent, SecurityKind
from conf_server.domain.meeting import (
    CallHeld,
    CallJoined,
    CallLeft,
    CallMuted,
    CallRefused,
    Event,
    Hangup,
    JoinMix,
    LanguageFallback,
    LeaveMix,
    LockChanged,
    MeetingEnded,
    MeetingError,
    MeetingStarted,
    PlayToCall,
    PlayToMeeting,
    RecordName,
    SetFlags,
    StartMusicOnHold,
    StopMusicOnHold,
    rollcall_prompt,
)
from conf_server.domain.pins import match_pin
from conf_server.domain.service import MeetingService, Outcome
from conf_server.engine.legs import Leg
from conf_server.logs import get_logger
from conf_server.runtime.conference_ivr import FoundRoom, IvrCall, TimerKey
from conf_server.runtime.conference_media import PromptLibrary, Speaker
from conf_server.runtime.seams import EngineControl, Party
from conf_server.store.records import DidInfo, RoomInfo
from conf_server.store.store import Store
from media.dtmf import Digit

log = get_logger("conference")

ROLLCALL_SECONDS: Final = 3.0
HOLD_PREFIX: Final = "hold:"
_MEETING_TIMER: Final = "meeting"  # the call part of the key of a service timer


@dataclass(eq=False)
class _Live:
    """The runtime state of one answered call."""

    call: Party
    leg: Leg
    did: DidInfo  # the number it dialled in on
    speaker: Speaker
    ivr: IvrCall
    room: str | None = None
    role: Role | None = None
    in_mix: bool = False
    music: bool = False
    custom_name: str | None = None


class _Rooms:
    """``RoomDirectory`` of one call: code and PIN lookups among the rooms its DID reaches."""

    def __init__(self, store: Store, did: DidInfo) -> None:
        self.store = store
        self.did = did  # the DID record the call layer routed the call on

    async def find_room(self, code: str) -> FoundRoom | None:
        found = await self.store.find_room_by_code(self.did.did_group.id, code)
        if found is None:
            return None
        room, role = found
        return FoundRoom(room, role, bool(room.pins))

    async def check_pin(self, room: RoomInfo, pin: str) -> tuple[bool, bool]:
        records = [(info.pin, bool(info.organizer)) for info in await self.store.room_pins(room.id)]
        return match_pin(records, pin)


class Conference:
    """Calls, IVR and meetings wired together (see the module docstring).

    Built inside the running event loop (its timers and clock are the loop's), before the call
    layer that gets it as its hooks; it asks the engine through ``seams.EngineControl`` and each
    call through ``seams.Party`` (its own tasks and hang-up), so it holds no call manager.
    """

    def __init__(
        self,
        store: Store,
        engine: EngineControl,
        prompts: PromptLibrary,
        *,
        lockout: Lockout | None = None,
        service: MeetingService | None = None,
        rollcall_seconds: float = ROLLCALL_SECONDS,
    ) -> None:
        self.store = store
        self.engine = engine
        self.prompts = prompts
        self.lockout = lockout or Lockout()
        self._service = service or MeetingService()
        self.rollcall_seconds = rollcall_seconds
        self._loop = asyncio.get_running_loop()
        self._calls: dict[str, _Live] = {}
        self._timers: dict[TimerKey, asyncio.TimerHandle] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            SetFlags: self._handle_set_flags,
            JoinMix: self._handle_join_mix,
            LeaveMix: self._handle_leave_mix,
            PlayToCall: self._handle_play_to_call,
            PlayToMeeting: self._handle_play_to_meeting,
            StartMusicOnHold: self._handle_start_music,
            StopMusicOnHold: self._handle_stop_music,
            RecordName: self._handle_record_name,
            Hangup: self._handle_hangup,
            StartTimer: self._handle_start_timer,
            CancelTimer: self._handle_cancel_timer,
            LanguageFallback: self._handle_language_fallback,
        }

    # --- LiveControl -----------------------------------------------------------------------

    @property
    def service(self) -> MeetingService:
        return self._service

    def now(self) -> float:
        return self._loop.time()

    def apply(self, outcome: Outcome) -> None:
        """Carry out the actions in order, then log and publish the events."""
        for action in outcome.actions:
            try:
                self._handlers[type(action)](action)
            except Exception:  # one call's media or SIP failure must not stop the others
                log.exception("conference.action_failed", action=repr(action))
                call = getattr(action, "call", None)
                if isinstance(call, str) and call in self._calls:
                    self.hang_up(self._calls[call].call)
        for event in outcome.events:
            self._log_event(event)
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a subscriber's bug must not break the meeting
                    log.exception("conference.listener_failed", kind=type(event).__name__)

    def calls(self) -> list[LiveCallInfo]:
        found = (self.call_info(call) for call in list(self._calls))
        return [info for info in found if info is not None]

    def call_info(self, call_id: str) -> LiveCallInfo | None:
        live = self._calls.get(call_id)
        if live is None or not self._service.has_call(call_id):
            return None
        p = self._service.participant(call_id)
        return LiveCallInfo(
            call_id=call_id,
            room=self._service.room_of(call_id),
            role=p.role,
            caller=live.call.caller,
            did=live.call.did,
            joined_at=time.time() - (self.now() - p.joined_at),
            muted=p.muted,
            held=p.held,
            deaf=p.deaf,
            gain_in_db=p.gain_in_db,
            gain_out_db=p.gain_out_db,
            custom_name=live.custom_name,
        )

    def set_custom_name(self, call_id: str, name: str | None) -> bool:
        live = self._calls.get(call_id)
        if live is None or not self._service.has_call(call_id):
            return False
        live.custom_name = name
        return True

    def hangup(self, call_id: str) -> bool:
        live = self._calls.get(call_id)
        if live is None:
            return False
        self.hang_up(live.call)
        return True

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # --- CallHooks -------------------------------------------------------------------------

    def answered(self, call: Party) -> None:
        """Start the IVR: greeting, code, PIN (the store lookups run as the call's tasks)."""
        leg, did = call.leg, call.did_info
        if leg is None or did is None:  # a dial-in call is answered with its leg, on its DID
            raise ValueError(f"call {call.id} was answered without a media leg or a DID")
        call.log = call.log.bind(meeting=None, role=None)
        speaker = Speaker(self.engine, leg)
        ivr_call = IvrCall(self, call, speaker, _Rooms(self.store, did))
        live = _Live(call, leg, did, speaker, ivr_call)
        self._calls[call.id] = live
        # The call layer adds legs without a talking callback; set it through the engine's queue.
        self.engine.watch_talking(leg, lambda talking: self._talking(call.id, talking))
        self.spawn(call, self._start_ivr(live))

    async def _start_ivr(self, live: _Live) -> None:
        attrs = await self.store.effective_attributes(live.did, None)
        live.ivr.start(ivr.IvrSettings.from_attributes(attrs))

    def digit(self, call: Party, digit: Digit) -> None:
        live = self._calls.get(call.id)
        if live is None:
            return
        if self._service.has_call(call.id):
            self.apply(self._service.digit(call.id, digit.key, self.now()))
        else:
            live.ivr.key(digit.key)  # the IVR drops what it cannot use

    def ended(self, call: Party, reason: str) -> None:
        live = self._calls.pop(call.id, None)
        if live is None:
            return
        live.speaker.close()
        live.ivr.hung_up()
        for key in [k for k in self._timers if k[0] == call.id]:
            self.cancel_timer(key)
        if self._service.has_call(call.id):
            self.apply(self._service.leave(call.id, self.now()))
        # After the leave: its "has left" announcement already holds the clip it plays.
        self.prompts.discard(rollcall_prompt(call.id))

    # --- what the IVR asks (IvrHost) ---------------------------------------------------------

    def spawn(self, call: Party, coro: Awaitable[None]) -> None:
        call.spawn(coro)

    def start_timer(self, key: TimerKey, deadline: float, fire: Callable[[], None]) -> None:
        self.cancel_timer(key)
        self._timers[key] = self._loop.call_at(deadline, self._fire, key, fire)

    def cancel_timer(self, key: TimerKey) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, key: TimerKey, fire: Callable[[], None]) -> None:
        self._timers.pop(key, None)
        try:
            fire()
        except Exception:  # a timer's failure ends its own call only
            log.exception("conference.timer_failed", timer=key[1])
            live = self._calls.get(key[0])
            if live is not None:
                self.hang_up(live.call)

    def hang_up(self, call: Party) -> None:
        """End the party's call from our side, unless it is already gone."""
        call.hang_up()

    def security(self, call: Party, event: SecurityEvent) -> None:
        fields = {scope.value: value for scope, value in event.keys}
        level = "info" if event.kind is SecurityKind.ATTEMPTS_EXHAUSTED else "warning"
        until = None if event.until is None else round(event.until - self.now(), 1)
        getattr(call.log, level)(f"security.{event.kind.value}", **fields, cooling_off=until)

    def joined_by_ivr(self, call: Party, room: RoomInfo, role: Role) -> None:
        self.spawn(call, self._join(call, room, role))

    async def _join(self, call: Party, room: RoomInfo, role: Role) -> None:
        live = self._calls.get(call.id)
        if live is None:
            return
        attrs = await self.store.effective_attributes(live.did, room)
        if self._calls.get(call.id) is not live:
            return  # the call ended during the lookup
        meeting = str(room.meeting_number)
        live.room, live.role = meeting, role
        call.log = call.log.bind(meeting=meeting, role=role.name.lower())
        now = self.now()
        outcome = self._service.join(call.id, meeting, role, call.caller, attributes=attrs, now=now)
        self.apply(outcome)
        if any(isinstance(e, CallJoined) and e.call == call.id for e in outcome.events):
            last_key = live.ivr.last_key_at
            call.log.info(
                "call.joined",
                since_answer_ms=round((now - (call.answered or now)) * 1000, 1),
                since_last_key_ms=None if last_key is None else round((now - last_key) * 1000, 1),
            )

    # --- engine callbacks ------------------------------------------------------------------

    def _talking(self, call_id: str, talking: bool) -> None:
        if call_id in self._calls and self._service.has_call(call_id):
            try:
                self.apply(self._service.talking(call_id, talking, self.now()))
            except MeetingError as exc:  # a talk event racing the caller's leave
                log.debug("conference.talking_dropped", call_id=call_id, error=str(exc))

    # --- actions ---------------------------------------------------------------------------

    def _live(self, call: str) -> _Live | None:
        live = self._calls.get(call)
        if live is None:
            log.debug("conference.call_gone", call_id=call)
        return live

    def _handle_set_flags(self, a: SetFlags) -> None:
        if (live := self._live(a.call)) is None:
            return
        held = a.held or (live.music and not live.in_mix)
        self.engine.set_flags(
            live.leg,
            muted=a.muted,
            deaf=a.deaf,
            held=held,
            listener=a.listener,
            gain_in_db=a.gain_in_db,  # the service allows only what the mixer applies
            gain_out_db=a.gain_out_db,
        )

    def _handle_join_mix(self, a: JoinMix) -> None:
        if (live := self._live(a.call)) is None:
            return
        live.in_mix = True
        self.engine.join(live.leg, a.meeting)

    def _handle_leave_mix(self, a: LeaveMix) -> None:
        if (live := self._live(a.call)) is None:
            return
        live.in_mix = False
        if live.music:
            self.engine.join(live.leg, HOLD_PREFIX + a.call)
        else:
            self.engine.leave(live.leg)

    def _handle_play_to_call(self, a: PlayToCall) -> None:
        if (live := self._live(a.call)) is None:
            return
        clips, missing = self.prompts.clips(a.prompts)
        if missing:
            live.call.log.info("prompt.skipped", prompts=missing)
        live.speaker.say(clips, exclusive=a.exclusive, notice=True)

    def _handle_play_to_meeting(self, a: PlayToMeeting) -> None:
        clips, missing = self.prompts.clips(a.prompts)
        if missing:
            log.info("prompt.skipped", meeting=a.meeting, prompts=missing)
        if a.tone is not None:
            clips.insert(0, self.prompts.tone(a.tone))
        if not clips:
            return
        left_out = None if a.exclude is None else self._live(a.exclude)
        exclude = () if left_out is None else (left_out.leg,)
        self.engine.play_meeting(a.meeting, clips, exclude=exclude)

    def _handle_start_music(self, a: StartMusicOnHold) -> None:
        if (live := self._live(a.call)) is None:
            return
        live.music = True
        if not live.in_mix:
            self.engine.join(live.leg, HOLD_PREFIX + a.call)
        self.engine.set_flags(live.leg, held=True)

    def _handle_stop_music(self, a: StopMusicOnHold) -> None:
        if (live := self._live(a.call)) is None:
            return
        live.music = False
        if not live.in_mix:
            self.engine.leave(live.leg)
            self.engine.set_flags(live.leg, held=False)

    def _handle_record_name(self, a: RecordName) -> None:
        if (live := self._live(a.call)) is None:
            return
        leg, call_id, prompt = live.leg, a.call, a.prompt

        def recorded(clip: NDArray[np.int16]) -> None:
            self._name_done(call_id, prompt, clip)

        # The window opens once "recorded_name_prompt" has played, so the prompt is not taped.
        live.speaker.when_idle(lambda: self.engine.record(leg, self.rollcall_seconds, recorded))

    def _name_done(self, call_id: str, prompt: str, clip: NDArray[np.int16]) -> None:
        if call_id in self._calls and self._service.has_call(call_id):
            self.prompts.add(prompt, clip)
            self._calls[call_id].call.log.info("rollcall.recorded", seconds=len(clip) / 8000)
            self.apply(self._service.name_recorded(call_id, self.now()))

    def _handle_hangup(self, a: Hangup) -> None:
        if (live := self._live(a.call)) is None:
            return
        live.call.log.info("call.dropped", reason=a.reason.value)
        call = live.call
        live.speaker.when_idle(lambda: self.hang_up(call))

    def _handle_start_timer(self, a: StartTimer) -> None:
        name = a.name
        self.start_timer((_MEETING_TIMER, name), a.deadline, lambda: self._service_timer(name))

    def _service_timer(self, name: str) -> None:
        self.apply(self._service.timer_fired(name, self.now()))

    def _handle_cancel_timer(self, a: CancelTimer) -> None:
        self.cancel_timer((_MEETING_TIMER, a.name))

    def _handle_language_fallback(self, a: LanguageFallback) -> None:
        log.info("meeting.language_fallback", meeting=a.room, requested=a.requested, used=a.used)

    # --- events ----------------------------------------------------------------------------

    def _log_event(self, event: Event) -> None:
        live = self._calls.get(getattr(event, "call", ""))
        line = _EVENT_LINES.get(type(event))
        if line is None:
            if live is not None:
                live.call.log.debug("meeting.event", kind=type(event).__name__)
            return
        name, fields = line
        values = {k: _plain(getattr(event, k)) for k in fields}
        if live is not None:
            live.call.log.info(name, **values)
        else:  # the call has already ended (its BYE caused this event): name it explicitly
            if hasattr(event, "call"):
                values["call_id"] = event.call
            log.info(name, meeting=event.room, instance=event.instance, **values)


_EVENT_LINES: Final[dict[type[Event], tuple[str, tuple[str, ...]]]] = {
    MeetingStarted: ("meeting.started", ()),
    MeetingEnded: ("meeting.ended", ("reason", "duration")),
    CallRefused: ("call.refused", ("reason",)),
    CallLeft: ("call.left", ("reason", "duration")),
    CallMuted: ("call.muted", ("muted", "by")),
    CallHeld: ("call.held_by_meeting", ("held", "by")),
    LockChanged: ("meeting.locked", ("locked", "by")),
}
"""Meeting events operators see as log lines (event class → line name, fields); the others
(talking changes, keypad webhooks) go to subscribers and the debug log only."""


def _plain(value: object) -> object:
    """Log-friendly field values: enums by value, durations rounded."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return round(value, 3)
    return value
