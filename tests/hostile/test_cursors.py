"""Generated forged, tampered, truncated, other-user and other-query cursors, on every operation
that takes a `cursor`: always 422 on `["query", "cursor"]`, never a page and never a 5xx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
import uuid

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import OPERATIONS, Attack, Request, label
from tests.hostile.operations import Operation, Parameter, valid_instance
from tests.hostile.test_requests import HYPOTHESIS

PAGED = [op for op in OPERATIONS if any(p.name == "cursor" for p in op.located("query"))]
B64 = string.ascii_letters + string.digits + "-_"
EXAMPLES = 60
# The checksum key the cursors of earlier versions used, public in their source.
OLD_KEY = b"todo-api cursor v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _other_value(parameter: Parameter) -> str:
    """A valid value of `parameter` other than its default: another query."""
    schema = parameter.schema
    choices = [value for value in schema.get("enum", []) if value != schema.get("default")]
    value = choices[0] if choices else valid_instance(schema, "x")
    return orjson.dumps(value).decode().strip('"') if not isinstance(value, str) else value


type Query = list[tuple[str, str]]


async def _three_items(attack: Attack, operation: Operation, user: str) -> tuple[str, Query]:
    """The path and query of a page with three of `user`'s items, made first: resources of the
    collection, or the completions of a recurring todo, or reminders firing in the documented
    example window (`from`/`to` of `GET /api/reminders`)."""
    headers = {"Authorization": f"Bearer {attack.tokens[user]}"}
    if operation.path == "/api/reminders":
        for hour in (1, 2, 3):
            body = {"title": "r", "reminders": [{"at": f"2030-01-31T0{hour}:00:00Z"}]}
            assert (await attack.client.post("/api/todos", json=body, headers=headers)).status_code == 201
        return operation.path, [("from", "2030-01-31T00:00:00Z"), ("to", "2030-02-01T00:00:00Z")]
    if operation.path.endswith("/completions"):
        body = {"title": "c", "recurrence": "FREQ=DAILY", "due_at": "2030-01-01T09:00:00Z"}
        todo = (await attack.client.post("/api/todos", json=body, headers=headers)).json()
        for _ in range(3):
            await attack.client.patch(f"/api/todos/{todo['id']}", json={"completed": True}, headers=headers)
        return operation.path.replace("{todo_id}", todo["id"]), []
    for _ in range(3):
        await attack.create(operation.path, attack.tokens[user])
    return operation.path, []


async def _cursor(attack: Attack, operation: Operation, user: str) -> tuple[str, str, Query]:
    """A real cursor of `user`'s, with the path and query it belongs to."""
    path, query = await _three_items(attack, operation, user)
    request = Request("GET", path, query=[*query, ("limit", "1")])
    request.headers["authorization"] = f"Bearer {attack.tokens[user]}".encode()
    response = await attack.send(operation, request)
    cursor = response.json()["next_cursor"]
    assert isinstance(cursor, str), response.text
    return cursor, path, query


def _old_format(sort: str, value: object, user_id: str) -> str:
    """A cursor minted the way earlier versions checked them (a NUL title, a priority beyond smallint)."""
    payload = orjson.dumps([sort, value, str(uuid.uuid4())])
    binding = orjson.dumps([user_id, sort]).decode()
    signature = hmac.digest(OLD_KEY, payload + b"\x00" + binding.encode(), hashlib.sha256)[:12]
    return f"{_b64(payload)}.{_b64(signature)}"


type Forgery = tuple[str, list[tuple[str, str]]]  # the cursor, and query parameters sent with it


@st.composite
def forgeries(draw: st.DrawFn, operation: Operation, cursor: str, foreign: str) -> Forgery:
    """What an attacker makes of a real cursor (or without one), and the query it is sent with."""
    raw = _unb64(cursor)
    filters = [p for p in operation.located("query") if p.name not in {"cursor", "limit"}]
    kinds = ["flip", "truncate", "extend", "random", "splice", "old", "other_user"]
    kind = draw(st.sampled_from([*kinds, *(["other_query"] if filters else [])]))  # the trash has no filters
    if kind == "flip":
        position, bit = draw(st.integers(0, len(raw) - 1)), draw(st.integers(0, 7))
        return _b64(raw[:position] + bytes([raw[position] ^ (1 << bit)]) + raw[position + 1 :]), []
    if kind == "truncate":
        return cursor[: draw(st.integers(1, len(cursor) - 1))], []
    if kind == "extend":
        return cursor + draw(st.text(B64, min_size=1, max_size=40)), []
    if kind == "random":
        return draw(st.text(B64, min_size=1, max_size=300)), []
    if kind == "splice":  # the version and nonce of one cursor, the ciphertext of another
        return _b64(raw[:13] + _unb64(foreign)[13:]), []
    if kind == "old":
        value = draw(st.sampled_from(["a\x00b", 2**40, -(2**63), "2030-01-01T00:00:00", None]))
        return _old_format(
            draw(st.sampled_from(["title", "priority", "created_at", "name"])), value, str(uuid.uuid4())
        ), []
    if kind == "other_user":
        return foreign, []
    parameter = draw(st.sampled_from(filters))  # this user's cursor, sent with another query
    return cursor, [(parameter.name, _other_value(parameter))]


@pytest.mark.parametrize("operation", PAGED, ids=label)
@settings(HYPOTHESIS, max_examples=EXAMPLES)
@given(data=st.data())
async def test_forged_tampered_and_foreign_cursors_are_422(
    attack: Attack, operation: Operation, data: st.DataObject
) -> None:
    if not hasattr(attack, "cursors"):  # real cursors made once per operation, reused by every example
        attack.cursors = (  # type: ignore[attr-defined]
            await _cursor(attack, operation, "user"),
            await _cursor(attack, operation, "other"),
        )
    (own, path, base), (foreign, _, _) = attack.cursors  # type: ignore[attr-defined]
    forged, query = data.draw(forgeries(operation, own, foreign), label="forgery")
    request = Request("GET", path, query=[*base, ("limit", "1"), *query, ("cursor", forged)])
    request.headers["authorization"] = f"Bearer {attack.tokens['user']}".encode()
    response = await attack.send(operation, request)
    attack.check(operation, response, {422})
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("operation", PAGED, ids=label)
async def test_the_real_cursor_still_works(attack: Attack, operation: Operation) -> None:
    """The forgeries above are refused because they are forged, not because cursors never work."""
    cursor, path, base = await _cursor(attack, operation, "user")
    request = Request("GET", path, query=[*base, ("limit", "1"), ("cursor", cursor)])
    request.headers["authorization"] = f"Bearer {attack.tokens['user']}".encode()
    response = await attack.send(operation, request)
    attack.check(operation, response, {200})
    assert len(response.json()["items"]) == 1
