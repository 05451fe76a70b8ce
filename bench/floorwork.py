"""The floor's work per route: one literal statement each, minimal input checks, orjson answers
with the app's JSON field names. `bench.floor` authenticates and picks the user; this runs the
request's statement on the request's connection."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import parse_qs

import fractional_indexing
import orjson
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow

type Response = tuple[int, bytes, list[tuple[bytes, bytes]]]

# Spelled out (not interpolated) so every statement is one literal; the column list is the API's.
SELECT_USER = "SELECT id, issuer, subject, email, name, created_at FROM users WHERE issuer = %s AND subject = %s"
SELECT_TODO = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders FROM todos WHERE id = %s AND user_id = %s"
)
SELECT_PAGE = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders, created_at AS sort_value"
    " FROM todos WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
)
SELECT_FILTERED = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders, due_at AS sort_value"
    " FROM todos WHERE user_id = %s AND completed = %s AND tag_keys @> %s"
    " ORDER BY coalesce(due_at, 'infinity'::timestamptz), id LIMIT %s"
)
SELECT_POSITION_PAGE = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders, position AS sort_value"
    " FROM todos WHERE user_id = %s AND list_id IS NULL AND parent_id IS NULL"
    " ORDER BY list_id, parent_id, position, id LIMIT %s"
)
UPDATE_COMPLETED = (
    "UPDATE todos SET completed = %s, completed_at = CASE WHEN %s THEN coalesce(completed_at, now()) END,"
    " updated_at = now(), version = version + 1 WHERE id = %s AND user_id = %s RETURNING"
    " id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders, version,"
    " (SELECT p.completed FROM todos p WHERE p.id = todos.id AND p.user_id = todos.user_id) AS was_completed,"
    " (SELECT p.completed_at FROM todos p WHERE p.id = todos.id AND p.user_id = todos.user_id) AS was_completed_at"
)
# The completion history, as todo-api keeps it: a row per completion, forgotten when reopened.
RECORD_COMPLETION = "INSERT INTO todo_completions (id, user_id, todo_id, due_at) VALUES (gen_random_uuid(), %s, %s, %s)"
UNDO_COMPLETION = "DELETE FROM todo_completions WHERE user_id = %s AND todo_id = %s AND completed_at = %s"
LOCK_USER = "SELECT id FROM users WHERE id = %s FOR UPDATE"
LAST_LOOSE = (
    "SELECT position FROM todos WHERE user_id = %s AND list_id IS NULL AND parent_id IS NULL"
    " ORDER BY list_id DESC, parent_id DESC, position DESC LIMIT 1"
)
INSERT_TODO = (
    "INSERT INTO todos (id, user_id, title, description, priority, tags, tag_keys, position)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING"
    " id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders"
)
# A move (todos in no list, top level): the todo's row lock, its new neighbours, one UPDATE. The
# group's columns are in each ORDER BY so that the unique index serves it (as in todo-api).
LOCK_TODO = "SELECT list_id, parent_id, version FROM todos WHERE id = %s AND user_id = %s FOR UPDATE"
POSITION_OF = "SELECT position FROM todos WHERE user_id = %s AND list_id IS NULL AND parent_id IS NULL AND id = %s"
NEXT_POSITION = (
    "SELECT position FROM todos WHERE user_id = %s AND list_id IS NULL AND parent_id IS NULL AND id <> %s"
    " AND position > %s ORDER BY list_id, parent_id, position LIMIT 1"
)
FIRST_POSITION = (
    "SELECT position FROM todos WHERE user_id = %s AND list_id IS NULL AND parent_id IS NULL AND id <> %s"
    " ORDER BY list_id, parent_id, position LIMIT 1"
)
UPDATE_POSITION = (
    "UPDATE todos SET position = %s, list_id = NULL, parent_id = NULL, depth = 0, updated_at = now(),"
    " version = version + 1 WHERE id = %s AND user_id = %s RETURNING"
    " id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders, version"
)
PRIORITIES = ("none", "low", "medium", "high")
JSON = (b"content-type", b"application/json")
API_TODOS = "/api/todos"
API_SYNC = "/api/sync"
MOVE = "/move"


def json_response(status: int, payload: Any, *headers: tuple[bytes, bytes]) -> Response:
    return status, orjson.dumps(payload, option=orjson.OPT_UTC_Z), [JSON, *headers]


def error(status: int, detail: str) -> Response:
    return json_response(status, {"detail": detail})


def _todo(row: DictRow) -> DictRow:
    row["priority"] = PRIORITIES[row["priority"]]
    return row


def cursor_of(row: dict[str, Any]) -> str:
    payload = orjson.dumps([row["sort_value"], row["id"]], option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def _limit(query: dict[str, list[str]]) -> int:
    try:
        return min(max(int(query.get("limit", ["50"])[0]), 1), 200)
    except ValueError:
        return 50


def _filtered(query: dict[str, list[str]]) -> tuple[bool, list[str]] | None:
    """(completed, tag keys) for the `filter` scenario's query; None for a plain first page."""
    if "completed" not in query and "tag" not in query:
        return None
    completed = query.get("completed", ["false"])[0] == "true"
    return completed, sorted({tag.casefold() for tag in query.get("tag", [])})


