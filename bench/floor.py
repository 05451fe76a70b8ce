"""The floor: the least a server can do for each scenario's requests with the same work per request.

A raw ASGI app (no framework, no ORM, no validation library) doing what todo-api does on each
request: verify the Ed25519 JWT with PyJWT (algorithm allowlist, issuer, audience, exp, sub), look
the user up by (issuer, subject), run the same SQL shape in one transaction per request on a
psycopg 3 async pool (`prepare_threshold=None`, like the app), and answer with orjson using the
app's JSON field names. It serves `me`, `get`, `list` (the first page, and the `filter` scenario's
`completed` / `tag` / `sort=due_at` page), `create` and `patch`, so `mixed` too. It is the
measuring stick, not a second implementation: input checks are minimal, other query parameters
(cursors among them) are ignored and unknown routes are plain 404s.

Served by `uvicorn bench.floor:app --workers 2 --loop uvloop --http httptools --no-access-log`;
configured by DATABASE_URL, JWT_PUBLIC_KEY, JWT_ISSUER, JWT_AUDIENCE.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

type Scope = dict[str, Any]
type Message = dict[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]
type Response = tuple[int, bytes, list[tuple[bytes, bytes]]]

logger = logging.getLogger("bench.floor")

# Spelled out (not interpolated) so every statement is one literal; the column list is the API's.
SELECT_USER = "SELECT id, issuer, subject, email, name, created_at FROM users WHERE issuer = %s AND subject = %s"
SELECT_TODO = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at"
    " FROM todos WHERE id = %s AND user_id = %s"
)
SELECT_PAGE = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " created_at AS sort_value FROM todos WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
)
SELECT_FILTERED = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " due_at AS sort_value FROM todos WHERE user_id = %s AND completed = %s AND tag_keys @> %s"
    " ORDER BY coalesce(due_at, 'infinity'::timestamptz), id LIMIT %s"
)
UPDATE_COMPLETED = (
    "UPDATE todos SET completed = %s, completed_at = CASE WHEN %s THEN coalesce(completed_at, now()) END,"
    " updated_at = now(), version = version + 1 WHERE id = %s AND user_id = %s RETURNING"
    " id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at, version"
)
INSERT_TODO = (
    "INSERT INTO todos (id, user_id, title, description, priority, tags, tag_keys)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING"
    " id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at"
)
PRIORITIES = ("none", "low", "medium", "high")
POOL_MIN, POOL_MAX = 10, 15  # up to the app's default DB_POOL_SIZE (15); psycopg_pool keeps them
JSON = (b"content-type", b"application/json")
API_TODOS = "/api/todos"


def _json(status: int, payload: Any, *headers: tuple[bytes, bytes]) -> Response:
    return status, orjson.dumps(payload, option=orjson.OPT_UTC_Z), [JSON, *headers]


def _error(status: int, detail: str) -> Response:
    return _json(status, {"detail": detail})


def _todo(row: DictRow) -> DictRow:
    row["priority"] = PRIORITIES[row["priority"]]
    return row


def _cursor(row: DictRow) -> str:
    payload = orjson.dumps([row["sort_value"], row["id"]], option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


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


class Floor:
    def __init__(self) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] | None = None
        self.key: Ed25519PublicKey | None = None
        self.issuer = ""
        self.audience = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                status, body, headers = await self._handle(scope, receive)
            except Exception:
                logger.exception("floor request failed")
                status, body, headers = _error(500, "Internal server error")
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        key = load_pem_public_key(os.environ["JWT_PUBLIC_KEY"].encode())
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError("JWT_PUBLIC_KEY must be an Ed25519 public key")
        self.key = key
        self.issuer = os.environ["JWT_ISSUER"]
        self.audience = os.environ["JWT_AUDIENCE"]
        self.pool = AsyncConnectionPool(
            os.environ["DATABASE_URL"],
            connection_class=AsyncConnection[DictRow],
            kwargs={"prepare_threshold": None, "row_factory": dict_row},
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            open=False,
        )
        await self.pool.open(wait=True)

    def _identity(self, scope: Scope) -> tuple[str, str] | None:
        token = _bearer(scope)
        if not token or self.key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["EdDSA"],
                issuer=self.issuer,
                audience=self.audience,
                leeway=30,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        return (self.issuer, subject) if isinstance(subject, str) and subject else None

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        identity = self._identity(scope)
        if identity is None:
            return _error(401, "Not authenticated")
        method: str = scope["method"]
        path: str = scope["path"]
        body = await _body(receive) if method in {"POST", "PATCH"} else b""
        assert self.pool is not None
        async with self.pool.connection() as connection:
            user = await (await connection.execute(SELECT_USER, identity)).fetchone()
            if user is None:
                return _error(401, "Not authenticated")
            if path == "/api/users/me" and method == "GET":
                return _json(200, user)
            if path == API_TODOS and method == "GET":
                return await _list(connection, user["id"], parse_qs(scope["query_string"].decode("latin-1")))
            if path == API_TODOS and method == "POST":
                return await _create(connection, user["id"], body)
            if path.startswith(API_TODOS + "/") and method == "GET":
                return await _get(connection, user["id"], path.removeprefix(API_TODOS + "/"))
            if path.startswith(API_TODOS + "/") and method == "PATCH":
                return await _patch(connection, user["id"], path.removeprefix(API_TODOS + "/"), body)
        return _error(404, "Not found")


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _list(connection: AsyncConnection[DictRow], user_id: uuid.UUID, query: dict[str, list[str]]) -> Response:
    limit, filtered = _limit(query), _filtered(query)
    if filtered is None:
        cursor = await connection.execute(SELECT_PAGE, (user_id, limit + 1))
    else:
        cursor = await connection.execute(SELECT_FILTERED, (user_id, *filtered, limit + 1))
    rows = await cursor.fetchall()
    next_cursor = _cursor(rows[limit - 1]) if len(rows) > limit else None
    items = [_todo(row) for row in rows[:limit]]
    for item in items:
        del item["sort_value"]
    return _json(200, {"items": items, "next_cursor": next_cursor})


async def _get(connection: AsyncConnection[DictRow], user_id: uuid.UUID, raw_id: str) -> Response:
    try:
        todo_id = uuid.UUID(raw_id)
    except ValueError:
        return _error(404, "Not found")
    row = await (await connection.execute(SELECT_TODO, (todo_id, user_id))).fetchone()
    return _error(404, "Not found") if row is None else _json(200, _todo(row))


async def _patch(connection: AsyncConnection[DictRow], user_id: uuid.UUID, raw_id: str, body: bytes) -> Response:
    completed = _completed(body)
    if completed is None:
        return _error(422, "Invalid body")
    try:
        todo_id = uuid.UUID(raw_id)
    except ValueError:
        return _error(404, "Not found")
    row = await (await connection.execute(UPDATE_COMPLETED, (completed, completed, todo_id, user_id))).fetchone()
    if row is None:
        return _error(404, "Not found")
    etag = f'"{row.pop("version")}"'.encode()
    return _json(200, _todo(row), (b"etag", etag))


async def _create(connection: AsyncConnection[DictRow], user_id: uuid.UUID, body: bytes) -> Response:
    new = _new_todo(body)
    if new is None:
        return _error(422, "Invalid body")
    tags: list[str] = new["tags"]
    values = (uuid.uuid4(), user_id, new["title"], new["description"], new["priority"], tags)
    row = await (await connection.execute(INSERT_TODO, (*values, [t.casefold() for t in tags]))).fetchone()
    assert row is not None
    return _json(201, _todo(row), (b"location", f"{API_TODOS}/{row['id']}".encode()))


app = Floor()
