"""The hostile-input suite's app, users and request runner.

Every case goes to the in-process app (as the `client` fixture does) with real tokens, and every
response is held to the same rules: never a 5xx, every 4xx a JSON body with `detail`, the status the
README promises, an `X-Request-ID` that is plain ASCII. `-s` prints the cases per operation.
"""

from __future__ import annotations

import itertools
import re
import sys
import urllib.parse
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.hostile.operations import Operation, operations, valid_instance
from tests.keys import Signer
from todo_api.app import create_app
from todo_api.config import load_settings

DOCUMENT = create_app(load_settings(_env_file=None, require_database=False, require_key_source=False)).openapi()
OPERATIONS = operations(DOCUMENT)
LEAVER_OPERATION = "DELETE /api/users/me"
TRASH, BATCH = "/api/trash", "/api/batch"  # runs as its own user, so the others keep their data
RAW_QUERY_HEADER = "x-test-raw-query"
ECHOED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def label(operation: Operation) -> str:
    return operation.label


class RawQuery:
    """Test shim: a request carrying `x-test-raw-query: <hex>` reaches the app with those bytes as its
    query string, unescaped (httpx only sends ASCII URLs; some servers pass raw bytes on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(name, value) for name, value in scope["headers"] if name != RAW_QUERY_HEADER.encode()]
            raw = [value for name, value in scope["headers"] if name == RAW_QUERY_HEADER.encode()]
            if raw:
                scope = {**scope, "headers": headers, "query_string": bytes.fromhex(raw[0].decode())}
        await self.app(scope, receive, send)


@dataclass
class Request:
    """One request: `query` as (name, text) pairs, encoded when sent (or raw, see `RawQuery`)."""

    method: str
    path: str
    body: Any = None
    content: bytes | None = None
    query: list[tuple[str, str]] = field(default_factory=list)
    raw_query: bool = False
    headers: dict[str, bytes] = field(default_factory=dict)

    def url(self) -> str:
        if not self.query or self.raw_query:
            return self.path
        return f"{self.path}?{self._query_bytes(quoted=True).decode('ascii')}"

    def _query_bytes(self, *, quoted: bool) -> bytes:
        def encode(text: str) -> bytes:
            data = text.encode("utf-8", "surrogatepass")
            return urllib.parse.quote(data, safe="").encode("ascii") if quoted else data

        return b"&".join(encode(name) + b"=" + encode(value) for name, value in self.query)

    def http_headers(self) -> dict[bytes, bytes]:
        headers = {name.encode(): value for name, value in self.headers.items()}
        if self.raw_query and self.query:
            headers[RAW_QUERY_HEADER.encode()] = self._query_bytes(quoted=False).hex().encode()
        if self.content is None and self.body is not None:
            headers.setdefault(b"content-type", b"application/json")
        return headers

    def payload(self) -> bytes | None:
        return (
            self.content if self.content is not None else (orjson.dumps(self.body) if self.body is not None else None)
        )


@dataclass
class Attack:
    client: httpx.AsyncClient
    tokens: dict[str, str]  # "user", "other", "leaver"
    cases: Counter[str]
    shared: dict[str, str] = field(default_factory=dict)  # collection → an existing resource id
    serial: Iterator[int] = field(default_factory=itertools.count)

    def token(self, operation: Operation) -> str:
        return self.tokens["leaver" if operation.label == LEAVER_OPERATION else "user"]

    def unique(self) -> str:
        return f"hostile {next(self.serial)}"

    async def create(self, collection: str, token: str | None = None) -> str:
        if collection == TRASH:  # what the trash holds: a deleted todo
            todo_id = await self.create("/api/todos", token)
            headers = {"Authorization": f"Bearer {token or self.tokens['user']}"}
            assert (await self.client.delete(f"/api/todos/{todo_id}", headers=headers)).status_code == 204
            return todo_id
        create = next(op for op in OPERATIONS if op.method == "POST" and op.path == collection)
        assert create.body is not None
        headers = {"Authorization": f"Bearer {token or self.tokens['user']}"}
        response = await self.client.post(collection, json=valid_instance(create.body, self.unique()), headers=headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def target(self, operation: Operation, *, fresh: bool) -> str:
        """The path of an existing resource: a new one for each DELETE (`fresh`), else a shared one."""
        path = operation.path
        if "{" not in path:
            return path
        collection = operation.collection
        fresh = fresh or collection == TRASH  # a restore takes the item out of the trash
        if fresh or collection not in self.shared:
            created = await self.create(collection)
            if fresh:
                return re.sub(r"\{[^}]+\}", created, path)
            self.shared[collection] = created
        return re.sub(r"\{[^}]+\}", self.shared[collection], path)

    async def valid(self, operation: Operation, *, fresh: bool | None = None) -> Request:
        """A request the operation accepts (the success status of `expected_success`)."""
        fresh = operation.method == "DELETE" if fresh is None else fresh
        path = await self.target(operation, fresh=fresh)
        body = None if operation.body is None else valid_instance(operation.body, self.unique())
        if operation.path == BATCH:  # at least one command
            body = {"commands": [{"type": "todo_add", "uuid": str(uuid.uuid4()), "args": {"title": self.unique()}}]}
        headers = {"authorization": f"Bearer {self.token(operation)}".encode()}
        return Request(operation.method, path, body=body, query=required_query(operation), headers=headers)

    async def send(self, operation: Operation, request: Request) -> httpx.Response:
        self.cases[operation.label] += 1
        return await self.client.request(
            request.method, request.url(), content=request.payload(), headers=request.http_headers()
        )

    @staticmethod
    def check(operation: Operation, response: httpx.Response, expected: Collection[int]) -> None:
        status = response.status_code
        context = (operation.label, status, response.content[:300])
        assert status < 500, context
        assert status in expected, (*context, "expected", sorted(expected))
        if 400 <= status < 500:
            assert response.headers.get("content-type", "").startswith("application/json"), context
            body = orjson.loads(response.content)
            assert isinstance(body, dict), context
            assert "detail" in body, context
        assert ECHOED_REQUEST_ID.fullmatch(response.headers["x-request-id"]), context


def required_query(operation: Operation) -> list[tuple[str, str]]:
    """The required query parameters, each with its documented example (a reminder window's `from`
    and `to` only make sense together), else a minimal valid value."""
    return [
        (p.name, str(p.schema.get("examples", [valid_instance(p.schema, "x")])[0]))
        for p in operation.located("query")
        if p.required
    ]


def expected_success(operation: Operation) -> int:
    """The documented success status (201 for creates, 204 for deletes, else 200)."""
    responses = DOCUMENT["paths"][operation.path][operation.method.lower()]["responses"]
    return min(int(code) for code in responses if code.startswith("2"))


@pytest.fixture(scope="package")
def hostile_cases() -> Iterator[Counter[str]]:
    """Cases sent per operation over the whole suite, printed at the end (shown with `-s`)."""
    cases: Counter[str] = Counter()
    yield cases
    lines = ["", "hostile-input suite (cases per operation):"]
    lines += [f"  {name:<32} {cases[name]:>5}" for name in sorted(cases)]
    lines.append(f"  {len(cases)} operations, {cases.total()} cases")
    sys.stdout.write("\n".join(lines) + "\n")


@pytest.fixture(scope="package")
async def hostile_client(base_settings: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the suite (no quotas: creates must keep succeeding), behind the raw-query shim."""
    quotas = {"max_todos_per_user": 0, "max_lists_per_user": 0}
    app = create_app(load_settings(**{**base_settings, **quotas}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=RawQuery(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def attack(hostile_client: httpx.AsyncClient, db_engine: Any, signer: Signer, hostile_cases: Counter[str]) -> Attack:
    """Three users of their own for each test (the database is emptied after each test, so users
    are never reused: the app's per-worker identity cache never names a deleted one)."""
    run = uuid.uuid4().hex
    tokens = {name: signer.token(f"hostile|{name}|{run}") for name in ("user", "other", "leaver")}
    return Attack(hostile_client, tokens, hostile_cases)
