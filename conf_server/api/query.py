"""List query conventions: pagination, result filtering, ordering and field filtering.

Source: CarrierX API "Pagination", "Result Filtering" and "Field Filtering"
(``seeds/004_…``).

Theory of operation
-------------------
Lists are small administrative sets, so a listing is computed over the JSON shapes the client
sees, not in SQL: the resource builds every item's dict, ``ListQuery.apply`` filters, orders,
pages and trims them. Filtering on the shapes means a filter names exactly the fields of the
response (``keychain.accessCode eq "1234"``), including dotted nested fields; a nested field of
an array matches when any element matches.

Filter grammar (whitespace separated, ``and`` case-insensitive)::

    filter := cond { "and" cond }
    cond   := field op value
    field  := name { "." name }
    op     := eq | ne | lt | le | gt | ge | like | ilike | in | notin | bit
    value  := word | "double quoted" | 'single quoted' | "(" value { "," value } ")"

A value is compared in the type of the field: numbers as numbers (a value that is not a number
is a 400), booleans as ``true``/``false``, ``null`` matches a null field. ``like`` is SQL LIKE
(``%`` any run, ``_`` one character), case-sensitive; ``ilike`` ignores case; ``bit`` is a mask
test on an integer field (every bit of the value set). Every error is a ``BadQueryError`` (400)
naming the parameter and the problem, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from conf_server.api.errors import BadQueryError

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 1000
_TOKEN = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|(\()|(\))|(,)|([^\s(),"']+))""")
_OPERATORS: Final = frozenset(
    {"eq", "ne", "lt", "le", "gt", "ge", "like", "ilike", "in", "notin", "bit"}
)
_LIST_OPS: Final = frozenset({"in", "notin"})
Item = Mapping[str, Any]
Known = Mapping[str, frozenset[str]]
"""Top-level field → its nested field names (empty for a scalar or a list of scalars)."""


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    path: tuple[str, ...]
    op: str
    values: tuple[_Token, ...]


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            at = len(text) - len(text[pos:].lstrip())  # point at the quote, not the blank
            raise BadQueryError("filter", f"unbalanced quote at position {at}")
        dq, sq, lp, rp, comma, word = m.groups()
        if dq is not None or sq is not None:
            out.append(_Token(dq if dq is not None else sq, quoted=True))
        else:
            out.append(_Token(lp or rp or comma or word))
        pos = m.end()
    return out


def _check_path(path: tuple[str, ...], known: Known, parameter: str) -> None:
    top = path[0]
    if top not in known or len(path) > 2 or (len(path) == 2 and path[1] not in known[top]):
        raise BadQueryError(parameter, f"unknown field {'.'.join(path)!r}")


def _value_list(tokens: list[_Token], i: int) -> tuple[tuple[_Token, ...], int]:
    if i >= len(tokens) or tokens[i].text != "(" or tokens[i].quoted:
        raise BadQueryError("filter", 'in/notin need a list such as ("a", "b")')
    values: list[_Token] = []
    i += 1
    while True:
        if i >= len(tokens):
            raise BadQueryError("filter", "unclosed '(' in the value list")
        values.append(tokens[i])
        i += 1
        if i < len(tokens) and tokens[i].text == ")" and not tokens[i].quoted:
            return tuple(values), i + 1
        if i >= len(tokens) or tokens[i].text != "," or tokens[i].quoted:
            raise BadQueryError("filter", "expected ',' or ')' in the value list")
        i += 1


def parse_filter(text: str, known: Known) -> tuple[Condition, ...]:
    """Parse ``filter=``; ``known`` is the resource's field set."""
    tokens = _tokens(text)
    conditions: list[Condition] = []
    i = 0
    while True:
        if i + 2 >= len(tokens):
            raise BadQueryError("filter", "expected 'field operator value'")
        field, op = tokens[i], tokens[i + 1].text.lower()
        path = tuple(field.text.split("."))
        if field.quoted or "" in path:
            raise BadQueryError("filter", f"bad field name {field.text!r}")
        _check_path(path, known, "filter")
        if op not in _OPERATORS:
            raise BadQueryError("filter", f"unknown operator {tokens[i + 1].text!r}")
        if op in _LIST_OPS:
            values, i = _value_list(tokens, i + 2)
        else:
            values, i = (tokens[i + 2],), i + 3
            if values[0].text in "()," and not values[0].quoted:
                raise BadQueryError("filter", f"operator {op} needs one value")
        conditions.append(Condition(path, op, values))
        if i == len(tokens):
            return tuple(conditions)
        if tokens[i].text.lower() != "and" or tokens[i].quoted:
            raise BadQueryError("filter", f"expected 'and', found {tokens[i].text!r}")
        i += 1


# --- evaluation -----------------------------------------------------------------------------


def _coerce(sample: object, token: _Token) -> object:
    """The filter value in the type of the field value ``sample``."""
    text = token.text
    if not token.quoted and text.lower() == "null":
        return None
    if isinstance(sample, bool):
        if text.lower() not in ("true", "false"):
            raise BadQueryError("filter", f"{text!r} is not true or false")
        return text.lower() == "true"
    if isinstance(sample, int | float):
        try:
            return float(text) if isinstance(sample, float) or "." in text else int(text)
        except ValueError:
            raise BadQueryError("filter", f"{text!r} is not a number") from None
    return text


