"""The controls of a live meeting, keypad and API alike: mute, hold, lock, gain, attributes.

Source: the CarrierX Conference API v1 (``seeds/004_…``): the Call object's ``muteMode``,
``holdMode`` and ``gainLevel`` (``PUT /calls/{id}``), the Meeting object's ``muteMode`` and
``holdMode`` and its live attributes (``PUT /meetings/{n}``), and the keypad features
``conference_mute``, ``conference_lock``, ``conference_hold``, ``conference_entryexittones``,
``call_participantsnumber``.

Theory of operation: each function is the action of one control input of ``meeting_flow`` (the
same in every live state; none changes the meeting's state). What a control does to a call
depends on the call's phase, so it goes through the participant machine (``participant_flow``):
a muted or held caller outside the mix is remembered, one in the mix gets new mixer flags.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from conf_server.domain.meeting import (
    SUPPORTED_LANGUAGES,
    KeypadSequence,
    LanguageFallback,
    LockChanged,
    MeetingRules,
)
from conf_server.domain.meeting_commands import (
    AnnounceCount,
    CycleTones,
    HoldAll,
    KeypadWebhook,
    MuteAll,
    SetAttribute,
    SetGain,
    SetHold,
    SetLock,
    SetMute,
    Talking,
)
from conf_server.domain.meeting_tx import MEETING_LIMIT_TIMERS, Tx, arm_limit
from conf_server.domain.participant_flow import HOLDABLE, CallInput, call_step
from conf_server.domain.speech import tone_state

_TONE_CYCLE: Final = {
    (True, True): (True, False),
    (True, False): (False, True),
    (False, True): (False, False),
    (False, False): (True, True),
}


def set_mute(tx: Tx, cmd: SetMute) -> None:
    call_step(tx, cmd.call, CallInput.MUTE, (cmd.muted, cmd.by))
    tx.play(cmd.call, ("you_are_muted",) if cmd.muted else ("you_are_unmuted",))


def mute_all(tx: Tx, cmd: MuteAll) -> None:
    tx.m = replace(tx.m, all_muted=cmd.muted)
    for p in list(tx.m.participants.values()):
        # Unmuting all leaves listeners as they are: never heard.
        if p.role in HOLDABLE and not (p.listener and not cmd.muted):
            call_step(tx, p.call, CallInput.MUTE, (cmd.muted, cmd.by))
    if cmd.by in tx.m.participants:
        tx.play(cmd.by, ("conference_muted",) if cmd.muted else ("conference_unmuted",))


def set_lock(tx: Tx, cmd: SetLock) -> None:
    if tx.m.locked != cmd.locked:
        tx.m = replace(tx.m, locked=cmd.locked)
        tx.emit(LockChanged, locked=cmd.locked, by=cmd.by)
    if cmd.by in tx.m.participants:
        prompt = "conference_now_locked" if cmd.locked else "conference_now_unlocked"
        tx.play(cmd.by, (prompt,))


def set_hold(tx: Tx, cmd: SetHold) -> None:
    call_step(tx, cmd.call, CallInput.HOLD, (cmd.held, cmd.by))


def hold_all(tx: Tx, cmd: HoldAll) -> None:
    tx.m = replace(tx.m, held_roles=HOLDABLE if cmd.held else frozenset())
    for p in list(tx.m.participants.values()):
        if p.role in HOLDABLE or not cmd.held:
            call_step(tx, p.call, CallInput.HOLD, (cmd.held, cmd.by))
    if cmd.by in tx.m.participants:
        tx.play(cmd.by, ("conference_on_hold",) if cmd.held else ("conference_resumed",))


def set_gain(tx: Tx, cmd: SetGain) -> None:
    call_step(tx, cmd.call, CallInput.GAIN, (cmd.gain_in_db, cmd.gain_out_db))


def _set_attributes(tx: Tx, changes: Mapping[str, object]) -> None:
    attributes = {**tx.m.attributes, **changes}
    rules = MeetingRules.from_attributes(attributes)
    old = tx.m.rules
    tx.m = replace(tx.m, attributes=attributes, rules=rules)
    if rules.language != old.language:
        check_language(tx)
    if rules.meeting_max_duration != old.meeting_max_duration and tx.m.started_at is not None:
        arm_limit(tx, MEETING_LIMIT_TIMERS, rules.meeting_max_duration, tx.m.started_at)


def check_language(tx: Tx) -> None:
    if tx.m.rules.language not in SUPPORTED_LANGUAGES:
        tx.act(LanguageFallback(tx.m.room, tx.m.rules.language, tx.m.language))


def set_attribute(tx: Tx, cmd: SetAttribute) -> None:
    _set_attributes(tx, {cmd.name: cmd.value})


def cycle_tones(tx: Tx, cmd: CycleTones) -> None:
    tx.get(cmd.call)
    entry, exit_ = _TONE_CYCLE[(tx.m.rules.entry_tones, tx.m.rules.exit_tones)]
    on_off = {True: "on", False: "off"}
    _set_attributes(
        tx, {"conference_entrytones": on_off[entry], "conference_exittones": on_off[exit_]}
    )
    tx.play(cmd.call, tone_state(entry, exit_))


def announce_count(tx: Tx, cmd: AnnounceCount) -> None:
    call_step(tx, cmd.call, CallInput.ANNOUNCE_COUNT)


def talking(tx: Tx, cmd: Talking) -> None:
    call_step(tx, cmd.call, CallInput.TALKING, cmd.talking)


def keypad_webhook(tx: Tx, cmd: KeypadWebhook) -> None:
    tx.get(cmd.call)
    tx.emit(KeypadSequence, call=cmd.call, feature=cmd.feature, keys=cmd.keys)
