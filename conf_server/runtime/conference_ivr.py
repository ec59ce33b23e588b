"""One call's IVR at run time: feeds ``conf_server.domain.ivr`` and performs its actions.

References: RFC 4733 §3.2 / SIP INFO / in-band digits all arrive as ``DigitPressed``; the
dialogue itself (greeting, access code, PIN, retries) is specified and tested in
``conf_server.domain.ivr``, guessing protection in ``conf_server.domain.lockout``.

Theory of operation
-------------------
:class:`IvrCall` owns one ``ivr.Session``. ``feed`` queues an input and, unless a step is
already running, steps the machine and performs every action in order before taking the next
input, so an action that answers at once (``CheckLockout``) never re-enters a running step.
The actions map to the runtime through ``_handle_<action>`` methods:

* ``PlayPrompt`` → the call's ``Speaker`` (exclusive: the caller hears only the prompt), with
  ``PromptFinished`` fed back when it ends; ``StopPrompt`` cuts it (barge-in);
* ``StartTimer``/``CancelTimer`` → the conference's event-loop timers, keyed by call and name;
* ``CheckLockout``/``RecordFailure`` → the process-wide ``Lockout`` (``SecurityEvent`` lines).
  The lockout also learns the call's life, to tell a trunk's shared caller id from one caller's
  (``domain.lockout``): ``call_started`` just before the check, ``call_admitted`` at ``Join``,
  ``call_ended`` when the call goes, whatever state it is in (``security.caller_shared``);
* ``LookupCode``/``LookupPin`` → store queries in a task of the call (``CallManager.spawn``),
  answered with ``CodeLookedUp``/``PinChecked``; the code and PIN never reach a log line;
* ``Join`` → the conference's join (the meeting service takes over); ``Hangup`` → BYE once the
  farewell prompts have played; ``EarlyKey`` → the debug line ``ivr.early_digit``.

Keys and the hang-up are fed whatever the dialogue's state: the IVR accepts them in every state
(and drops keys it cannot use), so nothing here reads ``session.state``.

The store answers through :class:`RoomDirectory`, which knows the DID of the call: an access
code is looked up only among the rooms the DID's group reaches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from conf_server.domain import ivr
from conf_server.domain.attributes import Role
from conf_server.domain.lockout import Lockout, SecurityEvent, SecurityKind
from conf_server.runtime.conference_media import PromptLibrary, Speaker
from conf_server.runtime.seams import Party
from conf_server.store.records import RoomInfo

# A timer key: (call id, timer name); the conference keeps one loop timer per key.
TimerKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FoundRoom:
    """What a code lookup found: the room (a store ``RoomInfo``) and the code's role."""

    room: RoomInfo
    role: Role
    has_pins: bool


class RoomDirectory(Protocol):
    """The store queries the IVR needs, bound to the call's DID."""

    async def find_room(self, code: str) -> FoundRoom | None: ...
    async def check_pin(self, room: RoomInfo, pin: str) -> tuple[bool, bool]: ...


class IvrHost(Protocol):
    """What an IVR call asks of the conference it runs in."""

    lockout: Lockout
    prompts: PromptLibrary

    def now(self) -> float: ...
    def start_timer(self, key: TimerKey, deadline: float, fire: Callable[[], None]) -> None: ...
    def cancel_timer(self, key: TimerKey) -> None: ...
    def spawn(self, call: Party, coro: Awaitable[None]) -> None: ...
    def joined_by_ivr(self, call: Party, room: RoomInfo, role: Role) -> None: ...
    def hang_up(self, call: Party) -> None: ...
    def security(self, call: Party, event: SecurityEvent) -> None: ...


