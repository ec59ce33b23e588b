"""The domain's one exception tree, as its docstring draws it."""

from __future__ import annotations

import inspect
import re

from conf_server.domain import attributes, errors, meeting
from conf_server.domain.errors import (
    AttributeValueError,
    ConfigError,
    DomainError,
    IllegalInputError,
    InvalidValueError,
    IvrConfigError,
    IvrError,
    KeypadError,
    LockoutConfigError,
    MeetingConfigError,
    MeetingError,
    NotAllowedError,
    UnknownCallError,
    UnknownMeetingError,
)

_DRAWN = re.compile(r"^\s*(?:[│ ]*[├└]── )?([A-Z]\w+Error)\b", re.MULTILINE)


def _classes() -> dict[str, type[Exception]]:
    return {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__ == errors.__name__
    }


def test_one_root_and_every_class_drawn_in_the_docstring() -> None:
    classes = _classes()
    assert all(issubclass(cls, DomainError) for cls in classes.values())
    assert errors.__doc__ is not None
    assert set(_DRAWN.findall(errors.__doc__)) == set(classes)


def test_the_tree() -> None:
    parents = {
        IllegalInputError: DomainError,
        IvrError: DomainError,
        KeypadError: DomainError,
        ConfigError: DomainError,
        AttributeValueError: ConfigError,
        IvrConfigError: ConfigError,
        LockoutConfigError: ConfigError,
        MeetingConfigError: ConfigError,
        MeetingError: DomainError,
        UnknownCallError: MeetingError,
        UnknownMeetingError: MeetingError,
        NotAllowedError: MeetingError,
        InvalidValueError: MeetingError,
    }
    for cls, parent in parents.items():
        assert cls.__bases__[0] is parent, cls


def test_bad_values_and_only_those_are_value_errors() -> None:
    """The config loader and the REST API turn ``ValueError`` into "bad request"."""
    values = {KeypadError, ConfigError, AttributeValueError, IvrConfigError, LockoutConfigError,
              MeetingConfigError, InvalidValueError}  # fmt: skip
    for cls in _classes().values():
        assert issubclass(cls, ValueError) is (cls in values), cls
    assert issubclass(UnknownCallError, LookupError) and issubclass(
        UnknownMeetingError, LookupError
    )


def test_the_old_homes_still_export_what_other_layers_import() -> None:
    assert attributes.AttributeValueError is AttributeValueError  # the store
    for name in ("MeetingError", "NotAllowedError", "UnknownCallError", "UnknownMeetingError"):
        assert getattr(meeting, name) is getattr(errors, name)  # the REST API, the runtime


def test_attribute_value_error_keeps_its_fields() -> None:
    exc = AttributeValueError("conference_exittones", "'maybe' is not one of on, off")
    assert (exc.name, exc.reason) == ("conference_exittones", "'maybe' is not one of on, off")
    assert str(exc) == "attribute 'conference_exittones': 'maybe' is not one of on, off"
