"""What a 503 on a write means: the outcome is unknown, and a retry with the same
`Idempotency-Key` is safe.

When the connection breaks while COMMIT is in flight, the client cannot know whether the server
committed: here it did (a relay forwards COMMIT, lets the server answer, and drops the connection
instead of passing the answer on). The client gets 503; the retry with the same key must answer
with the one todo (or list) that exists, never create a second.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from tests.faults.conftest import RunningAppFactory
from tests.faults.servers import CommitCutter
from tests.faults.test_database_faults import assert_unavailable
from todo_api.models import Todo, TodoList

CREATES: dict[str, tuple[str, str, type[SQLModel]]] = {
    "todo": ("/api/todos", "title", Todo),
    "list": ("/api/lists", "name", TodoList),
}


@pytest.mark.parametrize("kind", list(CREATES))
async def test_commit_cut_gives_503_and_the_retry_with_the_same_key_returns_the_one_created(
    kind: str,
    running_app: RunningAppFactory,
    database_url: str,
    db_engine: AsyncEngine,
    auth: Callable[..., dict[str, str]],
) -> None:
    path, field, model = CREATES[kind]
    url = make_url(database_url)
    headers = {**auth(), "Idempotency-Key": str(uuid.uuid4())}
    body = {field: f"cut during commit {uuid.uuid4().hex[:8]}"}
    # The server by TCP (TEST_DATABASE_URL) or by its Unix socket (the embedded PostgreSQL's URL
    # names the socket directory in `host=`); the app reaches it through the relay either way.
    socket_dir = url.query.get("host")
    socket = (
        f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
        if isinstance(socket_dir, str) and socket_dir.startswith("/")
        else None
    )
    async with CommitCutter(url.port or 5432, upstream_socket=socket) as relay:
        direct = url.difference_update_query(["host"])
        relayed = direct.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        async with running_app(database_url=relayed) as running:
            client = running.client
            for _ in range(2):  # the account exists and is cached: the create is one transaction
                assert (await client.get("/api/users/me", headers=headers)).status_code == 200

            relay.armed = True
            first = await client.post(path, json=body, headers=headers)
            assert relay.cuts == 1, "the relay did not cut a COMMIT: the test proves nothing"
            assert_unavailable(first)
            assert await count(db_engine, model, field, body[field]) == 1  # committed, though the client got 503

            retry = await client.post(path, json=body, headers=headers)
            assert retry.status_code == 201, retry.text
            assert retry.headers["Idempotent-Replayed"] == "true"
            listed = await client.get(path, headers=headers, params={"limit": 200})
    assert await count(db_engine, model, field, body[field]) == 1
    assert [item["id"] for item in listed.json()["items"] if item[field] == body[field]] == [retry.json()["id"]]


async def count(engine: AsyncEngine, model: type[SQLModel], field: str, value: str) -> int:
    async with engine.connect() as connection:
        statement = select(func.count()).select_from(model).where(getattr(model, field) == value)
        return int((await connection.execute(statement)).scalar_one())
