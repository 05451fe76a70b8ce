"""Scoping you cannot forget: every statement on a user-owned table carries its model's owner filter.

Two nets. Statically, every statement the repositories can build (module-level statements and every
shape of the per-shape builders) is inspected. Dynamically, the API is driven through every route
by two users while a session event records each statement as it runs; each must carry the owner
filter, bound to the id of the user who sent the request. Housekeeping purges are the only
statements allowed to span users, and they say so (`all_users` execution option).
`test_the_guard_flags_a_statement_without_its_owner_filter` shows the guard fails when a filter
is missing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import BindParameter, Column, Table, event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BinaryExpression, ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlmodel import col, select

from tests.api import Api
from tests.conftest import AppClientFactory
from todo_api import maintenance
from todo_api.config import load_settings
from todo_api.idempotency import _FIND, _LOCK, _SAVE
from todo_api.lists import moves as list_moves
from todo_api.lists import positions as list_positions
from todo_api.lists import repository as lists_repository
from todo_api.models import (
    DeletedAccount,
    IdempotencyKey,
    RateLimitWindow,
    SyncHorizon,
    SyncTombstone,
    Todo,
    TodoList,
    User,
)
from todo_api.models.scoping import ISSUER, OWNER, SUBJECT, SUBJECT_KEY
from todo_api.ratelimit import _ADD, build_rate_limiter
from todo_api.reminders import repository as reminders_repository
from todo_api.storage.database import create_engine, database
from todo_api.sync import repository as sync_repository
from todo_api.todos import completions as todo_completions
from todo_api.todos import pages as todo_pages
from todo_api.todos import positions as todo_positions
from todo_api.todos import repository as todos_repository
from todo_api.todos import tree as todo_tree
from todo_api.trash import repository as trash_repository
from todo_api.users import repository as users_repository

# Per guarded table, the owner filters that scope it: each a set of (column, bind parameter) pairs
# that must all be compared with `=`.
GUARDS: dict[str, tuple[tuple[tuple[str, str], ...], ...]] = {
    "todos": ((("user_id", OWNER),),),
    "lists": ((("user_id", OWNER),),),
    "idempotency_keys": ((("user_id", OWNER),),),
    # By the id, or by the identity (a request that finds no user row: was it deleted since?).
    "deleted_accounts": ((("user_id", OWNER),), (("issuer", ISSUER), ("subject", SUBJECT))),
    "sync_tombstones": ((("user_id", OWNER),),),
    "sync_horizons": ((("user_id", OWNER),),),
    # By the token's identity, or by the id it resolved to.
    "users": ((("issuer", ISSUER), ("subject", SUBJECT)), (("id", OWNER),)),
    "rate_limit_windows": ((("subject_key", SUBJECT_KEY),),),
    "todo_completions": ((("user_id", OWNER),),),
    "reminder_fires": ((("user_id", OWNER),),),
}
# An INSERT is scoped by the owner values it writes (checked against the request's user at run time).
INSERT_OWNER = {"todos": OWNER, "lists": OWNER, "idempotency_keys": "user_id", "deleted_accounts": "user_id"}
INSERT_OWNER |= {"todo_completions": "user_id", "reminder_fires": "user_id"}
# The planner's data-access modules (issue 15): module-level statements and dicts of them.
PLANNER_MODULES = (todo_tree, todo_positions, todo_completions, list_positions, list_moves, reminders_repository)


def _compared(statement: ClauseElement) -> set[tuple[str, str, str]]:
    """(table, column, bind parameter) for every `column = :parameter` in the statement."""
    found: set[tuple[str, str, str]] = set()
    for element in visitors.iterate(statement):
        if not isinstance(element, BinaryExpression) or element.operator is not operators.eq:
            continue
        for column, parameter in ((element.left, element.right), (element.right, element.left)):
            if isinstance(column, Column) and isinstance(parameter, BindParameter):
                table = column.table
                if isinstance(table, Table):
                    found.add((table.name, column.name, str(parameter.key)))
    return found


def _tables(statement: Executable) -> set[str]:
    assert isinstance(statement, ClauseElement)
    found = find_tables(statement, include_crud=True, include_selects=True)
    return {table.name for table in found if isinstance(table, Table)}


def _inserts(statement: Executable) -> list[Insert]:
    """The INSERTs in the statement: itself, or one in a CTE (`models.base.returned`)."""
    assert isinstance(statement, ClauseElement)
    return [element for element in visitors.iterate(statement) if isinstance(element, Insert)]


def unscoped_tables(statement: Executable) -> set[str]:
    """Guarded tables the statement touches without their owner filter (empty: all is well)."""
    if statement.get_execution_options().get("all_users"):
        return set()
    assert isinstance(statement, ClauseElement)
    tables = _tables(statement)
    compared = _compared(statement)
    missing = set()
    for name in tables & GUARDS.keys():
        if any(insert.table.name == name for insert in _inserts(statement)):
            continue  # an INSERT's owner is in its values: checked against the request at run time
        if not any(all((name, *pair) in compared for pair in guard) for guard in GUARDS[name]):
            missing.add(name)
    return missing


def _repository_statements() -> Iterator[tuple[str, Executable]]:
    """Every statement the data-access modules can build."""
    for module in (
        todos_repository,
        todo_pages,
        lists_repository,
        users_repository,
        trash_repository,
        sync_repository,
        *PLANNER_MODULES,
    ):
        for name, value in vars(module).items():
            if isinstance(value, Executable):
                yield f"{module.__name__}.{name}", value
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, Executable):
                        yield f"{module.__name__}.{name}[{key}]", item
                    if isinstance(item, dict):
                        for inner_key, inner in item.items():
                            if isinstance(inner, Executable):
                                yield f"{module.__name__}.{name}[{key}][{inner_key}]", inner
    yield from (("idempotency._FIND", _FIND), ("idempotency._SAVE", _SAVE), ("idempotency._LOCK", _LOCK))
    yield "ratelimit._ADD", _ADD
    for capped in (False, True):
        yield f"lists create capped={capped}", lists_repository._create(capped)
        for completed in (False, True):
            yield f"todos create capped={capped} completed={completed}", todos_repository._create(completed, capped)
    filters = sorted(todo_pages.FILTERS.keys() - todo_pages.PLANNER_FILTERS.keys())
    for sort, after in itertools.product(todo_pages.SORTS, (False, True)):
        for size in range(len(filters) + 1):
            for chosen in itertools.combinations(filters, size):
                statement = todo_pages.page_statement(sort, after, frozenset(chosen))
                yield f"todos page {sort} after={after} {chosen}", statement
        for planner in todo_pages.PLANNER_FILTERS:  # each alone and with every other filter
            for chosen in ((planner,), (planner, *filters)):
                yield f"todos page {sort} {chosen}", todo_pages.page_statement(sort, after, frozenset(chosen))
    yield "todo subtree ids", todo_tree.subtree_ids()
    for conditional in (False, True):
        yield f"todos check off {conditional}", todo_completions._check_off(frozenset({"completed"}), conditional)
    fields = sorted(todos_repository.TodoValues.__annotations__)
    for size in range(1, len(fields) + 1):
        for chosen in itertools.combinations(fields, size):
            for conditional in (False, True):
                yield f"todos update {chosen}", todos_repository._update(frozenset(chosen), conditional)
    planner_fields = sorted(todos_repository.PlannerValues.__annotations__.keys() - set(fields))
    for chosen in itertools.combinations(planner_fields, 1):
        yield f"todos update {chosen}", todos_repository._update(frozenset(chosen), False)
    yield "todos update all", todos_repository._update(frozenset(todos_repository.PlannerValues.__annotations__), True)
    for states in (None, 0, 1, 3):
        yield f"lists update {states}", lists_repository._update(frozenset({"name"}), states)
        yield f"lists delete {states}", lists_repository._delete(states)


def test_every_statement_the_repositories_can_build_carries_its_owner_filter() -> None:
    checked = 0
    for name, statement in _repository_statements():
        assert unscoped_tables(statement) == set(), name
        checked += 1
    assert checked > 2000  # every filter combination of every sort, every update shape


def test_the_guard_flags_a_statement_without_its_owner_filter() -> None:
    unscoped = select(col(Todo.id)).where(col(Todo.id) == uuid.uuid4())
    assert unscoped_tables(unscoped) == {"todos"}
    # A filter on another table does not scope this one (a join of lists and todos).
    joined = select(col(Todo.id)).where(col(TodoList.user_id) == BindParameter(OWNER), Todo.list_id == TodoList.id)
    assert unscoped_tables(joined) == {"todos"}
    # Only the identity (issuer and subject) scopes a user row.
    assert unscoped_tables(select(col(User.id)).where(col(User.issuer) == BindParameter(ISSUER))) == {"users"}


@dataclass(eq=False)
class Recorder:
    """Statements run through any SQLModel session while recording, with their parameters."""

    seen: list[tuple[Executable, Mapping[str, Any]]] = field(default_factory=list)

    def __call__(self, state: ORMExecuteState) -> None:
        params = state.parameters if isinstance(state.parameters, Mapping) else {}
        self.seen.append((state.statement, dict(params)))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    record = Recorder()
    event.listen(Session, "do_orm_execute", record)
    try:
        yield record
    finally:
        event.remove(Session, "do_orm_execute", record)


async def _exercise(api: Api) -> None:
    """Every route, most branches: creates (with and without lists, keys), pages (every sort and
    filter), reads, conditional and unconditional writes, deletes, the account."""
    me = await api.request("GET", "/api/users/me")
    assert me.status_code == 200
    first = await api.create_list("Groceries")
    await api.create_list("Work")
    todo = await api.create_todo(title="milk", list_id=first["id"], tags=["Home"], due_at="2030-01-01T09:00:00Z")
    keyed = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    for _ in range(2):
        created = await api.request("POST", "/api/todos", json={"title": "once"}, headers=keyed)
        assert created.status_code == 201
    for sort in todo_pages.SORTS:
        await api.all_pages("/api/todos", sort=sort, limit=1)
    filters = {"completed": "false", "list_id": first["id"], "priority": "none", "tag": "home", "q": "mi"}
    await api.all_pages("/api/todos", limit=1, due_before="2031-01-01T00:00:00Z", due_after="2029-01-01T00:00:00Z")
    await api.all_pages("/api/todos", **filters)
    await api.all_pages("/api/todos", list_id="none")
    for sort in lists_repository.SORTS:
        await api.all_pages("/api/lists", sort=sort, limit=1)
    single = await api.request("GET", f"/api/todos/{todo['id']}")
    etag = single.headers["etag"]
    await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True}, headers={"If-Match": etag})
    await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True}, headers={"If-Match": etag})
    await api.request("PUT", f"/api/todos/{todo['id']}", json={"title": "replaced", "list_id": first["id"]})
    await api.request("PATCH", f"/api/todos/{todo['id']}", json={})
    listed = await api.request("GET", f"/api/lists/{first['id']}")
    list_etag = listed.headers["etag"]
    await api.request("PATCH", f"/api/lists/{first['id']}", json={"name": "Food"}, headers={"If-Match": list_etag})
    await api.request("PUT", f"/api/lists/{first['id']}", json={"name": "Food"})
    await api.request("DELETE", f"/api/todos/{todo['id']}", headers={"If-Match": '"999"'})
    await api.request("DELETE", f"/api/todos/{todo['id']}")
    await _exercise_planner(api, first["id"])
    await api.request("DELETE", f"/api/lists/{first['id']}", headers={"If-Match": list_etag})
    await api.request("DELETE", f"/api/lists/{first['id']}")
    await api.request("GET", f"/api/todos/{uuid.uuid4()}")
    await _exercise_offline(api, todo["id"], first["id"])
    await api.request("DELETE", "/api/users/me")


async def _exercise_offline(api: Api, todo_id: str, list_id: str) -> None:
    """The trash, sync and batch routes (issue 14), every branch that reaches the database."""
    await api.all_pages("/api/trash", limit=1)
    full = await api.request("GET", "/api/sync", params={"limit": 1})
    token = full.json()["sync_token"]
    for path in (
        f"/api/trash/{todo_id}/restore",
        f"/api/trash/{list_id}/restore",
        f"/api/trash/{uuid.uuid4()}/restore",
    ):
        await api.request("POST", path)
    await api.request("DELETE", f"/api/todos/{todo_id}")
    await api.request("DELETE", f"/api/trash/{todo_id}")
    await api.request("DELETE", f"/api/trash/{uuid.uuid4()}")
    commands = [
        {"type": "list_add", "uuid": str(uuid.uuid4()), "temp_id": "l", "args": {"name": "Batch"}},
        {"type": "todo_add", "uuid": str(uuid.uuid4()), "temp_id": "t", "args": {"title": "b", "list_id": "l"}},
        {"type": "todo_update", "uuid": str(uuid.uuid4()), "args": {"id": "t", "title": "c", "if_version": 1}},
        {"type": "todo_add", "uuid": str(uuid.uuid4()), "temp_id": "s", "args": {"title": "s", "parent_id": "t"}},
        {"type": "todo_move", "uuid": str(uuid.uuid4()), "args": {"id": "s", "parent_id": "t", "after_id": None}},
        {"type": "list_move", "uuid": str(uuid.uuid4()), "args": {"id": "l", "after_id": list_id}},
        # t takes its subtask s to the trash and back.
        {"type": "todo_delete", "uuid": str(uuid.uuid4()), "args": {"id": "t"}},
        {"type": "todo_restore", "uuid": str(uuid.uuid4()), "args": {"id": "t"}},
        {"type": "list_update", "uuid": str(uuid.uuid4()), "args": {"id": "l", "name": "Batch 2"}},
        {"type": "list_delete", "uuid": str(uuid.uuid4()), "args": {"id": "l"}},
        {"type": "list_restore", "uuid": str(uuid.uuid4()), "args": {"id": "l"}},
    ]
    for _ in range(2):  # the second time, stored results
        await api.request("POST", "/api/batch", json={"commands": commands, "sync_token": token})
    await api.request("POST", "/api/batch", json={"commands": commands[:1]})
    while True:
        page = (await api.request("GET", "/api/sync", params={"sync_token": token, "limit": 2})).json()
        token = page["sync_token"]
        if not page["has_more"]:
            break
    await api.request("DELETE", "/api/trash")


async def _exercise_planner(api: Api, list_id: str) -> None:
    """The planner's routes and fields (issue 15): subtasks, moves, recurring
    completion, reminders, completion history, the new filters and sorts."""
    parent = await api.create_todo(title="parent", list_id=list_id, reminders=[{"at": "2030-01-01T08:00:00Z"}])
    child = await api.create_todo(title="child", parent_id=parent["id"], due_at="2030-01-01T09:00:00Z")
    recurring = {"recurrence": "FREQ=DAILY;COUNT=2", "time_zone": "Europe/Berlin", "due_at": "2030-01-01T09:00:00Z"}
    series = await api.create_todo(title="daily", reminders=[{"before_due": "PT15M"}], **recurring)
    for _ in range(2):
        await api.request("PATCH", f"/api/todos/{series['id']}", json={"completed": True})
    await api.request("PATCH", f"/api/todos/{series['id']}", json={"completed": False})
    await api.request("PATCH", f"/api/todos/{parent['id']}", json={"completed": True, "due_at": None})
    await api.request("PATCH", f"/api/todos/{parent['id']}", json={"completed": False, "list_id": None})
    await api.request("PUT", f"/api/todos/{child['id']}", json={"title": "c", "parent_id": parent["id"]})
    await api.request("POST", f"/api/todos/{child['id']}/move", json={"after_id": None, "parent_id": None})
    await api.request("POST", f"/api/todos/{child['id']}/move", json={"after_id": parent["id"], "list_id": list_id})
    for _ in range(3):  # (the rebalance statement is checked statically: module-level `REBALANCE`)
        await api.request("POST", f"/api/todos/{series['id']}/move", json={"after_id": parent["id"]})
        await api.request("POST", f"/api/todos/{parent['id']}/move", json={"after_id": None})
    await api.request("POST", f"/api/lists/{list_id}/move", json={"after_id": None})
    await api.all_pages(f"/api/todos/{series['id']}/completions", limit=1)
    window = {"from": "2029-12-31T00:00:00Z", "to": "2030-01-07T00:00:00Z"}
    await api.all_pages("/api/reminders", limit=1, **window)
    for sort in ("position", "completed_at", "-completed_at"):
        await api.all_pages("/api/todos", sort=sort, limit=1, parent_id=parent["id"])
        await api.all_pages("/api/todos", sort=sort, limit=1, list_id=list_id)
    after = {"completed_after": "2000-01-01T00:00:00Z", "completed_before": "2100-01-01T00:00:00Z"}
    await api.all_pages("/api/todos", parent_id="none", **after)
    await api.request("DELETE", f"/api/todos/{parent['id']}")


async def test_every_statement_a_request_runs_is_scoped_to_the_requesting_user(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], recorder: Recorder
) -> None:
    # Rate limiting on (PostgreSQL counters), so its statements are recorded too.
    async with app_client(rate_limit_requests=10_000) as client:
        users = [Api(client, auth(f"scoping-{n}")) for n in range(2)]
        ids = {}
        for api in users:
            ids[(await api.request("GET", "/api/users/me")).json()["id"]] = api
        for api in users:
            await _exercise(api)
    assert len(recorder.seen) > 100
    guarded = 0
    for statement, params in recorder.seen:
        assert not statement.get_execution_options().get("all_users"), str(statement)
        assert unscoped_tables(statement) == set(), str(statement)
        tables = _tables(statement)
        if OWNER in params:
            assert str(params[OWNER]) in ids, str(statement)
        for insert in _inserts(statement):
            if insert.table.name in INSERT_OWNER:
                # `todos.completions._check_off` writes the owner's id from the scoping parameter
                owner = params.get(INSERT_OWNER[insert.table.name], params.get(OWNER))
                assert str(owner) in ids, str(statement)
                if OWNER in params:
                    assert params[OWNER] == owner
        guarded += bool(tables & GUARDS.keys())
    assert guarded > 100


async def test_only_housekeeping_statements_span_users(base_settings: dict[str, Any], recorder: Recorder) -> None:
    """The purges are the statements marked `all_users` (requests never are: see above), and they
    touch nothing but expiring records."""
    settings = load_settings(**{**base_settings, "rate_limit_requests": 100})
    engine = create_engine(settings)
    try:
        db = database(settings, engine)
        await maintenance.purge_once(db, build_rate_limiter(settings, db), timedelta(hours=24))
    finally:
        await engine.dispose()
    assert len(recorder.seen) == 6  # no tombstone was old enough to move a horizon
    for statement, _ in recorder.seen:
        assert statement.get_execution_options().get("all_users") is True
        assert _tables(statement) <= {
            IdempotencyKey.__tablename__,
            RateLimitWindow.__tablename__,
            DeletedAccount.__tablename__,
            Todo.__tablename__,
            TodoList.__tablename__,
            SyncTombstone.__tablename__,
            SyncHorizon.__tablename__,
        }
