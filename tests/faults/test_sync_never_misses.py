"""Sync never misses a change, against a real `todo-api serve --workers 2`.

Eight writers create, update, complete, delete (trash), restore and purge todos, rename, trash
and restore lists, some through `/api/batch`, while one client syncs in a loop with a small
`limit` (so pages and `has_more` are exercised). At the end, a replica built only from the sync
responses must equal the server's state, for every todo and list and every field (list counts
included).

Why an `updated_at`-based sync fails this test: one write is held back on purpose. Before the
writers start, a PATCH of a todo is sent while a separate transaction holds that todo's row lock:
the PATCH's transaction has begun, so its `updated_at` (`now()`, the transaction's start) is
fixed, earlier than every write of the writers. The syncing client meanwhile sees the writers'
later `updated_at` values. Only then is the lock released and the PATCH commits. A sync asking for
"updated_at > the newest timestamp seen" would never return it; the test asserts that the held
write's `updated_at` is older than a timestamp the client had already received before the write
committed (so such a sync would have skipped it) and that the replica has it anyway.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tests.faults.servers import HANG, ApiServer, start_api_server, wait_for_lock_waiters
from todo_api.models import Todo

pytestmark = pytest.mark.slow

WRITERS = 8
OPERATIONS_PER_WRITER = 40
SYNC_LIMIT = 7
type Json = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def two_workers(database_url: str, service_env: dict[str, str], signer: Any) -> Iterator[ApiServer]:
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        # The held PATCH waits for its row lock while the writers run.
        "DB_STATEMENT_TIMEOUT_MS": "600000",
        "DB_POOL_TIMEOUT_SECONDS": "20",
    }
    server = start_api_server(env, {"Authorization": f"Bearer {signer.token('readiness')}"}, workers=2)
    yield server
    server.stop()


@dataclass
class Replica:
    """The client's copy, built from sync responses only."""

    todos: dict[str, Json] = field(default_factory=dict)
    lists: dict[str, Json] = field(default_factory=dict)
    token: str | None = None
    # The newest updated_at any sync response carried: what a timestamp-based sync would ask "after".
    newest_seen: datetime = EPOCH

    def apply(self, page: Json) -> None:
        for kind, store in (("todos", self.todos), ("lists", self.lists)):
            for item in page[kind]:
                store[item["id"]] = item
                self.newest_seen = max(self.newest_seen, datetime.fromisoformat(item["updated_at"]))
            for gone in page["deleted"][kind]:
                store.pop(gone, None)
        self.token = page["sync_token"]

    async def sync(self, client: httpx.AsyncClient) -> None:
        """One round: pages until `has_more` is false."""
        while True:
            params: dict[str, str | int] = {"limit": SYNC_LIMIT}
            if self.token:
                params["sync_token"] = self.token
            response = await client.get("/api/sync", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            self.apply(page)
            if not page["has_more"]:
                return


@dataclass
class Writer:
    client: httpx.AsyncClient
    rng: random.Random
    lists: list[str]
    live: list[str] = field(default_factory=list)
    trashed: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code < 500, response.text
        self.statuses.append(response.status_code)
        return response

    async def create(self) -> None:
        list_id = self.rng.choice([None, *self.lists])
        response = await self.call("POST", "/api/todos", json={"title": f"t{self.rng.random()}", "list_id": list_id})
        if response.status_code == 201:
            self.live.append(response.json()["id"])

    async def update(self, todo_id: str) -> None:
        changes = self.rng.choice(
            [
                {"title": f"u{self.rng.random()}"},
                {"completed": self.rng.random() < 0.5},
                {"priority": self.rng.choice(["none", "low", "high"]), "tags": [f"tag{self.rng.randrange(3)}"]},
                {"list_id": self.rng.choice([None, *self.lists])},
            ]
        )
        await self.call("PATCH", f"/api/todos/{todo_id}", json=changes)

    async def step(self) -> None:
        action = self.rng.choices(["create", "update", "delete", "restore", "purge", "batch"], [3, 5, 2, 2, 1, 1])[0]
        if action == "create" or not self.live:
            await self.create()
        elif action == "update":
            await self.update(self.rng.choice(self.live))
        elif action == "delete":
            todo_id = self.live.pop(self.rng.randrange(len(self.live)))
            await self.call("DELETE", f"/api/todos/{todo_id}")
            self.trashed.append(todo_id)
        elif action == "restore" and self.trashed:
            todo_id = self.trashed.pop()
            if (await self.call("POST", f"/api/trash/{todo_id}/restore")).status_code == 200:
                self.live.append(todo_id)
        elif action == "purge" and self.trashed:
            await self.call("DELETE", f"/api/trash/{self.trashed.pop(0)}")
        else:
            await self.batch()

    async def batch(self) -> None:
        """Several writes in one longer transaction (commits later than its timestamps)."""
        target = self.rng.choice(self.live)
        commands = [
            {"type": "todo_add", "uuid": str(uuid.uuid4()), "temp_id": "new", "args": {"title": "from a batch"}},
            {"type": "todo_update", "uuid": str(uuid.uuid4()), "args": {"id": "new", "completed": True}},
            {"type": "todo_update", "uuid": str(uuid.uuid4()), "args": {"id": target, "title": "batched"}},
        ]
        response = await self.call("POST", "/api/batch", json={"commands": commands})
        if response.status_code == 200 and "new" in response.json()["temp_id_mapping"]:
            self.live.append(response.json()["temp_id_mapping"]["new"])


async def _list_chores(client: httpx.AsyncClient, lists: list[str], rng: random.Random) -> None:
    """Rename, trash and restore lists (taking their todos along) while the writers run."""
    for _ in range(OPERATIONS_PER_WRITER // 4):
        list_id = rng.choice(lists)
        response = await client.patch(f"/api/lists/{list_id}", json={"name": f"L{rng.random()}"})
        assert response.status_code < 500, response.text
        if rng.random() < 0.5:
            assert (await client.delete(f"/api/lists/{list_id}")).status_code < 500
            assert (await client.post(f"/api/trash/{list_id}/restore")).status_code < 500


async def _all(client: httpx.AsyncClient, path: str) -> dict[str, Json]:
    items: dict[str, Json] = {}
    cursor: str | None = None
    while True:
        response = await client.get(path, params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        items.update((item["id"], item) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_a_replica_built_from_syncs_equals_the_server(
    two_workers: ApiServer, auth: Any, db_engine: AsyncEngine
) -> None:
    headers = auth(f"sync-{uuid.uuid4()}")
    rng = random.Random(14)
    async with httpx.AsyncClient(base_url=two_workers.base_url, headers=headers, timeout=HANG) as client:
        lists = [(await client.post("/api/lists", json={"name": f"L{n}"})).json()["id"] for n in range(3)]
        held = (await client.post("/api/todos", json={"title": "held back"})).json()
        replica = Replica()
        await replica.sync(client)

        async with db_engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(select(col(Todo.id)).where(col(Todo.id) == uuid.UUID(held["id"])).with_for_update())
            patient = httpx.AsyncClient(base_url=two_workers.base_url, headers=headers, timeout=600)
            late_patch = asyncio.create_task(patient.patch(f"/api/todos/{held['id']}", json={"title": "late"}))
            await wait_for_lock_waiters(db_engine)  # its transaction has begun: its now() is fixed

            stop = asyncio.Event()

            async def syncing() -> None:
                while not stop.is_set():
                    await replica.sync(client)

            writers = [
                Writer(httpx.AsyncClient(base_url=two_workers.base_url, headers=headers, timeout=HANG), rng, lists)
                for _ in range(WRITERS)
            ]

            async def write(writer: Writer) -> None:
                for _ in range(OPERATIONS_PER_WRITER):
                    await writer.step()

            sync_task = asyncio.create_task(syncing())
            try:
                await asyncio.gather(*(write(w) for w in writers), _list_chores(client, lists, random.Random(15)))
            except AssertionError:
                print(two_workers.log_text()[-6000:])  # the server's side of a 5xx
                raise
            stop.set()
            await sync_task
            await replica.sync(client)
            for writer in writers:
                await writer.client.aclose()
            seen_before_commit = replica.newest_seen
            await transaction.commit()  # the held PATCH can go on and commit now
        late = await late_patch
        await patient.aclose()
        assert late.status_code == 200, late.text
        # A sync by "updated_at newer than the newest seen" would skip it for good:
        assert datetime.fromisoformat(late.json()["updated_at"]) < seen_before_commit
        await replica.sync(client)
        await replica.sync(client)  # a quiet round changes nothing

        assert replica.todos[held["id"]]["title"] == "late"
        assert replica.todos == await _all(client, "/api/todos")
        assert replica.lists == await _all(client, "/api/lists")
        statuses = [status for writer in writers for status in writer.statuses]
        assert statuses.count(204) > 10  # deletes (and purges) really happened
        assert statuses.count(201) > 10