def _completed(body: bytes) -> bool | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = data.get("completed") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def _new_todo(body: bytes) -> dict[str, Any] | None:
    """The create body, minimally checked (the floor trusts the benchmark's requests)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("title"), str) or not data["title"].strip():
        return None
    tags = data.get("tags", [])
    priority = data.get("priority", "none")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or priority not in PRIORITIES:
        return None
    return {
        "title": data["title"].strip(),
        "description": str(data.get("description", "")),
        "priority": PRIORITIES.index(priority),
        "tags": tags,
    }


IDLE = TransactionStatus.IDLE


async def opening(
    connection: AsyncConnection[DictRow], query: Any, params: Any, pipelined: bool
) -> AsyncCursor[DictRow]:
    """A write's first statement. `pipelined` (the like-for-like floor, whose connections are in
    autocommit mode): `BEGIN` and the statement in one psycopg pipeline, one round trip, as
    todo-api's first flight (the pool's COMMIT ends the transaction). Otherwise psycopg's own
    `BEGIN`, a round trip of its own."""
    if not pipelined:
        return await connection.execute(query, params)
    async with connection.pipeline():  # leaving it sends a Sync and reads the results
        if connection.pgconn.transaction_status == IDLE:
            await connection.execute(b"BEGIN")
        return await connection.execute(query, params)


async def route_request(
    connection: AsyncConnection[DictRow],
    user_id: uuid.UUID,
    query_string: bytes,
    method: str,
    path: str,
    body: bytes,
    pipelined: bool = False,
) -> Response:
    if path == API_TODOS and method == "GET":
        return await _list(connection, user_id, parse_qs(query_string.decode("latin-1")))
    if path == API_TODOS and method == "POST":
        return await _create(connection, user_id, body, pipelined)
    if path.startswith(API_TODOS + "/") and method == "GET":
        return await _get(connection, user_id, path.removeprefix(API_TODOS + "/"))
    if path.startswith(API_TODOS + "/") and path.endswith(MOVE) and method == "POST":
        return await _move(connection, user_id, path.removeprefix(API_TODOS + "/").removesuffix(MOVE), body, pipelined)
    if path.startswith(API_TODOS + "/") and method == "PATCH":
        return await _patch(connection, user_id, path.removeprefix(API_TODOS + "/"), body, pipelined)
    if path == API_SYNC and method == "GET":
        from bench.floorsync import sync

        return await sync(connection, user_id, query_string)
    return error(404, "Not found")


async def _list(connection: AsyncConnection[DictRow], user_id: uuid.UUID, query: dict[str, list[str]]) -> Response:
    limit, filtered = _limit(query), _filtered(query)
    if query.get("sort") == ["position"]:
        cursor = await connection.execute(SELECT_POSITION_PAGE, (user_id, limit + 1))
    elif filtered is None:
        cursor = await connection.execute(SELECT_PAGE, (user_id, limit + 1))
    else:
        cursor = await connection.execute(SELECT_FILTERED, (user_id, *filtered, limit + 1))
    rows = await cursor.fetchall()
    next_cursor = cursor_of(rows[limit - 1]) if len(rows) > limit else None
    items = [_todo(row) for row in rows[:limit]]
    for item in items:
        del item["sort_value"]
    return json_response(200, {"items": items, "next_cursor": next_cursor})


async def _get(connection: AsyncConnection[DictRow], user_id: uuid.UUID, raw_id: str) -> Response:
    try:
        todo_id = uuid.UUID(raw_id)
    except ValueError:
        return error(404, "Not found")
    row = await (await connection.execute(SELECT_TODO, (todo_id, user_id))).fetchone()
    return error(404, "Not found") if row is None else json_response(200, _todo(row))


async def _patch(
    connection: AsyncConnection[DictRow], user_id: uuid.UUID, raw_id: str, body: bytes, pipelined: bool = False
) -> Response:
    completed = _completed(body)
    if completed is None:
        return error(422, "Invalid body")
    try:
        todo_id = uuid.UUID(raw_id)
    except ValueError:
        return error(404, "Not found")
    updated = await opening(connection, UPDATE_COMPLETED, (completed, completed, todo_id, user_id), pipelined)
    row = await updated.fetchone()
    if row is None:
        return error(404, "Not found")
    was_completed, was_completed_at = row.pop("was_completed"), row.pop("was_completed_at")
    if completed and not was_completed:
        await connection.execute(RECORD_COMPLETION, (user_id, todo_id, row["due_at"]))
    elif was_completed and not completed:
        await connection.execute(UNDO_COMPLETION, (user_id, todo_id, was_completed_at))
    etag = f'"{row.pop("version")}"'.encode()
    return json_response(200, _todo(row), (b"etag", etag))


async def _create(
    connection: AsyncConnection[DictRow], user_id: uuid.UUID, body: bytes, pipelined: bool = False
) -> Response:
    new = _new_todo(body)
    if new is None:
        return error(422, "Invalid body")
    tags: list[str] = new["tags"]
    values = (uuid.uuid4(), user_id, new["title"], new["description"], new["priority"], tags)
    # New todos go last: read the last key under the user's lock (todo-api does the same).
    await opening(connection, LOCK_USER, (user_id,), pipelined)
    last = await (await connection.execute(LAST_LOOSE, (user_id,))).fetchone()
    position = fractional_indexing.generate_key_between(None if last is None else last["position"], None)
    row = await (await connection.execute(INSERT_TODO, (*values, [t.casefold() for t in tags], position))).fetchone()
    assert row is not None
    return json_response(201, _todo(row), (b"location", f"{API_TODOS}/{row['id']}".encode()))


def _after_id(body: bytes) -> tuple[bool, uuid.UUID | None]:
    """(valid, after_id) of a move body: `{"after_id": <uuid> | null}` (left out: null)."""
    try:
        data = orjson.loads(body)
        raw = data.get("after_id") if isinstance(data, dict) else ""
        return True, None if raw is None else uuid.UUID(raw)
    except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
        return False, None


async def _move(
    connection: AsyncConnection[DictRow], user_id: uuid.UUID, raw_id: str, body: bytes, pipelined: bool = False
) -> Response:
    """The `move` scenario's work: todos in no list, at the top level (no rebalance: rare in todo-api,
    never needed by random moves)."""
    valid, after = _after_id(body)
    if not valid:
        return error(422, "Invalid body")
    try:
        todo_id = uuid.UUID(raw_id)
    except ValueError:
        return error(404, "Not found")
    await opening(connection, LOCK_USER, (user_id,), pipelined)
    if await (await connection.execute(LOCK_TODO, (todo_id, user_id))).fetchone() is None:
        return error(404, "Not found")
    before: str | None = None
    if after is not None:
        found = await (await connection.execute(POSITION_OF, (user_id, after))).fetchone()
        if found is None or after == todo_id:
            return error(422, "No such todo among the target siblings")
        before = found["position"]
        following = await (await connection.execute(NEXT_POSITION, (user_id, todo_id, before))).fetchone()
    else:
        following = await (await connection.execute(FIRST_POSITION, (user_id, todo_id))).fetchone()
    key = fractional_indexing.generate_key_between(before, None if following is None else following["position"])
    row = await (await connection.execute(UPDATE_POSITION, (key, todo_id, user_id))).fetchone()
    assert row is not None
    etag = f'"{row.pop("version")}"'.encode()
    return json_response(200, _todo(row), (b"etag", etag))
