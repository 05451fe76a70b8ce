"""The floor's incremental sync (`GET /api/sync?sync_token=…`): what todo-api's sync does, as
literal SQL on the request's connection (one transaction), with todo-api's token codec (the
tokens are todo-api's: the floor opens and seals them with the same CURSOR_SECRET, so one wrk
script serves both): the snapshot's xmin, then lists, todos and tombstones after the token's
position in (change_xid, id) order, each on its `(user_id, change_xid, id)` index, the user's
horizon, one merged page and the next token."""

from __future__ import annotations

import os
import uuid
from typing import Any
from urllib.parse import parse_qs

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from bench.floorwork import PRIORITIES, Response, error, json_response
from todo_api.errors import AppError
from todo_api.sealed import Sealer
from todo_api.sync import token as tokens
from todo_api.sync.token import Position, SyncState

SELECT_XMIN = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin"
SYNC_LISTS = (
    "SELECT l.id, l.name, l.created_at, l.updated_at,"
    " (SELECT count(*) FROM todos t WHERE t.user_id = l.user_id AND t.list_id = l.id AND t.deleted_at IS NULL)"
    " AS todo_count,"
    " (SELECT count(*) FROM todos t WHERE t.user_id = l.user_id AND t.list_id = l.id AND t.deleted_at IS NULL"
    " AND NOT t.completed) AS open_count, l.position, l.deleted_at, l.change_xid::text AS change_xid"
    " FROM lists l WHERE l.user_id = %s AND (l.change_xid, l.id) > (%s::xid8, %s)"
    " ORDER BY l.change_xid, l.id LIMIT %s"
)
SYNC_TODOS = (
    "SELECT id, title, description, completed, completed_at, due_at, priority, tags, list_id, created_at, updated_at,"
    " parent_id, position, recurrence, time_zone, reminders,"
    " deleted_at, change_xid::text AS change_xid FROM todos WHERE user_id = %s AND (change_xid, id) > (%s::xid8, %s)"
    " ORDER BY change_xid, id LIMIT %s"
)
SYNC_TOMBSTONES = (
    "SELECT id, kind, change_xid::text AS change_xid FROM sync_tombstones"
    " WHERE user_id = %s AND (change_xid, id) > (%s::xid8, %s) ORDER BY change_xid, id LIMIT %s"
)
SYNC_HORIZON = "SELECT purged_xid::text AS purged_xid FROM sync_horizons WHERE user_id = %s"
_SEALER: list[Sealer] = []


def start() -> None:
    """At the floor's startup: the sealer of todo-api's tokens (CURSOR_SECRET, as todo-api reads it)."""
    _SEALER[:] = [Sealer([os.environ["CURSOR_SECRET"]], purpose="cursor")]


def _sealer() -> Sealer:
    return _SEALER[0]


async def _rows(
    connection: AsyncConnection[DictRow], statement: str, user_id: uuid.UUID, position: Position, rank: int, limit: int
) -> list[DictRow]:
    params = (user_id, str(position.xid), position.after_id(rank), limit)
    return await (await connection.execute(statement, params)).fetchall()


def _state(user_id: uuid.UUID, query: dict[str, list[str]]) -> tuple[SyncState, int] | None:
    try:
        limit = min(max(int(query.get("limit", ["500"])[0]), 1), 1000)
        token = query.get("sync_token", [None])[0]
        return (SyncState.start() if token is None else tokens.unseal(_sealer(), user_id, token)), limit
    except (ValueError, AppError):
        return None


async def sync(connection: AsyncConnection[DictRow], user_id: uuid.UUID, query_string: bytes) -> Response:
    opened = _state(user_id, parse_qs(query_string.decode("latin-1")))
    if opened is None:
        return error(422, "Invalid sync_token")
    state, limit = opened
    xmin = int((await (await connection.execute(SELECT_XMIN)).fetchone() or {"xmin": 0})["xmin"])
    position = state.first_position()
    changes: list[tuple[int, int, uuid.UUID, Any]] = []
    for rank, statement in ((0, SYNC_LISTS), (1, SYNC_TODOS), (2, SYNC_TOMBSTONES)):
        if rank == 2 and state.full:
            break
        for row in await _rows(connection, statement, user_id, position, rank, limit + 1):
            if rank < 2 and state.full and row["deleted_at"] is not None:
                continue
            changes.append((int(row["change_xid"]), rank, row["id"], row))
    if not state.full:
        horizon = await (await connection.execute(SYNC_HORIZON, (user_id,))).fetchone()
        if horizon is not None and state.since <= int(horizon["purged_xid"]):
            return error(410, "sync_token_expired")
    changes.sort(key=lambda change: change[:3])
    return json_response(200, _document(user_id, state, xmin, changes, limit))


def _document(user_id: uuid.UUID, state: SyncState, xmin: int, changes: list[Any], limit: int) -> dict[str, Any]:
    page, has_more = changes[:limit], len(changes) > limit
    round_xmin = min(state.round_xmin, xmin) if state.position is not None else xmin
    if has_more:
        xid, rank, last_id, _ = page[-1]
        following = SyncState(state.full, state.since, round_xmin, Position(xid, rank, last_id))
    else:
        following = SyncState(False, round_xmin, round_xmin, None)
    todos: list[Any] = []
    lists: list[Any] = []
    deleted_todos: list[uuid.UUID] = []
    deleted_lists: list[uuid.UUID] = []
    for _, rank, resource_id, row in page:
        gone = rank == 2 or row["deleted_at"] is not None
        kind = row["kind"] if rank == 2 else ("todo" if rank == 1 else "list")
        if gone:
            (deleted_todos if kind == "todo" else deleted_lists).append(resource_id)
            continue
        del row["deleted_at"], row["change_xid"]
        if rank == 1:
            row["priority"] = PRIORITIES[row["priority"]]
            todos.append(row)
        else:
            lists.append(row)
    return {
        "todos": todos,
        "lists": lists,
        "deleted": {"todos": deleted_todos, "lists": deleted_lists},
        "sync_token": tokens.seal(_sealer(), user_id, following),
        "has_more": has_more,
    }
