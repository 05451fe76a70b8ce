"""Building an error response never fails, whatever it echoes: the validation-error encoder is total."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from todo_api.http.errors import error_response, json_safe, validation_error_response


class Color(Enum):
    RED = float("nan")


class Opaque:
    """An object no encoder knows, whose attributes hold a non-finite float."""

    def __init__(self) -> None:
        self.value = math.inf


class Exploding:
    """Refuses every way an encoder looks inside it."""

    def __iter__(self) -> Any:
        raise RuntimeError("no")

    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        raise RuntimeError("no")


def _cycle() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(4300, 5000).map(lambda digits: -(10**digits)),  # past the 4300-digit str() limit
    st.floats(),  # NaN, ±inf
    st.text(st.characters(codec=None, exclude_categories=[])),  # lone surrogates included
    st.binary(),  # invalid UTF-8 included
    st.builds(bytearray, st.binary(max_size=10)),
    st.datetimes(timezones=st.just(UTC)),
    st.uuids(),
    st.decimals(),  # NaN and infinities too
    st.sampled_from([Color.RED, Opaque(), Exploding(), ValueError("boom"), object(), _cycle(), Ellipsis]),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.frozensets(st.integers() | st.text(max_size=3), max_size=3),
        st.dictionaries(st.one_of(st.text(), st.integers(), st.floats(), st.binary(max_size=4)), children, max_size=4),
    ),
    max_leaves=12,
)


def _strict_json(data: bytes) -> Any:
    """Valid UTF-8, no NaN/Infinity: what orjson (RFC 8259) accepts."""
    return orjson.loads(data)


@settings(max_examples=300)
@given(value=VALUES)
def test_json_safe_turns_anything_into_strict_json(value: Any) -> None:
    safe = json_safe(value)
    json.dumps(safe, allow_nan=False, ensure_ascii=False).encode("utf-8")  # strict, valid UTF-8
    _strict_json(orjson.dumps(safe))


@settings(max_examples=200)
@given(value=VALUES)
def test_a_validation_error_echoing_anything_renders(value: Any) -> None:
    errors = [{"type": "value_error", "loc": ("body", value), "msg": "bad", "input": value, "ctx": {"error": value}}]
    body = _strict_json(bytes(validation_error_response(errors).body))
    assert body["detail"][0]["type"] == "value_error"
    assert _strict_json(bytes(error_response(422, errors).body))["detail"][0]["msg"] == "bad"


def test_known_values_keep_their_meaning() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    ident = uuid.uuid4()
    assert json_safe({"when": when, "id": ident, "n": 3, "x": 1.5}) == {
        "when": when.isoformat(),
        "id": str(ident),
        "n": 3,
        "x": 1.5,
    }
    assert json_safe([math.nan, math.inf, -math.inf]) == ["NaN", "Infinity", "-Infinity"]
    assert json_safe("a\ud800b") == "a\ufffdb"
    assert json_safe(b"\xff") == "\ufffd"
    assert json_safe(Decimal("1.5")) == 1.5
    assert json_safe(ValueError("x")) == {}  # as FastAPI's own handler encodes `ctx.error`
    assert json_safe(10**5000).startswith("<integer of")
