"""Cursors: sealed under CURSOR_SECRET, opaque, bound to user and query, every decoded value checked
for type and range before it reaches SQL; rotation; the cursors of the old public checksum key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.api import Api
from tests.conftest import AppClientFactory
from tests.keys import CURSOR_SECRET
from todo_api.errors import InvalidInput
from todo_api.lists.repository import SORTS as LIST_SORTS
from todo_api.pagination import CURSOR_MAX_LENGTH, SortSpec, decode_cursor, encode_cursor
from todo_api.sealed import Sealer
from todo_api.todos.pages import SORTS as TODO_SORTS

SEALER = Sealer([CURSOR_SECRET], purpose="cursor")
SPECS = {f"todos {name}": spec for name, spec in TODO_SORTS.items()} | {
    f"lists {name}": spec for name, spec in LIST_SORTS.items()
}
BINDING = "binding"
SMALLINT = range(-(2**15), 2**15)


def _sealed(spec: SortSpec, value_bytes: bytes, last_id: uuid.UUID | None = None) -> str:
    """A cursor as the server would seal it, but with any bytes for the key's value."""
    return SEALER.seal((last_id or uuid.uuid4()).bytes + value_bytes, orjson.dumps([spec.name, BINDING]))


def _in_range(spec: SortSpec, value: Any) -> bool:
    kind = spec.name.lstrip("-")
    if kind in {"created_at", "updated_at", "due_at"}:
        return (value is None and kind == "due_at") or (isinstance(value, datetime) and value.tzinfo == UTC)
    if kind == "priority":
        return type(value) is int and 0 <= value <= 3
    limit = 100 if spec in LIST_SORTS.values() else 500
    return isinstance(value, str) and "\x00" not in value and len(value) <= 2 * limit


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
@given(value_bytes=st.binary(max_size=64) | st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_every_decoded_value_is_checked_before_it_reaches_sql(spec: SortSpec, value_bytes: bytes) -> None:
    """Even a cursor sealed with the real secret (a leaked secret, a server bug) yields only values
    the sort key's column can hold, or 422."""
    try:
        value, last_id = decode_cursor(SEALER, _sealed(spec, value_bytes), spec, BINDING)
    except InvalidInput:
        return
    assert isinstance(last_id, uuid.UUID)
    assert _in_range(spec, value), value


@pytest.mark.parametrize(
    ("sort", "value_bytes"),
    [
        ("title", b"a\x00b"),  # NUL: PostgreSQL text cannot hold it
        ("title", b"x" * 1001),  # longer than any title's lower-case key
        ("title", b"\xed\xa0\x80"),  # a lone surrogate's bytes
        ("title", b"\xff"),
        ("priority", struct.pack(">q", 4)),
        ("priority", struct.pack(">q", 2**15)),  # beyond smallint
        ("priority", struct.pack(">q", -(2**63))),
        ("priority", b"\x00\x01"),  # not 8 bytes
        ("created_at", b"2030-01-01T00:00:00"),  # naive
        ("created_at", b"not a date"),
        ("created_at", "2030-01-01T00:00:00+٠١:00".encode()),
        ("created_at", b"0001-01-01T00:00:00+01:00"),  # no UTC representation
    ],
)
def test_hostile_values_in_a_validly_sealed_cursor_are_422(sort: str, value_bytes: bytes) -> None:
    spec = TODO_SORTS[sort]
    with pytest.raises(InvalidInput):
        decode_cursor(SEALER, _sealed(spec, value_bytes), spec, BINDING)


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_short_payloads_and_other_sorts_are_422(spec: SortSpec) -> None:
    short = SEALER.seal(b"\x00" * 15, orjson.dumps([spec.name, BINDING]))
    with pytest.raises(InvalidInput):
        decode_cursor(SEALER, short, spec, BINDING)
    other = next(s for s in SPECS.values() if s.name != spec.name)
    cursor = encode_cursor(
        SEALER, other, None if other.name.endswith("due_at") else _sample(other), uuid.uuid4(), BINDING
    )
    with pytest.raises(InvalidInput):
        decode_cursor(SEALER, cursor, spec, BINDING)


def _sample(spec: SortSpec) -> Any:
    kind = spec.name.lstrip("-")
    return {"priority": 2, "title": "a title", "name": "a name"}.get(kind, datetime(2030, 1, 1, tzinfo=UTC))


async def _title_cursor(api: Api, title: str) -> str:
    for _ in range(3):
        await api.create_todo(title=title)
    page = (await api.request("GET", "/api/todos", params={"sort": "title", "limit": 1})).json()
    cursor: str = page["next_cursor"]
    return cursor


def _alignments_b64(data: bytes) -> list[bytes]:
    """The base64 of `data` at each of the three byte alignments, edges trimmed."""
    found = []
    for pad in range(3):
        encoded = base64.b64encode(b"\x00" * pad + data)
        found += [encoded[4:-4], base64.urlsafe_b64encode(b"\x00" * pad + data)[4:-4]]
    return found


async def test_a_title_sorted_cursor_does_not_reveal_the_title(api: Api) -> None:
    title = "Secret plan for Q3 launch"
    cursor = await _title_cursor(api, title)
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for text in (title, title.lower()):
        for encoded in (text.encode(), text.encode("utf-16-le"), text.encode().hex().encode()):
            assert encoded[:8] not in raw
            assert encoded[:8].decode("latin-1") not in cursor
        for b64 in _alignments_b64(text.encode()):
            assert b64.decode() not in cursor
            assert b64.decode().replace("+", "-").replace("/", "_") not in cursor


async def test_the_longest_title_key_gives_a_cursor_the_api_accepts(api: Api) -> None:
    """500 four-byte characters: the sealed cursor still fits the `cursor` parameter."""
    cursor = await _title_cursor(api, "𝄞" * 500)
    assert len(cursor) <= CURSOR_MAX_LENGTH
    page = await api.request("GET", "/api/todos", params={"sort": "title", "limit": 1, "cursor": cursor})
    assert page.status_code == 200, page.text
    assert page.json()["items"][0]["title"] == "𝄞" * 500


async def test_rotation_keeps_old_cursors_while_the_previous_secret_is_set(
    app_client: AppClientFactory, auth: Any, db_engine: Any
) -> None:
    headers = auth("rotating-user")
    new_secret = "a-brand-new-cursor-secret-of-40-characters"
    async with app_client() as client:
        for title in "abc":
            assert (await client.post("/api/todos", json={"title": title}, headers=headers)).status_code == 201
        old = (await client.get("/api/todos", params={"limit": 1}, headers=headers)).json()["next_cursor"]
    async with app_client(cursor_secret=new_secret, cursor_secret_previous=CURSOR_SECRET) as client:
        response = await client.get("/api/todos", params={"limit": 1, "cursor": old}, headers=headers)
        assert response.status_code == 200, response.text
        new = response.json()["next_cursor"]
    async with app_client(cursor_secret=new_secret) as client:  # rotation finished: old cursors are 422
        response = await client.get("/api/todos", params={"limit": 1, "cursor": old}, headers=headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["msg"] == "Invalid cursor"
        assert (await client.get("/api/todos", params={"cursor": new}, headers=headers)).status_code == 200


def _old_public_key_cursor(sort: str, value: Any, binding: list[Any]) -> str:
    """How earlier versions minted cursors: base64 JSON plus an HMAC under a key in the source."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = orjson.dumps([sort, value, str(uuid.uuid4())])
    checksum = hmac.digest(b"todo-api cursor v1", payload + b"\x00" + orjson.dumps(binding), hashlib.sha256)[:12]
    return f"{b64(payload)}.{b64(checksum)}"


async def test_cursors_minted_with_the_old_public_key_are_422(api: Api) -> None:
    """The attack of issue 11: a NUL or a priority beyond smallint, minted for this very user and
    query with the key from the public source, reached PostgreSQL and gave a 500."""
    await api.create_todo(title="t")
    await api.create_list("l")
    user_id = (await api.request("GET", "/api/users/me")).json()["id"]
    filters = {"completed": None, "due_after": None, "due_before": None, "list_id": None, "priority": None, "q": None}
    for sort, value in (("title", "a\x00b"), ("priority", 2**40)):
        binding = [user_id, sorted({**filters, "sort": sort}.items()), []]
        cursor = _old_public_key_cursor(sort, value, binding)
        response = await api.request("GET", "/api/todos", params={"sort": sort, "cursor": cursor})
        assert response.status_code == 422, response.text
    cursor = _old_public_key_cursor("name", "a\x00b", [user_id, "name"])
    response = await api.request("GET", "/api/lists", params={"sort": "name", "cursor": cursor})
    assert response.status_code == 422, response.text
