"""The live-control interface between the running server and the REST API.

The REST API (``conf_server/api``) may import only the domain and the store (DESIGN.md §2), yet
it must act on live calls: mute one, hang one up, end a meeting, stream events. This module is
the seam: the runtime's conference object implements :class:`LiveControl`, the API codes
against it, and tests of either side can use the other's real implementation.

Every change to a meeting goes through the one ``MeetingService`` (so the keypad and the API
raise the same events): the API calls a service method with ``live.now()`` and hands the
returned ``Outcome`` to ``live.apply``, which carries out its actions on media and SIP and
publishes its events to every subscriber (webhook delivery, the SSE stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from conf_server.domain.attributes import Role
from conf_server.domain.meeting import Event
from conf_server.domain.service import MeetingService, Outcome


@dataclass(frozen=True, slots=True)
class LiveCallInfo:
    """One call in a live meeting, as the API shows it (CarrierX ``calls`` object)."""

    call_id: str
    room: str  # the meeting room's meetingNumber
    role: Role
    caller: str  # caller's number or SIP user
    did: str  # the E.164 number dialled
    joined_at: float  # UNIX time of the join
    muted: bool
    held: bool
    deaf: bool
    gain_in_db: float
    gain_out_db: float
    custom_name: str | None = None


class LiveControl(Protocol):
    """What the API may do to live meetings and calls."""

    @property
    def service(self) -> MeetingService:
        """The one meeting service (read its meetings; call its operations)."""
        ...

    def now(self) -> float:
        """The clock the service runs on (monotonic seconds)."""
        ...

    def apply(self, outcome: Outcome) -> None:
        """Carry out an outcome's actions (media, SIP) and publish its events."""
        ...

    def calls(self) -> list[LiveCallInfo]:
        """Every call joined to a live meeting."""
        ...

    def call_info(self, call_id: str) -> LiveCallInfo | None:
        """One live call, or None."""
        ...

    def set_custom_name(self, call_id: str, name: str | None) -> bool:
        """Label a live call (CarrierX ``customName``); False if there is no such call."""
        ...

    def hangup(self, call_id: str) -> bool:
        """Send BYE to a call (it leaves its meeting); False if there is no such call."""
        ...

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Receive every meeting event; returns the function that unsubscribes."""
        ...
