"""The stack floor: the least a FastAPI + SQLModel app can do for `me`, `get` and the first pages
of `list`, `filter` and `position`.

The like-for-like floor (`bench.floor`) answers with no framework and no ORM; the specification
requires both. This app does the like-for-like floor's work per request the cheapest way the
required stack allows, so `stack floor ÷ like-for-like floor` is what FastAPI and SQLModel
sessions cost on their own, before any of todo-api's code:

- FastAPI: one route per resource, a dependency for the user (a `uuid.UUID` path parameter for
  `get`, typed query parameters for the pages), an orjson body in a plain `Response`: no response
  model, no middleware;
- authentication as the like-for-like floor: PyJWT with its token cache, identity → user id cache;
- SQLModel: a synchronous `Session` in one greenlet per request (SQLAlchemy's async bridge paid
  once, as `todo_api.storage.database.Database` does), `select` of the API's columns (a page: the
  like-for-like floor's statement, its cursor made the same way), on an
  `AUTOCOMMIT` engine: no BEGIN, no COMMIT, one round trip per statement, as the floors' GETs;
- its request id, response headers and JSON access line, as the like-for-like floor.

No rate limit, statement timeout, retry, fair admission or error handling: what todo-api adds on
top of this is what the ratio `todo-api ÷ stack floor` shows. Measured in process by
`python -m bench.cpu` (configured by the environment variables `bench.floor` reads).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn
from sqlmodel import Session, col, select

from bench.floor import SECURITY_HEADERS
from bench.floorcache import Identity, IdentityCache, TokenCache, log_access
from bench.floorwork import PRIORITIES, cursor_of
from todo_api.config import LogFormat
from todo_api.log import configure_logging
from todo_api.models import Todo, User
from todo_api.models.base import sql_type
from todo_api.models.todo import due_at_asc_key

USER_COLUMNS = [col(getattr(User, name)) for name in ("id", "issuer", "subject", "email", "name", "created_at")]
TODO_COLUMNS = [
    col(getattr(Todo, name))
    for name in (
        "id",
        "title",
        "description",
        "completed",
        "completed_at",
        "due_at",
        "priority",
        "tags",
        "list_id",
        "created_at",
        "updated_at",
        "parent_id",
        "position",
        "recurrence",
        "time_zone",
        "reminders",
    )
]
# Built once with bind parameters, as todo-api's repositories build theirs.
FIND_USER = select(*USER_COLUMNS).where(
    col(User.issuer) == bindparam("issuer"), col(User.subject) == bindparam("subject")
)
FIND_TODO = select(*TODO_COLUMNS).where(col(Todo.id) == bindparam("todo_id"), col(Todo.user_id) == bindparam("user_id"))


def _page(sort_value: Any, where: list[ColumnElement[bool]], order: list[Any]) -> Any:
    """The first page of one order: the like-for-like floor's statement (`bench.floorwork`)."""
    columns: list[Any] = [*TODO_COLUMNS, sort_value.label("sort_value")]
    return (
        select(*columns)
        .where(col(Todo.user_id) == bindparam("user_id"), *where)
        .order_by(*order)
        .limit(bindparam("limit"))
    )


NEWEST_PAGE = _page(col(Todo.created_at), [], [col(Todo.created_at).desc(), col(Todo.id).desc()])
FILTERED_PAGE = _page(
    col(Todo.due_at),
    [
        col(Todo.completed) == bindparam("completed"),
        col(Todo.tag_keys).contains(bindparam("tag_keys", type_=sql_type(Todo.tag_keys))),
    ],
    [due_at_asc_key, col(Todo.id)],
)
POSITION_PAGE = _page(
    col(Todo.position),
    [col(Todo.list_id).is_(None), col(Todo.parent_id).is_(None)],
    [col(Todo.list_id), col(Todo.parent_id), col(Todo.position), col(Todo.id)],
)


