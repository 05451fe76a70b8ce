"""The floor: the least a server can do for each scenario's requests with the same work per request.

A raw ASGI app (no framework, no ORM, no validation library) doing what todo-api does on each
request: verify the Ed25519 JWT with PyJWT (algorithm allowlist, issuer, audience, exp, sub), look
the user up by (issuer, subject), run the same SQL shape (one transaction per write; reads: see
below) on a psycopg 3 async pool (`prepare_threshold=None`, like the app), and answer with orjson
using the app's JSON field names. It serves `me`, `get`, `list` (the first page, the `filter` scenario's
`completed` / `tag` / `sort=due_at` page and the `position` scenario's `sort=position` page),
`create`, `patch` and `move`, so `mixed` too, and `sync` (`bench.floorsync`). It is the
measuring stick, not a second implementation: input checks are minimal, other query parameters
(cursors among them) are ignored and unknown routes are plain 404s.

Two floors in one process, chosen per request by the benchmark's `X-Bench-Floor` header:

- **plain** (no header): verifies the token and reads the user on every request, logs nothing.
- **like-for-like** (`X-Bench-Floor: like`): todo-api's per-worker caches (verified tokens,
  identity → user id; `bench.floorcache`), its request id and response headers, its one-line
  JSON access log at INFO, and its round trips: a GET's statements run without BEGIN and COMMIT
  (autocommit, as `Database.read`), a write sends BEGIN with its first statement in one pipeline
  (`floorwork.opening`). todo-api / this floor is the cost of the framework and the code alone.

One process keeps the database connections of the two floors to one pool (PostgreSQL's default
`max_connections` is 100). Served by `uvicorn bench.floor:app --workers 2 --loop uvloop --http
httptools --no-access-log`; configured by DATABASE_URL, JWT_PUBLIC_KEY, JWT_ISSUER, JWT_AUDIENCE,
JWT_LEEWAY_SECONDS and LOG_LEVEL, the way todo-api reads them.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from bench import floorsync
from bench.floorcache import Identity, IdentityCache, TokenCache, log_access
from bench.floorsync import sync
from bench.floorwork import API_SYNC, API_TODOS, SELECT_USER, Response, error, json_response, opening, route_request
from todo_api.config import LogFormat
from todo_api.log import configure_logging

type Scope = dict[str, Any]
type Message = dict[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("bench.floor")

POOL_MIN, POOL_MAX = 10, 15  # up to the app's default DB_POOL_SIZE (15); psycopg_pool keeps them
MODE_HEADER = b"x-bench-floor"
# What todo-api's RequestContextMiddleware adds to every response.
SECURITY_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
ROUTES = {"/api/users/me": "/api/users/me", API_TODOS: API_TODOS, API_SYNC: API_SYNC}


def _request_headers(scope: Scope) -> tuple[str | None, bool]:
    """(bearer token, like-for-like mode) from the request headers."""
    token, like = None, False
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, raw = value.decode("latin-1").partition(" ")
            token = raw.strip() if scheme.lower() == "bearer" else None
        elif name == MODE_HEADER:
            like = value == b"like"
    return token, like


def _route(path: str) -> str:
    if path.startswith(API_TODOS + "/") and path.endswith("/move"):
        return f"{API_TODOS}/{{todo_id}}/move"
    return ROUTES.get(path) or (f"{API_TODOS}/{{todo_id}}" if path.startswith(API_TODOS + "/") else "(unmatched)")


class Floor:
    def __init__(self) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] | None = None
        self.key: Ed25519PublicKey | None = None
        self.issuer = ""
        self.audience = ""
        self.leeway = 30
        self.tokens = TokenCache(self.leeway)
        self.users = IdentityCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            started = time.perf_counter()
            token, like = _request_headers(scope)
            user_id: uuid.UUID | None = None
            try:
                (status, body, headers), user_id = await self._handle(scope, receive, token, like)
            except Exception:
                logger.exception("floor request failed")
                status, body, headers = error(500, "Internal server error")
            request_id = os.urandom(16).hex() if like else ""
            if like:
                headers = [*headers, (b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            if like:
                log_access(scope["method"], _route(scope["path"]), status, started, request_id, user_id)

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
        self.leeway = int(os.environ.get("JWT_LEEWAY_SECONDS") or 30)
        self.tokens = TokenCache(self.leeway)
        floorsync.start()
        # todo-api's defaults: INFO, one JSON object per line on stderr.
        configure_logging(os.environ.get("LOG_LEVEL") or "info", LogFormat.JSON)
        self.pool = AsyncConnectionPool(
            os.environ["DATABASE_URL"],
            connection_class=AsyncConnection[DictRow],
            kwargs={"prepare_threshold": None, "row_factory": dict_row},
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            open=False,
        )
        await self.pool.open(wait=True)

    def _identity(self, token: str | None, like: bool) -> Identity | None:
        if not token or self.key is None:
            return None
        if like and (cached := self.tokens.get(token)) is not None:
            return cached
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["EdDSA"],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return None
        if like:
            self.tokens.put(token, (self.issuer, subject), float(claims["exp"]))
        return self.issuer, subject

    async def _handle(
        self, scope: Scope, receive: Receive, token: str | None, like: bool
    ) -> tuple[Response, uuid.UUID | None]:
        identity = self._identity(token, like)
        if identity is None:
            return error(401, "Not authenticated"), None
        method: str = scope["method"]
        path: str = scope["path"]
        body = await _body(receive) if method in {"POST", "PATCH"} else b""
        me = path == "/api/users/me" and method == "GET"
        assert self.pool is not None
        async with self.pool.connection() as connection:
            # Like todo-api, the like-for-like floor sends no BEGIN and no COMMIT for a GET (its
            # connections are in autocommit mode: one round trip per statement, `Database.read`)
            # and pipelines a write's BEGIN with its first statement (`floorwork.opening`). The
            # plain floor leaves it to psycopg: BEGIN, the statements, COMMIT.
            if connection.autocommit != like:
                await connection.set_autocommit(like)
            # todo-api skips the lookup when the identity is cached, except for `me` (it returns the row)
            user_id = self.users.get(identity) if like and not me else None
            if user_id is None:
                found = await opening(connection, SELECT_USER, identity, pipelined=like and method != "GET")
                user = await found.fetchone()
                if user is None:
                    return error(401, "Not authenticated"), None
                user_id = user["id"]
                if like:
                    self.users.put(identity, user_id)
                if me:
                    return json_response(200, user), user_id
            if path == API_SYNC and method == "GET":
                return await sync(connection, user_id, scope["query_string"]), user_id
            response = await route_request(
                connection, user_id, scope["query_string"], method, path, body, pipelined=like
            )
            return response, user_id


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


app = Floor()
