"""Every new query of the planner (issue 15) can run on an index: with sequential scans disabled,
PostgreSQL's plan for each statement reads the index named here (a statement no index serves would
still get a sequential scan, disabled or not). The benchmark's `python -m bench.explain --scenarios
move,position` shows the plans on a seeded database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from tests.api import Api
from todo_api.lists import positions as list_positions
from todo_api.models.scoping import OWNER
from todo_api.reminders import repository as reminders
from todo_api.todos import completions, positions, tree
from todo_api.todos import repository as todos

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SOME = uuid.uuid4()
SIBLINGS = "uq_todos_user_id_list_id_parent_id_position"
CHILDREN = "ix_todos_parent_id_position"
AT_KEY = {"after_value": "a0"}


def _page(sort: str, *filters: str) -> Any:
    return todos._filtered_page(sort, True, frozenset(filters))


CASES: list[tuple[str, Executable, dict[str, Any], str]] = [
    ("last top-level todo of a list", positions._LAST["list"], {"group_list": SOME}, SIBLINGS),
    ("last todo in no list", positions._LAST["none"], {}, SIBLINGS),
    ("last child", positions._LAST["child"], {"group_parent": SOME}, CHILDREN),
    ("next sibling", positions._NEXT["list"], {"group_list": SOME, "moved": SOME, "before": "a0"}, SIBLINGS),
    ("first child", positions._FIRST["child"], {"group_parent": SOME, "moved": SOME}, CHILDREN),
    ("a group in order (rebalance)", positions._IDS["none"], {}, SIBLINGS),
    ("rebalance", positions.REBALANCE, {"ids": [SOME], "keys": ["a0"]}, "pk_todos"),
    ("subtree shape", tree._SHAPE, {"root": SOME, "parent": SOME}, CHILDREN),
    ("complete descendants", tree._COMPLETE_DESCENDANTS, {"root": SOME}, CHILDREN),
    ("last list", list_positions._LAST, {}, "uq_lists_user_id_position"),
    ("completions page", completions._PAGES[True], {"todo": SOME}, "ix_todo_completions_todo_id_completed_at_id"),
    (
        "reminders window",
        reminders._PAGES[True],
        {"start": NOW, "end": NOW},
        "ix_reminder_fires_user_id_fires_at_todo_id",
    ),
    ("position page, no list", _page("position", "no_list", "no_parent"), AT_KEY, SIBLINGS),
    ("position page, a list", _page("position", "list_id", "no_parent"), {**AT_KEY, "list_id": SOME}, SIBLINGS),
    ("position page, children", _page("position", "parent_id"), {**AT_KEY, "parent_id": SOME}, CHILDREN),
    ("completed_at page", _page("completed_at"), {}, "ix_todos_user_id_completed_at_id"),
    (
        "-completed_at page",
        _page("-completed_at", "completed_after"),
        {"completed_after": NOW},
        "ix_todos_user_id_completed_at_id",
    ),
    # Either index serves it (the planner picks by statistics): the parent's, or the sort's.
    (
        "subtasks by creation",
        _page("created_at", "parent_id"),
        {"parent_id": SOME},
        f"{CHILDREN}|ix_todos_user_id_created_at_id",
    ),
]
PAGE_PARAMS = {"after_value": NOW, "after_id": SOME, "limit": 51}


@pytest.mark.parametrize(("name", "statement", "params", "index"), CASES, ids=[case[0] for case in CASES])
async def test_each_planner_statement_runs_on_an_index(
    api: Api, db_engine: AsyncEngine, name: str, statement: Executable, params: dict[str, Any], index: str
) -> None:
    await api.create_todo(title="one row, so that the tables are not empty")
    compiled = cast(ClauseElement, statement).compile(dialect=db_engine.dialect)
    values = {**compiled.params, **PAGE_PARAMS, OWNER: SOME, **params}  # constants keep their values
    values = {key: value for key, value in values.items() if key in compiled.params}
    async with db_engine.connect() as connection:
        await connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in await connection.exec_driver_sql(f"EXPLAIN {compiled}", values))
        await connection.rollback()
    assert any(name in plan for name in index.split("|")), plan
    assert "Seq Scan" not in plan, plan