class IvrCall:
    """The IVR of one answered call (see the module docstring)."""

    def __init__(self, host: IvrHost, call: Party, speaker: Speaker, rooms: RoomDirectory) -> None:
        self.host = host
        self.call = call
        self.speaker = speaker
        self.rooms = rooms
        self.session = ivr.Session()
        self.room: RoomInfo | None = None  # the store room of the code, once found
        self.last_key_at: float | None = None
        self._inputs: deque[ivr.Input] = deque()
        self._running = False
        self._gone = False  # the call ended: nothing may start any more
        self._admitted = False  # the IVR let the call in (``Join``)

    def start(self, settings: ivr.IvrSettings) -> None:
        if self._gone:
            return
        call = self.call
        self.feed(ivr.CallStarted(call.did, call.caller, call.source_ip, settings))

    def key(self, key: str) -> None:
        """Any key the meeting does not take; the IVR drops what it cannot use."""
        if not self._admitted:  # the join latency counts from the last key before the Join
            self.last_key_at = self.host.now()
        self.feed(ivr.DigitPressed(key))

    def hung_up(self) -> None:
        """The call ended: the lockout forgets it; the IVR disarms and cuts its prompt."""
        self._gone = True
        self.host.lockout.call_ended(self.call.id)
        self.feed(ivr.CallerHungUp())

    def feed(self, event: ivr.Input) -> None:
        """Step the machine with ``event`` (queued if a step is running) and act."""
        self._inputs.append(event)
        if self._running:
            return
        self._running = True
        try:
            while self._inputs:
                event = self._inputs.popleft()
                self.session, actions = ivr.step(self.session, event, self.host.now())
                for action in actions:
                    self._HANDLERS[type(action)](self, action)
        finally:
            self._running = False

    # --- actions --------------------------------------------------------------------------

    def _handle_play_prompt(self, action: ivr.PlayPrompt) -> None:
        clips, missing = self.host.prompts.clips(action.names)
        if missing:
            self.call.log.warning("prompt.missing", prompts=missing)
        self.speaker.say(clips, exclusive=True, on_done=self._prompt_finished)

    def _prompt_finished(self) -> None:
        # Runs from the engine's callback batch, which would only log a failure: end the call.
        try:
            self.feed(ivr.PromptFinished())
        except Exception:  # convention 4: this call fails alone
            self.call.log.exception("ivr.failed")
            self.host.hang_up(self.call)

    def _handle_stop_prompt(self, action: ivr.StopPrompt) -> None:
        self.speaker.stop()

    def _handle_start_timer(self, action: ivr.StartTimer) -> None:
        name = action.name
        self.host.start_timer(
            (self.call.id, name), action.deadline, lambda: self.feed(ivr.TimerFired(name))
        )

    def _handle_cancel_timer(self, action: ivr.CancelTimer) -> None:
        self.host.cancel_timer((self.call.id, action.name))

    def _handle_check_lockout(self, action: ivr.CheckLockout) -> None:
        lockout, now = self.host.lockout, self.host.now()
        self._log_shared(lockout.call_started(self.call.id, action.source_ip, action.caller, now))
        locked = lockout.check(action.source_ip, action.caller, action.did, now)
        if locked is not None:
            self.call.log.warning(
                "security.call_refused", scope=locked.scope.value, until=round(locked.until, 1)
            )
        self.feed(ivr.LockoutStatus(locked))

    def _handle_lookup_code(self, action: ivr.LookupCode) -> None:
        self.host.spawn(self.call, self._lookup_code(action.code))

    async def _lookup_code(self, code: str) -> None:
        found = await self.rooms.find_room(code)
        if found is None:
            self.call.log.info("ivr.code_rejected")
            self.feed(ivr.CodeLookedUp(None))
            return
        self.room = found.room
        self.call.log.info("ivr.code_accepted", meeting=str(found.room.meeting_number))
        self.feed(ivr.CodeLookedUp(str(found.room.meeting_number), found.role, found.has_pins))

    def _room(self) -> RoomInfo:
        """The room the accepted code found (the IVR asks for a PIN or a join only after)."""
        if self.room is None:
            raise RuntimeError("the IVR acted on a room before a code found one")
        return self.room

    def _handle_lookup_pin(self, action: ivr.LookupPin) -> None:
        self.host.spawn(self.call, self._lookup_pin(action.pin))

    async def _lookup_pin(self, pin: str) -> None:
        ok, organizer = await self.rooms.check_pin(self._room(), pin)
        self.call.log.info("ivr.pin_accepted" if ok else "ivr.pin_rejected", organizer=organizer)
        self.feed(ivr.PinChecked(ok, organizer))

    def _handle_record_failure(self, action: ivr.RecordFailure) -> None:
        s = self.session
        events = self.host.lockout.record_failure(s.source_ip, s.caller, s.did, self.host.now())
        for event in events:
            self.host.security(self.call, event)

    def _handle_early_key(self, action: ivr.EarlyKey) -> None:
        self.call.log.debug("ivr.early_digit")  # before the greeting: nothing collects yet

    def _handle_join(self, action: ivr.Join) -> None:
        self._admitted = True
        self._log_shared(self.host.lockout.call_admitted(self.call.id, self.host.now()))
        self.host.joined_by_ivr(self.call, self._room(), action.role)

    def _log_shared(self, events: list[SecurityEvent]) -> None:
        """``CALLER_SHARED``: informational, the caller id is no lockout key for a while."""
        for event in events:
            if event.kind is not SecurityKind.CALLER_SHARED or event.until is None:
                self.host.security(self.call, event)
                continue
            ((_, caller),) = event.keys
            shared_for = round(event.until - self.host.now(), 1)
            self.call.log.info("security.caller_shared", caller=caller, shared_for=shared_for)

    def _handle_hangup(self, action: ivr.Hangup) -> None:
        self.call.log.info("ivr.hangup", reason=action.reason.value)
        self.speaker.when_idle(lambda: self.host.hang_up(self.call))

    def _handle_security_event(self, action: SecurityEvent) -> None:
        self.host.security(self.call, action)

    # One table for the class (unbound functions): a per-instance dict of bound methods made
    # every IVR call a reference cycle that only a full collection could free.
    _HANDLERS: ClassVar[dict[type[Any], Callable[[IvrCall, Any], None]]] = {
        ivr.PlayPrompt: _handle_play_prompt,
        ivr.StopPrompt: _handle_stop_prompt,
        ivr.StartTimer: _handle_start_timer,
        ivr.CancelTimer: _handle_cancel_timer,
        ivr.CheckLockout: _handle_check_lockout,
        ivr.LookupCode: _handle_lookup_code,
        ivr.LookupPin: _handle_lookup_pin,
        ivr.RecordFailure: _handle_record_failure,
        ivr.EarlyKey: _handle_early_key,
        ivr.Join: _handle_join,
        ivr.Hangup: _handle_hangup,
        SecurityEvent: _handle_security_event,
    }
