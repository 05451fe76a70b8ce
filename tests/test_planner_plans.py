"""Every new query of the planner (issue 15) runs on its index: on a database of 20 users with 500
todos each (in lists and none, with subtasks, completions and reminder firing times), analysed,
PostgreSQL's plan for each statement reads the index named here and scans no table sequentially.
The benchmark's `python -m bench.explain --scenarios move,position` shows the plans of the routes
on the benchmark's seeded database. (`a|b`: either index serves the statement.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from todo_api.lists import positions as list_positions
from todo_api.models import metadata
from todo_api.models.scoping import OWNER
from todo_api.reminders import repository as reminders
from todo_api.todos import completions, pages, positions, tree

NOW = datetime(2030, 1, 1, tzinfo=UTC)
USERS, LISTS, TODOS = 20, 50, 500
SIBLINGS = "uq_todos_user_id_list_id_parent_id_position"
CHILDREN = "ix_todos_parent_id_position"
COMPLETED = "ix_todos_user_id_completed_at_id"


@dataclass(frozen=True, slots=True)
class World:
    user: uuid.UUID
    list_id: uuid.UUID
    parent: uuid.UUID
    todo: uuid.UUID


def _page(sort: str, *filters: str) -> Any:
    return pages.page_statement(sort, True, frozenset(filters))


type Params = Callable[[World], dict[str, Any]]
AT_KEY = {"after_value": "a0", "after_id": uuid.UUID(int=0)}
AT_TIME = {"after_value": NOW, "after_id": uuid.UUID(int=0)}
CASES: list[tuple[str, Executable, Params, str]] = [
    ("last top-level todo of a list", positions._LAST["list"], lambda w: {"group_list": w.list_id}, SIBLINGS),
    ("last todo in no list", positions._LAST["none"], lambda w: {}, SIBLINGS),
    ("last child", positions._LAST["child"], lambda w: {"group_parent": w.parent}, CHILDREN),
    (
        "next sibling",
        positions._NEXT["list"],
        lambda w: {"group_list": w.list_id, "moved": w.todo, "before": "a0"},
        SIBLINGS,
    ),
    ("first child", positions._FIRST["child"], lambda w: {"group_parent": w.parent, "moved": w.todo}, CHILDREN),
    ("a group in order (rebalance)", positions._IDS["list"], lambda w: {"group_list": w.list_id}, SIBLINGS),
    ("rebalance", positions.REBALANCE, lambda w: {"ids": [w.todo], "keys": ["a0"]}, "uq_todos_id_user_id|pk_todos"),
    ("a todo's state and whether it has subtasks", tree._STATE, lambda w: {"target": w.parent}, CHILDREN),
    ("subtree shape", tree._SHAPE, lambda w: {"root": w.parent, "parent": w.todo}, CHILDREN),
    ("complete descendants", tree._COMPLETE_DESCENDANTS, lambda w: {"root": w.parent, "completed": True}, CHILDREN),
    ("last list", list_positions._LAST, lambda w: {}, "uq_lists_user_id_position"),
    (
        "completions page",
        completions._PAGES[True],
        lambda w: {"todo": w.todo, **AT_TIME},
        "ix_todo_completions_todo_id_completed_at_id",
    ),
    (
        "reminders window",
        reminders._PAGES[True],
        lambda w: {"start": NOW, "end": NOW + timedelta(days=1), **AT_TIME},
        "ix_reminder_fires_user_id_fires_at_todo_id",
    ),
    ("position page, no list", _page("position", "no_list", "no_parent"), lambda w: AT_KEY, SIBLINGS),
    (
        "position page, a list",
        _page("position", "list_id", "no_parent"),
        lambda w: {**AT_KEY, "list_id": w.list_id},
        SIBLINGS,
    ),
    ("position page, children", _page("position", "parent_id"), lambda w: {**AT_KEY, "parent_id": w.parent}, CHILDREN),
    ("completed_at page", _page("completed_at"), lambda w: AT_TIME, COMPLETED),
    (
        "-completed_at page",
        _page("-completed_at", "completed_after"),
        lambda w: {**AT_TIME, "completed_after": NOW},
        COMPLETED,
    ),
    (
        "subtasks, newest first",
        _page("-created_at", "parent_id"),
        lambda w: {**AT_TIME, "parent_id": w.parent},
        CHILDREN,
    ),
]


async def _populate(connection: AsyncConnection) -> World:
    users = [uuid.uuid4() for _ in range(USERS)]
    await connection.execute(
        insert(metadata.tables["users"]), [{"id": u, "issuer": "plans", "subject": str(u)} for u in users]
    )
    lists = {u: [uuid.uuid4() for _ in range(LISTS)] for u in users}
    await connection.execute(
        insert(metadata.tables["lists"]),
        [
            {"id": list_id, "user_id": u, "name": f"l{n}", "position": f"a{n}"}
            for u in users
            for n, list_id in enumerate(lists[u])
        ],
    )
    rows: list[dict[str, Any]] = []
    completions_rows, fires = [], []
    for u in users:
        tops: list[dict[str, Any]] = []
        for n in range(TODOS):
            list_id = (lists[u] + [None])[n % (LISTS + 1)]
            done = n % 3 == 0
            row = {"id": uuid.uuid4(), "user_id": u, "title": "t", "list_id": list_id, "position": f"a{n:05d}"}
            row |= {"completed": done, "completed_at": NOW - timedelta(minutes=n) if done else None, "depth": 0}
            row |= {"parent_id": None}
            if n >= TODOS // 2:  # the second half are subtasks of the first todos of their list
                parent = tops[n % len(tops)]
                row |= {"parent_id": parent["id"], "list_id": parent["list_id"], "depth": 1}
            else:
                tops.append(row)
            rows.append(row)
            completions_rows.append({"id": uuid.uuid4(), "user_id": u, "todo_id": row["id"], "completed_at": NOW})
            fires.append({"todo_id": row["id"], "user_id": u, "fires_at": NOW + timedelta(minutes=n)})
    await connection.execute(insert(metadata.tables["todos"]), rows)
    await connection.execute(insert(metadata.tables["todo_completions"]), completions_rows)
    await connection.execute(insert(metadata.tables["reminder_fires"]), fires)
    parent_id: uuid.UUID = rows[TODOS - 1]["parent_id"]
    some: uuid.UUID = rows[1]["id"]
    return World(users[0], lists[users[0]][0], parent_id, some)


async def test_each_planner_statement_runs_on_its_index(db_engine: AsyncEngine) -> None:
    async with db_engine.begin() as connection:
        world = await _populate(connection)
    async with db_engine.connect() as connection:
        await connection.execute(text("ANALYZE users, lists, todos, todo_completions, reminder_fires"))
        await connection.commit()
        failures = []
        for name, statement, params, index in CASES:
            compiled = cast(ClauseElement, statement).compile(dialect=db_engine.dialect)
            values = {**compiled.params, OWNER: world.user, "limit": 51, **params(world)}
            values = {key: value for key, value in values.items() if key in compiled.params}
            rows = await connection.exec_driver_sql(f"EXPLAIN {compiled}", values)
            plan = "\n".join(row[0] for row in rows)
            if not any(name in plan for name in index.split("|")) or "Seq Scan" in plan:
                failures.append(f"{name}: expected {index}\n{plan}")
        await connection.rollback()
    assert not failures, "\n\n".join(failures)
