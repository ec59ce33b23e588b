"""Exceptions of the domain (``conf_server.domain``).

::

    DomainError
     ├── IllegalInputError                 a state machine got an input its current state (IVR
     │                                     state, meeting state, participant phase) does not
     │                                     accept: a protocol error by whoever sent it, a bug
     ├── IvrError                          an IVR input that cannot exist (a key outside
     │                                     0-9 * # A-D, a room without a role)
     ├── KeypadError (also ValueError)     a key outside RFC 4733 events 0-15; nothing to expire
     ├── ConfigError (also ValueError)     a setting or attribute value the rules cannot use;
     │    │                                the message names it
     │    ├── AttributeValueError          an unknown attribute, a bad value, or an override at
     │    │                                a level its group forbids (``.name``, ``.reason``)
     │    ├── IvrConfigError               an IVR setting outside its range
     │    ├── LockoutConfigError           a guessing-protection parameter outside its range
     │    └── MeetingConfigError           a resolved attribute value the meeting rules cannot use
     └── MeetingError                      an operation on the live meetings that cannot be done
          ├── UnknownCallError (also LookupError)     a call that is in no (or not that) meeting
          ├── UnknownMeetingError (also LookupError)  a room with no live meeting
          ├── NotAllowedError              what the rules forbid this call (unmuting a listener)
          └── InvalidValueError (also ValueError)     a request value out of range (a gain, an
                                           attribute)

``IllegalInputError`` is one class for every machine of the package (``ivr``, ``meeting_flow``,
``participant_flow``): the message names the machine's state and the input. Only the bad-value
classes are also ``ValueError``, so a caller that maps ``ValueError`` to "bad request" (the
configuration loader, the REST API) sees exactly those. The modules that raised these before
``errors`` existed still export the names other layers import from them (``attributes``,
``meeting``).

Pure: no I/O.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every exception ``conf_server.domain`` raises on purpose."""


class IllegalInputError(DomainError):
    """An input the current state of a state machine does not accept: a bug in whoever sent it."""


class IvrError(DomainError):
    """An IVR input that cannot exist (``DigitPressed("x")``, a room found without a role)."""


class KeypadError(DomainError, ValueError):
    """A key outside RFC 4733 events 0–15, or a keypad collector asked to expire nothing."""


class ConfigError(DomainError, ValueError):
    """A setting or attribute value the rules cannot use; the message names it."""


class AttributeValueError(ConfigError):
    """An unknown attribute, a bad value, or an override at a level its group forbids."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"attribute {name!r}: {reason}")
        self.name = name
        self.reason = reason


class IvrConfigError(ConfigError):
    """An IVR setting outside its range; the message names the attribute."""


class LockoutConfigError(ConfigError):
    """A guessing-protection parameter outside its range (the config loader names the key)."""


class MeetingConfigError(ConfigError):
    """A resolved attribute value the meeting rules cannot use; the message names the attribute."""


class MeetingError(DomainError):
    """Base of the meeting service's exceptions: an operation that cannot be done."""


class UnknownCallError(MeetingError, LookupError):
    """A command names a call that is not in any meeting (or not in the one it addresses)."""


class UnknownMeetingError(MeetingError, LookupError):
    """A command names a room with no live meeting."""


class NotAllowedError(MeetingError):
    """An operation the rules forbid for this call (a listener is never unmuted)."""


class InvalidValueError(MeetingError, ValueError):
    """A request value out of range (a gain, an attribute); the message says which."""