def _like(pattern: str, flags: int) -> re.Pattern[str]:
    parts = (".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), flags | re.DOTALL)


def _compare(value: object, op: str, tokens: tuple[_Token, ...]) -> bool:
    if op in _LIST_OPS:
        members = [_coerce(value, t) for t in tokens]
        return (value in members) == (op == "in")
    target = _coerce(value, tokens[0])
    return _COMPARE[op](value, target)


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[object, object], bool]:
    def check(value: object, target: object) -> bool:
        if value is None or target is None:
            return False
        try:
            return test(value, target)
        except TypeError:
            raise BadQueryError("filter", "values of this field cannot be ordered") from None

    return check


def _bit(value: object, target: object) -> bool:
    if not isinstance(value, int) or not isinstance(target, int) or isinstance(value, bool):
        raise BadQueryError("filter", "bit needs an integer field and an integer mask")
    return value & target == target


def _text_match(flags: int) -> Callable[[object, object], bool]:
    def check(value: object, target: object) -> bool:
        if not isinstance(value, str) or not isinstance(target, str):
            raise BadQueryError("filter", "like/ilike need a text field and a text pattern")
        return _like(target, flags).fullmatch(value) is not None

    return check


_COMPARE: Final[Mapping[str, Callable[[object, object], bool]]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "like": _text_match(0),
    "ilike": _text_match(re.IGNORECASE),
    "bit": _bit,
}


def _values_at(item: Item, path: tuple[str, ...]) -> list[object]:
    value = item.get(path[0])
    if len(path) == 1:
        return [value]
    elements = value if isinstance(value, list) else [value]
    return [e.get(path[1]) for e in elements if isinstance(e, Mapping)]


def matches(item: Item, conditions: Iterable[Condition]) -> bool:
    """Whether ``item`` meets every condition (a nested array field: any element)."""
    return all(
        any(_compare(v, c.op, c.values) for v in _values_at(item, c.path)) for c in conditions
    )


# --- the whole query ------------------------------------------------------------------------


def _int_param(name: str, text: str | None, default: int, high: int | None) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadQueryError(name, f"{text!r} is not an integer") from None
    if value < 0 or (high is not None and value > high):
        limit = f"0..{high}" if high is not None else "0 or more"
        raise BadQueryError(name, f"{value} is outside {limit}")
    return value


def _field_list(name: str, text: str | None, known: Known) -> frozenset[str] | None:
    if text is None:
        return None
    fields = frozenset(f.strip() for f in text.split(",") if f.strip())
    unknown = sorted(fields - known.keys())
    if unknown:
        raise BadQueryError(name, f"unknown field {unknown[0]!r}")
    return fields


def _order(text: str | None, known: Known) -> tuple[str, bool] | None:
    if text is None:
        return None
    parts = text.split()
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise BadQueryError("order", "expected 'field' or 'field asc|desc'")
    if parts[0] not in known:
        raise BadQueryError("order", f"unknown field {parts[0]!r}")
    return parts[0], len(parts) == 2 and parts[1].lower() == "desc"


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The parsed query parameters of one list request."""

    offset: int = 0
    limit: int = DEFAULT_LIMIT
    conditions: tuple[Condition, ...] = ()
    order: tuple[str, bool] | None = None
    include: frozenset[str] | None = None
    exclude: frozenset[str] | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], known: Known) -> ListQuery:
        """From the request's query parameters; ``BadQueryError`` for any malformed one."""
        text = params.get("filter")
        return cls(
            offset=_int_param("offset", params.get("offset"), 0, None),
            limit=_int_param("limit", params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT),
            conditions=parse_filter(text, known) if text is not None and text.strip() else (),
            order=_order(params.get("order"), known),
            include=_field_list("include_fields", params.get("include_fields"), known),
            exclude=_field_list("exclude_fields", params.get("exclude_fields"), known),
        )

    def trim(self, item: Item) -> dict[str, Any]:
        """Field filtering of one object."""
        return {
            k: v
            for k, v in item.items()
            if (self.include is None or k in self.include)
            and (self.exclude is None or k not in self.exclude)
        }

    def select(self, items: Sequence[Item]) -> tuple[list[dict[str, Any]], int]:
        """Filter, order and page ``items``: (the page, trimmed; the total that matched)."""
        found = [item for item in items if matches(item, self.conditions)]
        if self.order is not None:
            key, descending = self.order
            present = [i for i in found if i.get(key) is not None]
            absent = [i for i in found if i.get(key) is None]
            try:
                present.sort(key=lambda i: i[key], reverse=descending)
            except TypeError:
                raise BadQueryError("order", f"values of {key!r} cannot be ordered") from None
            found = present + absent
        page = found[self.offset : self.offset + self.limit]
        return [self.trim(item) for item in page], len(found)

    def envelope(self, name: str, items: Sequence[Item]) -> dict[str, Any]:
        """The Conference API list body: ``{name: [...], "last", "offset", "total"}``.

        ``last`` is the index of the last item returned (``offset + count - 1``; ``-1`` when
        the page is empty), as in the spec's samples.
        """
        page, total = self.select(items)
        return {
            name: page,
            "last": self.offset + len(page) - 1,
            "offset": self.offset,
            "total": total,
        }


def parse_item_fields(params: Mapping[str, str], known: Known) -> ListQuery:
    """Field filtering for a single-object GET (the other list parameters are refused)."""
    for name in ("filter", "order"):
        if name in params:
            raise BadQueryError(name, "only lists can be filtered or ordered")
    return ListQuery(
        include=_field_list("include_fields", params.get("include_fields"), known),
        exclude=_field_list("exclude_fields", params.get("exclude_fields"), known),
    )
