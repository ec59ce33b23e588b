"""The attribute catalogue: defaults, validation, group bitmask and inheritance order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.domain import attributes
from conf_server.domain.attributes import (
    CATALOGUE,
    AttributeValueError,
    AttrType,
    Group,
    Level,
    Role,
)

# "Where to Set" column of the spec → group bitmask.
WHERE_TO_SET = [
    ("call_announceparticipantcount", 5),  # the spec's template sample says group 5
    ("call_delay", 3),  # DID Group, DID
    ("dnis_welcomeprompt", 3),
    ("call_mute_dtmf_binding", 1),  # DID Group only
    ("call_operator_after", 1),
    ("recording_method", 1),
    ("conference_start_how", 5),  # Meeting Room, DID Group
    ("conference_mute_policy", 5),
]


@pytest.mark.parametrize(("name", "group"), WHERE_TO_SET)
def test_group_bits_follow_the_spec(name: str, group: int) -> None:
    assert int(CATALOGUE[name].group) == group


def test_defaults_resolve_and_are_typed() -> None:
    values = attributes.resolve(None, None, None, None)
    assert set(values) == set(CATALOGUE)
    assert values["call_announceparticipantcount"] == "hpl"
    assert values["conference_language"] == "EN"
    assert values["call_operator_after"] == 3
    assert values["conference_start_how"] == "first"
    assert values["call_mute_dtmf_binding"] == "*6"
    for name, value in values.items():
        expected = int if CATALOGUE[name].type is AttrType.INT else str
        assert type(value) is expected, name


def test_every_default_passes_its_own_validation() -> None:
    for name, entry in CATALOGUE.items():
        assert attributes.validate(name, entry.default, Level.CALL_FLOW) == entry.default


# (attribute, call flow, DID group, DID, room, effective value)
INHERITANCE = [
    ("conference_start_how", None, None, None, None, "first"),
    ("conference_start_how", "explicit", None, None, None, "explicit"),
    ("conference_start_how", "explicit", "moderator", None, None, "moderator"),
    ("conference_start_how", "explicit", "moderator", None, "first", "first"),
    ("conference_start_how", None, None, None, "moderator", "moderator"),
    ("call_delay", "1", "2", "3", None, 3),
    ("call_delay", "1", "2", None, None, 2),
    ("call_delay", "1", None, None, None, 1),
    ("dnis_welcomeprompt", None, "hello", "hi", None, "hi"),
    ("call_mute_dtmf_binding", "*1", "*2", None, None, "*2"),
]


@pytest.mark.parametrize("case", INHERITANCE, ids=lambda case: f"{case[0]}={case[5]}")
def test_most_specific_permitted_level_wins(
    case: tuple[str, str | None, str | None, str | None, str | None, object],
) -> None:
    name, flow, group, did, room, expected = case

    def layer(value: str | None) -> dict[str, object] | None:
        return None if value is None else {name: value}

    # moving recording off its default *2 keeps it from colliding with the test value
    flow_layer = layer(flow)
    if name == "call_mute_dtmf_binding" and flow_layer is not None:
        flow_layer["recording_dtmf_binding"] = "#2"
    values = attributes.resolve(flow_layer, layer(group), layer(did), layer(room))
    assert values[name] == expected


# One attribute per group value × every level: allowed exactly where the bit is set.
BITMASK = [
    ("call_operator_after", Group.DID_GROUP),
    ("call_delay", Group.DID_GROUP | Group.DID),
    ("conference_maxcalls", Group.DID_GROUP | Group.ROOM),
]
LEVEL_BIT = {Level.DID_GROUP: Group.DID_GROUP, Level.DID: Group.DID, Level.ROOM: Group.ROOM}


@pytest.mark.parametrize(("name", "group"), BITMASK)
@pytest.mark.parametrize("level", list(LEVEL_BIT))
def test_group_bitmask_decides_where_a_value_may_be_set(
    name: str, group: Group, level: Level
) -> None:
    layers: dict[Level, dict[str, object] | None] = dict.fromkeys(LEVEL_BIT)
    layers[level] = {name: "5"}
    allowed = bool(group & LEVEL_BIT[level])
    if allowed:
        values = attributes.resolve(
            None, layers[Level.DID_GROUP], layers[Level.DID], layers[Level.ROOM]
        )
        assert values[name] == 5
    else:
        with pytest.raises(
            AttributeValueError, match=f"'{name}': cannot be set on a {level.value}"
        ):
            attributes.resolve(None, layers[Level.DID_GROUP], layers[Level.DID], layers[Level.ROOM])


def test_call_flow_may_set_everything() -> None:
    assert all(entry.may_set(Level.CALL_FLOW) for entry in CATALOGUE.values())


ERRORS = [
    ("no_such_thing", "1", "attribute 'no_such_thing': unknown attribute"),
    ("call_maxduration", "soon", "attribute 'call_maxduration': 'soon' is not an integer"),
    ("call_maxduration", "-2", "attribute 'call_maxduration': -2 is below -1"),
    ("conference_start_wait", "-1", "attribute 'conference_start_wait': -1 is below 0"),
    ("conference_start_how", "never", "'never' is not one of first, moderator, explicit"),
    ("conference_mute_policy", "hx", "'hx' is not a set of roles"),
    ("conference_mute_policy", "hh", "'hh' is not a set of roles"),
    ("conference_maxcallsperrole", "1:2", "does not match"),
    ("conference_maxcallsperrole", "1:-5:2", "each limit must be -1 or more"),
    ("conference_language", 3.5, "expected a string, got float"),
    ("conference_entrytones", True, "expected a string, got bool"),
]


@pytest.mark.parametrize(("name", "value", "message"), ERRORS)
def test_bad_values_name_the_attribute_and_the_reason(
    name: str, value: object, message: str
) -> None:
    with pytest.raises(AttributeValueError, match=message.replace("*", r"\*")) as caught:
        attributes.validate(name, value, Level.ROOM)
    assert caught.value.name == name


def test_bad_dtmf_binding() -> None:
    with pytest.raises(AttributeValueError, match="'call_mute_dtmf_binding': 'X6' is not a DTMF"):
        attributes.validate("call_mute_dtmf_binding", "x6", Level.DID_GROUP)


CANONICAL = [
    ("conference_mute_policy", "LPH", "hpl"),
    ("conference_mute_policy", "", ""),
    ("conference_start_how", "Moderator", "moderator"),
    ("conference_language", "pt-br", "PT-BR"),
    ("call_maxduration", 120, "120"),
    ("call_maxduration", " 007 ", "7"),
    ("call_mute_dtmf_binding", "*a", "*A"),
]


@pytest.mark.parametrize(("name", "value", "canonical"), CANONICAL)
def test_values_are_stored_canonically(name: str, value: object, canonical: str) -> None:
    assert attributes.validate(name, value, Level.ROOM if name != "call_mute_dtmf_binding"
                               else Level.DID_GROUP) == canonical  # fmt: skip


@given(st.sets(st.sampled_from("hpl")).flatmap(lambda chosen: st.permutations(sorted(chosen))))
def test_role_strings_are_order_free(letters: list[str]) -> None:
    canonical = attributes.validate("conference_hold_policy", "".join(letters), Level.ROOM)
    assert attributes.validate("conference_hold_policy", canonical, Level.ROOM) == canonical
    assert {role.letter for role in attributes.roles(canonical)} == set(letters)
    assert canonical == "".join(letter for letter in "hpl" if letter in letters)


@given(st.integers(min_value=-1, max_value=10**9))
def test_int_values_round_trip(number: int) -> None:
    text = attributes.validate("conference_maxcalls", number, Level.ROOM)
    assert attributes.typed("conference_maxcalls", text) == number


def test_default_keypad_has_no_collisions_and_self_mute_is_star_six() -> None:
    bindings = attributes.keypad_bindings(attributes.resolve(None, None, None, None))
    assert bindings["call_mute"] == ("*6", frozenset({Role.HOST, Role.PARTICIPANT}))
    assert bindings["conference_mute"] == ("*5", frozenset({Role.HOST}))
    sequences = [seq for seq, _ in bindings.values()]
    assert len(set(sequences)) == len(sequences)
    assert not any(a != b and b.startswith(a) for a in sequences for b in sequences)


def test_disabled_features_are_not_bindings() -> None:
    values = attributes.resolve(None, {"conference_lock_dtmf": ""}, None, None)
    assert "conference_lock" not in attributes.keypad_bindings(values)


@pytest.mark.parametrize(
    ("binding", "collides_with"),
    [("*6", "call_mute_dtmf_binding"), ("*", "call_participantsnumber"), ("*61", "call_mute")],
)
def test_colliding_bindings_are_refused(binding: str, collides_with: str) -> None:
    with pytest.raises(AttributeValueError, match="collide with") as caught:
        attributes.resolve(None, {"conference_lock_dtmf_binding": binding}, None, None)
    assert collides_with in str(caught.value)
    assert "conference_lock_dtmf_binding" in str(caught.value)


def test_a_collision_with_a_disabled_feature_is_allowed() -> None:
    values = attributes.resolve(
        None, {"conference_lock_dtmf_binding": "*6", "call_mute_dtmf": ""}, None, None
    )
    assert attributes.keypad_bindings(values)["conference_lock"][0] == "*6"


@pytest.mark.parametrize(
    ("given", "role"),
    [(1, Role.HOST), ("host", Role.HOST), ("Participant", Role.PARTICIPANT), (3, Role.LISTENER)],
)
def test_role_parse(given: object, role: Role) -> None:
    assert Role.parse(given) is role


@pytest.mark.parametrize("given", [0, 4, "guest", True, None, 1.0])
def test_role_parse_refuses(given: object) -> None:
    with pytest.raises(ValueError, match="role must be"):
        Role.parse(given)
