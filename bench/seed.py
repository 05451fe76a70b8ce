"""Seed users, lists and todos into the app's own tables (SQLModel table metadata).

Users and lists go through SQLAlchemy Core inserts (one batch each); all todos are streamed in one
COPY over the columns of `Todo.__table__`, about 3.5x faster than a pipelined executemany (the table
carries nine indexes), which keeps the default seed (1 000 users, ~180 000 todos) under half a minute.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fractional_indexing
import psycopg
from psycopg import sql
from sqlalchemy import Table, create_engine, insert

from bench.tokens import ISSUER
from todo_api.models import Todo, TodoList, User
from todo_api.storage.database import driver_url

TODOS: Table = Todo.__table__  # type: ignore[attr-defined]
# Every column the seed writes, in table order; the rest (version, the trash, sync and other planner columns) take
# their server defaults.
SEEDED = frozenset(
    {"id", "user_id", "list_id", "title", "description", "completed", "completed_at", "due_at", "priority"}
    | {"tags", "tag_keys", "created_at", "updated_at", "position"}
)
TODO_COLUMNS = tuple(
    name
    for name in TODOS.columns.keys()  # noqa: SIM118 - ColumnCollection.keys() keeps table order
    if name in SEEDED
)
KEYS_PER_GROUP = 120_000  # enough position keys for the largest sibling group (a user's loose todos)
LISTS_PER_BIG_USER, LISTS_PER_USER = 20, 2
BIG_USER_TODOS = 1_000  # from this size on, a user gets LISTS_PER_BIG_USER lists
EXTRA_TAGS = ("home", "Urgent", "errands", "later", "Q3", "reading")
VERBS = ("Write", "Review", "Call", "Buy", "Fix", "Plan", "Email", "Clean", "Read", "Book")
NOUNS = ("report", "invoice", "groceries", "bike", "slides", "dentist", "garden", "tickets", "notes", "budget")


@dataclass(frozen=True, slots=True)
class SeededUser:
    key: str
    subject: str
    id: uuid.UUID
    todo_ids: tuple[uuid.UUID, ...]
    loose_ids: tuple[uuid.UUID, ...] = ()  # in no list: one sibling group (the `move` scenario's)


@dataclass(frozen=True, slots=True)
class Seed:
    users: dict[str, SeededUser]
    rows: int
    seconds: float

    def user(self, key: str) -> SeededUser:
        return self.users[key]


def _todo(rng: random.Random, user_id: uuid.UUID, lists: list[uuid.UUID], n: int, now: datetime) -> dict[str, Any]:
    created = now - timedelta(seconds=rng.uniform(60, 365 * 86400))
    completed = rng.random() < 0.35
    tags: list[str] = ["work"] if rng.random() < 0.5 else []
    tags += rng.sample(EXTRA_TAGS, rng.choice((0, 0, 1, 2)))
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "list_id": rng.choice(lists) if rng.random() < 0.8 else None,
        "title": f"{rng.choice(VERBS)} {rng.choice(NOUNS)} #{n}",
        "description": "Seeded by the benchmark. " * rng.choice((0, 0, 1, 3)),
        "completed": completed,
        "completed_at": created + timedelta(hours=rng.uniform(1, 240)) if completed else None,
        "due_at": None if rng.random() < 0.3 else now + timedelta(days=rng.uniform(-30, 90)),
        "priority": rng.choices((0, 1, 2, 3), weights=(4, 3, 2, 1))[0],
        "tags": tags,
        "tag_keys": sorted({tag.lower() for tag in tags}),
        "created_at": created,
        "updated_at": created + timedelta(minutes=rng.uniform(0, 600)),
    }


@dataclass(slots=True)
class _Plan:
    users: list[dict[str, Any]]
    lists: list[dict[str, Any]]
    lists_of: dict[uuid.UUID, list[uuid.UUID]]


def _plan(plan: dict[str, int]) -> _Plan:
    users, lists, lists_of = [], [], {}
    list_keys = fractional_indexing.generate_n_keys_between(None, None, LISTS_PER_BIG_USER)
    for key, todos in plan.items():
        user_id = uuid.uuid4()
        users.append({"id": user_id, "issuer": ISSUER, "subject": f"bench|{key}", "name": None})
        count = LISTS_PER_BIG_USER if todos >= BIG_USER_TODOS else LISTS_PER_USER
        lists_of[user_id] = [uuid.uuid4() for _ in range(count)]
        lists += [
            {"id": list_id, "user_id": user_id, "name": f"List {i:02d}", "position": list_keys[i]}
            for i, list_id in enumerate(lists_of[user_id])
        ]
    return _Plan(users, lists, lists_of)


def _todo_rows(
    rng: random.Random,
    planned: _Plan,
    plan: dict[str, int],
    ids: dict[str, list[uuid.UUID]],
    loose: dict[str, list[uuid.UUID]],
) -> Iterator[list[Any]]:
    """Rows in creation order; each sibling group (a user's list, or no list) gets the next
    position keys in turn, as todo-api would give them (new todos last)."""
    now = datetime.now(UTC)
    keys = fractional_indexing.generate_n_keys_between(None, None, KEYS_PER_GROUP)
    for user, (key, todos) in zip(planned.users, plan.items(), strict=True):
        used: dict[uuid.UUID | None, int] = {}
        for n in range(todos):
            row = _todo(rng, user["id"], planned.lists_of[user["id"]], n, now)
            row["position"] = keys[used.setdefault(row["list_id"], 0)]
            used[row["list_id"]] += 1
            ids[key].append(row["id"])
            if row["list_id"] is None:
                loose[key].append(row["id"])
            yield [row[name] for name in TODO_COLUMNS]


def seed(database_url: str, plan: dict[str, int], *, random_seed: int = 20261125) -> Seed:
    """Insert one user per `plan` entry (key -> number of todos), then VACUUM ANALYZE."""
    started = time.perf_counter()
    rng = random.Random(random_seed)
    planned = _plan(plan)
    ids: dict[str, list[uuid.UUID]] = {key: [] for key in plan}
    loose: dict[str, list[uuid.UUID]] = {key: [] for key in plan}
    engine = create_engine(driver_url(database_url), connect_args={"prepare_threshold": None})
    try:
        with engine.begin() as connection:
            connection.execute(insert(User), planned.users)
            connection.execute(insert(TodoList), planned.lists)
            raw = connection.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(TODOS.name), sql.SQL(", ").join(sql.Identifier(name) for name in TODO_COLUMNS)
            )
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in _todo_rows(rng, planned, plan, ids, loose):
                    copy.write_row(row)
    finally:
        engine.dispose()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) users, lists, todos")
    users = {
        key: SeededUser(key, user["subject"], user["id"], tuple(ids[key]), tuple(loose[key]))
        for user, key in zip(planned.users, plan, strict=True)
    }
    rows = sum(plan.values()) + len(planned.users) + len(planned.lists)
    return Seed(users, rows, time.perf_counter() - started)
