"""Result filtering, ordering, pagination and field filtering (CarrierX conventions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf_server.api.errors import BadQueryError
from conf_server.api.query import ListQuery, parse_filter

KNOWN = {
    "name": frozenset[str](),
    "state": frozenset[str](),
    "capabilities": frozenset[str](),
    "active": frozenset[str](),
    "keychain": frozenset({"accessCode", "role"}),
    "description": frozenset[str](),
}
ITEMS = [
    {"name": "Account one", "state": "NY", "capabilities": 7, "active": True,
     "keychain": [{"accessCode": "111", "role": 1}], "description": None},
    {"name": "account two", "state": "CA", "capabilities": 4, "active": False,
     "keychain": [{"accessCode": "222", "role": 2}, {"accessCode": "333", "role": 3}],
     "description": "x"},
    {"name": "my_mediator", "state": "NY", "capabilities": 3, "active": True, "keychain": [],
     "description": "y"},
]  # fmt: skip


def names(filter_text: str, **params: str) -> list[str]:
    query = ListQuery.parse({"filter": filter_text, "limit": "1000", **params}, KNOWN)
    page, _ = query.select(ITEMS)
    return [item["name"] for item in page]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name eq "my_mediator"', ["my_mediator"]),
        ("name ne my_mediator", ["Account one", "account two"]),
        ("capabilities gt 3", ["Account one", "account two"]),
        ("capabilities ge 4", ["Account one", "account two"]),
        ("capabilities lt 4", ["my_mediator"]),
        ("capabilities le 4", ["account two", "my_mediator"]),
        ('name like "Account%"', ["Account one"]),
        ('name ilike "AccOUnt%"', ["Account one", "account two"]),
        ("name like 'my_mediato_'", ["my_mediator"]),
        ('state in ("NY", "TX")', ["Account one", "my_mediator"]),
        ("state notin (NY)", ["account two"]),
        ("capabilities bit 4", ["Account one", "account two"]),
        ("capabilities bit 3", ["Account one", "my_mediator"]),
        ('state eq "NY" and name like "%o%"', ["Account one", "my_mediator"]),
        ("state eq NY AND capabilities bit 7", ["Account one"]),
        ("active eq false", ["account two"]),
        ("description eq null", ["Account one"]),
        ('keychain.accessCode eq "333"', ["account two"]),
        ("keychain.role eq 1", ["Account one"]),
    ],
)
def test_filter_golden(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"filter": "name eq"}, "filter", "expected 'field operator value'"),
        ({"filter": "colour eq red"}, "filter", "unknown field 'colour'"),
        ({"filter": "keychain.pin eq 1"}, "filter", "unknown field 'keychain.pin'"),
        ({"filter": "name equals x"}, "filter", "unknown operator 'equals'"),
        ({"filter": 'name eq "open'}, "filter", "unbalanced quote at position 8"),
        ({"filter": "name eq x or state eq y"}, "filter", "expected 'and', found 'or'"),
        ({"filter": "state in NY"}, "filter", 'in/notin need a list such as ("a", "b")'),
        ({"filter": "state in (NY"}, "filter", "expected ',' or ')' in the value list"),
        ({"filter": "capabilities gt many"}, "filter", "'many' is not a number"),
        ({"filter": "active eq maybe"}, "filter", "'maybe' is not true or false"),
        ({"filter": "name bit 4"}, "filter", "bit needs an integer field and an integer mask"),
        ({"filter": "capabilities like 4%"}, "filter", "'4%' is not a number"),
        ({"limit": "1001"}, "limit", "1001 is outside 0..1000"),
        ({"offset": "-1"}, "offset", "-1 is outside 0 or more"),
        ({"limit": "ten"}, "limit", "'ten' is not an integer"),
        ({"include_fields": "name,colour"}, "include_fields", "unknown field 'colour'"),
        ({"order": "name sideways"}, "order", "expected 'field' or 'field asc|desc'"),
    ],
)
def test_malformed_query_is_a_400_naming_the_parameter(
    params: dict[str, str], parameter: str, message: str
) -> None:
    with pytest.raises(BadQueryError) as caught:
        ListQuery(limit=1000).parse(params, KNOWN).select(ITEMS)
    assert caught.value.status == 400
    assert caught.value.body()["errors"] == [
        {"field": parameter, "message": message, "reference_sid": None}
    ]


def test_pagination_envelope_and_field_filtering() -> None:
    query = ListQuery.parse({"offset": "1", "limit": "1", "include_fields": "name,state"}, KNOWN)
    assert query.envelope("things", ITEMS) == {
        "things": [{"name": "account two", "state": "CA"}],
        "last": 1,
        "offset": 1,
        "total": 3,
    }
    empty = ListQuery.parse({"offset": "5", "exclude_fields": "keychain"}, KNOWN)
    assert empty.envelope("things", ITEMS) == {"things": [], "last": 4, "offset": 5, "total": 3}


def test_order_sorts_and_keeps_nulls_last() -> None:
    query = ListQuery.parse({"order": "description desc"}, KNOWN)
    page, _ = query.select(ITEMS)
    assert [i["name"] for i in page] == ["my_mediator", "account two", "Account one"]


@given(st.text(max_size=40))
def test_any_filter_text_parses_or_is_a_400(text: str) -> None:
    try:
        conditions = parse_filter(text, KNOWN)
        ListQuery(conditions=conditions).select(ITEMS)
    except BadQueryError as exc:
        assert exc.status == 400


@given(st.integers(0, 10), st.integers(0, 10))
def test_pages_partition_the_matches(offset: int, limit: int) -> None:
    query = ListQuery(offset=offset, limit=limit)
    page, total = query.select(ITEMS)
    assert total == len(ITEMS)
    assert page == [dict(i) for i in ITEMS[offset : offset + limit]]
