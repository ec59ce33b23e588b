"""Commands a meeting accepts (``conf_server.domain.meeting_flow.step``).

Source: the CarrierX Conference API v1 live Meeting and Call objects (``seeds/004_…``):
an operator's ``PUT /calls/{id}`` (mute, hold, gain), ``PUT /meetings/{n}`` (lock, attributes)
and ``DELETE /meetings/{n}`` (kick all) become the same commands as a host's keypad sequence.

Theory of operation: each command is a frozen dataclass naming what happened or what is asked;
``by`` says who asked (a call id, or ``OPERATOR`` for the REST API) and ends up in the events.
The state machine decides what each one does in each meeting state.
"""

from __future__ import annotations

from dataclasses import dataclass

from conf_server.domain.attributes import Role
from conf_server.domain.meeting import OPERATOR, EndReason, LeaveReason

# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    call: str
    role: Role
    caller: str


@dataclass(frozen=True, slots=True)
class NameRecorded:
    """The roll-call recording of ``call`` is done (or the caller skipped it)."""

    call: str


@dataclass(frozen=True, slots=True)
class Leave:
    """Remove one call: it hung up (``HANGUP``), pressed exit, or was kicked."""

    call: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class Start:
    """Start a waiting meeting now (``conference_start_how=explicit``, or an operator)."""


@dataclass(frozen=True, slots=True)
class End:
    """End the meeting and hang up everyone (kick all)."""

    reason: EndReason = EndReason.ENDED_BY_OPERATOR


@dataclass(frozen=True, slots=True)
class SetMute:
    call: str
    muted: bool
    by: str = OPERATOR


@dataclass(frozen=True, slots=True)
class MuteAll:
    """Mute (or unmute) every participant and listener; hosts keep their state."""

    muted: bool
    by: str = OPERATOR


@dataclass(frozen=True, slots=True)
class SetLock:
    locked: bool
    by: str = OPERATOR


@dataclass(frozen=True, slots=True)
class SetHold:
    call: str
    held: bool
    by: str = OPERATOR


@dataclass(frozen=True, slots=True)
class HoldAll:
    """Hold (or resume) participants and listeners: the Meeting object's holdMode 40 / 0."""

    held: bool
    by: str = OPERATOR


@dataclass(frozen=True, slots=True)
class SetGain:
    call: str
    gain_in_db: float
    gain_out_db: float


@dataclass(frozen=True, slots=True)
class SetAttribute:
    """Change one attribute live; ``value`` is already validated and typed."""

    name: str
    value: object


@dataclass(frozen=True, slots=True)
class CycleTones:
    """Entry/exit tones ON:ON → ON:OFF → OFF:ON → OFF:OFF → ON:ON, announced to ``call``."""

    call: str


@dataclass(frozen=True, slots=True)
class AnnounceCount:
    call: str


@dataclass(frozen=True, slots=True)
class Talking:
    """Voice activity of a call, passed through as an event."""

    call: str
    talking: bool


@dataclass(frozen=True, slots=True)
class KeypadWebhook:
    call: str
    feature: str
    keys: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str


Command = (
    Join
    | NameRecorded
    | Leave
    | Start
    | End
    | SetMute
    | MuteAll
    | SetLock
    | SetHold
    | HoldAll
    | SetGain
    | SetAttribute
    | CycleTones
    | AnnounceCount
    | Talking
    | KeypadWebhook
    | TimerFired
)
