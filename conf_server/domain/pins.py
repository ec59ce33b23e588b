"""The PIN check: the digits a caller entered against the PINs of a room.

Source: Horn's dial-in PIN object (``seeds/000_…``): a room may have PINs, a second gate after
the access code; a PIN marked organizer lets the caller in as host.

Theory of operation: a caller who can time the answer must learn nothing about how close a guess
came, nor which of the room's PINs it resembled. So every PIN is compared, always, each with a
constant-time comparison (``hmac.compare_digest``), and the results are combined without a
branch: the time depends on the number and lengths of the PINs, never on where or whether the
entry matched. The store keeps a room's PINs unique; were two equal, the entry matching an
organizer PIN would make the caller a host.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

PinRecord = tuple[str, bool]
"""One PIN of a room: (the PIN, whether it is an organizer PIN)."""


def match_pin(records: Iterable[PinRecord], entered: str) -> tuple[bool, bool]:
    """(matched, organizer) for the digits ``entered`` against every record of a room."""
    guess = entered.encode()
    matched = organizer = False
    for pin, is_organizer in records:
        hit = hmac.compare_digest(pin.encode(), guess)
        matched |= hit
        organizer |= hit & is_organizer
    return matched, organizer
