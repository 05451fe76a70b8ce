"""Incremental sync that never misses a change.

**Why not timestamps.** `updated_at` is the writing transaction's start time (`now()`), but
transactions commit in another order: a write stamped 10:00:00.100 can commit after a sync that
read everything up to 10:00:00.200 committed; the next sync asks for "after 10:00:00.200" and the
write is skipped for good.

**Transaction ids.** Every write stamps its row with the writing transaction's id (`change_xid`,
xid8, set by a trigger: migration 0005). A sync first reads `xmin` of its snapshot
(`pg_snapshot_xmin(pg_current_snapshot())`): every transaction with an id below it had ended
before that snapshot, so its effects are visible to this sync's reads (which take their snapshots
after it). A transaction that commits later has an id ≥ xmin — it was running (ids in progress
are ≥ xmin) or had not started. The next sync asks for rows with `change_xid ≥ xmin` and so gets
every row such a transaction wrote, whatever its timestamps. A row may come twice (a transaction
in progress at xmin that committed before the read); it is never skipped. The same holds for the
next snapshot's writes, and so on by induction. Lists are stamped when a todo write changes their
counts (same trigger migration), so a list comes again with its new counts.

**Deletions.** Trashing is an UPDATE (deleted_at set, stamped): the row is reported in `deleted`.
A purged row (trash emptied, expired, or a list's todos with it) leaves a tombstone, stamped by
the purging transaction (trigger on DELETE), reported like a trashed row. Tombstones are forgotten
after TRASH_RETENTION_DAYS; the user's horizon then records the newest forgotten one, and a token
whose round started at or below it (`since ≤ horizon`) could miss deletions: 410, full-sync. The
tombstones are read before the horizon, so a concurrent forgetting is seen by the horizon read if
it hid anything from the tombstone read.

**Pages.** `limit` bounds a response; the rest is read by the next call (`has_more`). The changes
of one round are ordered by (change_xid, rank: lists < todos < tombstones, id) and each page
continues after the previous one's last position. A write committed during the round may land
behind the position (its xid below it) and not be returned by this round, but its id is ≥ the xmin
of the page whose snapshot did not see it, so the next round, which starts from the least xmin of
this round's pages (`round_xmin`), returns it. A full sync (no token) is a round over live rows
from xid 0 and reports no deletions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlmodel import Session

from todo_api.errors import SyncTokenExpired
from todo_api.lists.schemas import ListRead
from todo_api.pagination import MaybeEmpty
from todo_api.sealed import Sealer
from todo_api.sync import token as tokens
from todo_api.sync.repository import SyncRepository
from todo_api.sync.token import Position, SyncState
from todo_api.todos.schemas import todo_document

_LIST_FIELDS = tuple(ListRead.model_fields)
LIST_RANK, TODO_RANK, TOMBSTONE_RANK = 0, 1, 2


def open_state(
    sealer: Sealer, user_id: uuid.UUID, token: str | None, loc: tuple[str, ...] = tokens.SYNC_TOKEN_LOC
) -> SyncState:
    return SyncState.start() if token is None else tokens.unseal(sealer, user_id, token, loc)


def _changes(repository: SyncRepository, state: SyncState, limit: int) -> list[tuple[int, int, uuid.UUID, Any]]:
    """Up to limit + 1 changes after the state's position, in (change_xid, rank, id) order; the
    horizon is checked after the tombstones are read (see the module docstring)."""
    position = state.first_position()
    changes = [(row.change_xid, LIST_RANK, row.id, row) for row in repository.lists(state.full, position, limit + 1)]
    changes += [(row.change_xid, TODO_RANK, row.id, row) for row in repository.todos(state.full, position, limit + 1)]
    if not state.full:
        changes += [(row.change_xid, TOMBSTONE_RANK, row.id, row) for row in repository.tombstones(position, limit + 1)]
        horizon = repository.horizon()
        if horizon is not None and state.since <= horizon:
            raise SyncTokenExpired
    changes.sort(key=lambda change: change[:3])
    return changes


def _document(changes: list[tuple[int, int, uuid.UUID, Any]]) -> dict[str, Any]:
    todos: list[dict[str, Any]] = []
    lists: list[dict[str, Any]] = []
    deleted_todos: list[uuid.UUID] = []
    deleted_lists: list[uuid.UUID] = []
    for _, rank, resource_id, row in changes:
        if rank == TOMBSTONE_RANK:
            (deleted_todos if row.kind == "todo" else deleted_lists).append(resource_id)
        elif row.deleted_at is not None:
            (deleted_todos if rank == TODO_RANK else deleted_lists).append(resource_id)
        elif rank == TODO_RANK:
            todos.append(todo_document(row))
        else:
            lists.append(dict(zip(_LIST_FIELDS, row, strict=False)))
    return {"todos": todos, "lists": lists, "deleted": {"todos": deleted_todos, "lists": deleted_lists}}


@dataclass(frozen=True, slots=True)
class SyncPage(MaybeEmpty):
    """A sync response as JSON; `found_nothing` when no row of the account was read (an empty full
    sync: an incremental one reads the user row for its horizon)."""

    body: bytes
    found_nothing: bool


def sync(session: Session, user_id: uuid.UUID, token: str | None, limit: int, sealer: Sealer) -> SyncPage:
    """One page of changes after `token` (None: a full sync), and the token to continue from."""
    state = open_state(sealer, user_id, token)
    repository = SyncRepository(session, user_id)
    xmin = repository.snapshot_xmin()  # first: every later read sees at least what this snapshot saw
    changes = _changes(repository, state, limit)
    round_xmin = min(state.round_xmin, xmin) if state.position is not None else xmin
    page, has_more = changes[:limit], len(changes) > limit
    if has_more:
        xid, rank, last_id, _ = page[-1]
        following = SyncState(state.full, state.since, round_xmin, Position(xid, rank, last_id))
    else:
        following = SyncState(full=False, since=round_xmin, round_xmin=round_xmin, position=None)
    document = _document(page)
    document |= {"sync_token": tokens.seal(sealer, user_id, following), "has_more": has_more}
    return SyncPage(orjson.dumps(document, option=orjson.OPT_UTC_Z), found_nothing=state.full and not page)


def token_now(
    session: Session,
    user_id: uuid.UUID,
    token: str | None,
    sealer: Sealer,
    loc: tuple[str, ...] = ("body", "sync_token"),
) -> str:
    """A token for a batch's response: continuing `token` (the client's own: nothing it has not
    seen is skipped), or, without one, starting at this transaction's snapshot (only what commits
    from the batch on: for a client whose copy was current before it)."""
    if token is not None:
        return tokens.seal(sealer, user_id, open_state(sealer, user_id, token, loc))
    xmin = SyncRepository(session, user_id).snapshot_xmin()
    return tokens.seal(sealer, user_id, SyncState(full=False, since=xmin, round_xmin=xmin, position=None))