class Stack:
    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        self.key: Ed25519PublicKey | None = None
        self.tokens = TokenCache(30)
        self.users = IdentityCache()

    def start(self) -> None:
        key = load_pem_public_key(os.environ["JWT_PUBLIC_KEY"].encode())
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError("JWT_PUBLIC_KEY must be an Ed25519 public key")
        self.key = key
        self.tokens = TokenCache(int(os.environ.get("JWT_LEEWAY_SECONDS") or 30))
        self.users = IdentityCache()
        configure_logging(os.environ.get("LOG_LEVEL") or "info", LogFormat.JSON)  # as bench.floor
        url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        self.engine = create_async_engine(
            url,
            pool_size=15,  # todo-api's DB_POOL_SIZE and DB_MAX_OVERFLOW defaults
            max_overflow=0,
            isolation_level="AUTOCOMMIT",
            connect_args={"prepare_threshold": None},
        )

    def identity(self, request: Request) -> Identity:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or self.key is None:
            raise HTTPException(401, "Not authenticated")
        if (cached := self.tokens.get(token)) is not None:
            return cached
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["EdDSA"],
                issuer=os.environ["JWT_ISSUER"],
                audience=os.environ["JWT_AUDIENCE"],
                leeway=self.tokens.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            raise HTTPException(401, "Not authenticated") from None
        identity = (os.environ["JWT_ISSUER"], str(claims["sub"]))
        self.tokens.put(token, identity, float(claims["exp"]))
        return identity

    async def read[T](self, work: Any, *args: Any) -> T:
        assert self.engine is not None
        result: T = await greenlet_spawn(self._in_session, work, *args)
        return result

    def _in_session(self, work: Any, *args: Any) -> Any:
        assert self.engine is not None
        with Session(self.engine.sync_engine, autoflush=False, expire_on_commit=False) as session:
            return work(session, *args)


stack = Stack()


def _find_user(session: Session, identity: Identity) -> dict[str, Any] | None:
    row = session.exec(FIND_USER, params={"issuer": identity[0], "subject": identity[1]}).first()
    return None if row is None else dict(row._mapping)


def _find_todo(session: Session, todo_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    row = session.exec(FIND_TODO, params={"todo_id": todo_id, "user_id": user_id}).first()
    if row is None:
        return None
    todo = dict(row._mapping)
    todo["priority"] = PRIORITIES[todo["priority"]]
    return todo


def _find_page(session: Session, statement: Any, params: dict[str, Any], limit: int) -> dict[str, Any]:
    rows = [dict(row._mapping) for row in session.exec(statement, params=params).all()]
    next_cursor = cursor_of(rows[limit - 1]) if len(rows) > limit else None
    items = rows[:limit]
    for item in items:
        del item["sort_value"]
        item["priority"] = PRIORITIES[item["priority"]]
    return {"items": items, "next_cursor": next_cursor}


def _answer(status: int, payload: Any, route: str, started: float, user_id: uuid.UUID | None) -> Response:
    request_id = os.urandom(16).hex()
    headers = {"x-request-id": request_id, **{name.decode(): value.decode() for name, value in SECURITY_HEADERS}}
    response = Response(orjson.dumps(payload, option=orjson.OPT_UTC_Z), status, headers, "application/json")
    log_access("GET", route, status, started, request_id, user_id)
    return response


async def current_user_id(request: Request) -> uuid.UUID:
    identity = stack.identity(request)
    user_id = stack.users.get(identity)
    if user_id is None:
        user: dict[str, Any] | None = await stack.read(_find_user, identity)
        if user is None:
            raise HTTPException(401, "Not authenticated")
        user_id = user["id"]
        stack.users.put(identity, user_id)
    return user_id


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    stack.start()
    yield
    if stack.engine is not None:
        await stack.engine.dispose()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/api/users/me")
async def read_me(request: Request) -> Response:
    started = time.perf_counter()
    user: dict[str, Any] | None = await stack.read(_find_user, stack.identity(request))
    if user is None:
        raise HTTPException(401, "Not authenticated")
    return _answer(200, user, "/api/users/me", started, user["id"])


@app.get("/api/todos/{todo_id}")
async def read_todo(todo_id: uuid.UUID, user_id: Annotated[uuid.UUID, Depends(current_user_id)]) -> Response:
    started = time.perf_counter()
    todo: dict[str, Any] | None = await stack.read(_find_todo, todo_id, user_id)
    if todo is None:
        return _answer(404, {"detail": "Not found"}, "/api/todos/{todo_id}", started, user_id)
    return _answer(200, todo, "/api/todos/{todo_id}", started, user_id)


@app.get("/api/todos")
async def list_todos(
    user_id: Annotated[uuid.UUID, Depends(current_user_id)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    completed: bool | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
    sort: str = "-created_at",
) -> Response:
    started = time.perf_counter()
    params: dict[str, Any] = {"user_id": user_id, "limit": limit + 1}
    if sort == "position":
        statement = POSITION_PAGE
    elif completed is None and not tag:
        statement = NEWEST_PAGE
    else:
        statement = FILTERED_PAGE
        params |= {"completed": bool(completed), "tag_keys": sorted({name.casefold() for name in tag or ()})}
    page: dict[str, Any] = await stack.read(_find_page, statement, params, limit)
    return _answer(200, page, "/api/todos", started, user_id)
