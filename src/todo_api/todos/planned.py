"""The planner's part of todo writes (issue 15): hierarchy, position, schedule, completion.

A write that touches none of `FIELDS` stays the one-statement UPDATE of `todos.service`. One that
does runs here, in its unit of work:
1. the account lock when the todo's place may change (`parent_id`, `list_id`), then the todo's row
   lock (its state, and If-Match checked against it);
2. the new place (`placement`), a position last in a new sibling group (`positions`), the
   schedule (`recurring`);
3. completing a recurring todo advances it instead (it stays open), and reopens its subtasks for
   the next occurrence (Todoist's behaviour); completing an ordinary todo completes its open
   subtasks; each completion is recorded (`completions`), a reopening forgets its own;
4. ONE UPDATE of the todo, then its subtasks follow (list, level), then reminders' firing
   instants are rewritten for every todo whose reminders, due date or state changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlmodel import Session

from todo_api.errors import NotFound
from todo_api.http.conditional import Precondition, accepted, ensure_matches
from todo_api.reminders import service as reminders
from todo_api.storage.faults import is_second_run
from todo_api.todos import completions, positions, recurring, tree
from todo_api.todos.placement import Placement, follow, place
from todo_api.todos.positions import Group
from todo_api.todos.repository import PlannerValues, TodoRecord, TodoRepository
from todo_api.todos.tree import TodoState
from todo_api.users import service as users

FIELDS = frozenset({"parent_id", "list_id", "completed", *recurring.SCHEDULE_FIELDS})
PLACE_FIELDS = frozenset({"parent_id", "list_id"})


def prepare_create(session: Session, user_id: uuid.UUID, values: PlannerValues) -> PlannerValues:
    """A new todo's place (under the account lock: last of its group), position and schedule. A
    recurring todo sent as completed is created open, then completed (`finish_create`)."""
    fields = {name: values[name] for name in PLACE_FIELDS if name in values}  # type: ignore[literal-required]
    if fields.get("parent_id") is None and not is_second_run(session):
        placement = place(session, user_id, None, fields)  # top level: no statement
        position = positions.last_key_in_turn(session, user_id, placement.group)
    else:  # a parent's place is read under the turn
        users.lock_account(session, user_id)
        placement = place(session, user_id, None, fields)
        position = positions.last_key(session, user_id, placement.group)
    planned: PlannerValues = {**values, **placement.values()}  # type: ignore[typeddict-item]
    planned["position"] = position
    planned.update(recurring.schedule(None, values))  # type: ignore[typeddict-item]
    if planned.get("recurrence") is not None:
        planned["completed"] = False
    return planned


def finish_create(session: Session, user_id: uuid.UUID, created: TodoRecord, completed: bool) -> TodoRecord:
    """Record the completion of a todo created completed (or complete a recurring one); fires."""
    if completed and created.recurrence is not None:
        return update(session, user_id, created.id, {"completed": True}, None)
    if created.completed:
        completions.record(session, user_id, [(created.id, created.due_at)])
    if created.reminders:
        reminders.refresh(session, user_id, [created.id])
    return created


def update(
    session: Session,
    user_id: uuid.UUID,
    todo_id: uuid.UUID,
    values: PlannerValues,
    precondition: Precondition[int] | None,
) -> TodoRecord:
    """Apply `values` (column values of the fields sent) as described in the module docstring."""
    if values.keys() & FIELDS == {"completed"}:
        plain = _complete_plain(session, user_id, todo_id, values, precondition)
        if plain is not None:
            return plain
    moving = bool(values.keys() & PLACE_FIELDS)
    if moving:
        users.lock_account(session, user_id)
    state = tree.lock_todo(session, user_id, todo_id)
    if state is None:
        raise NotFound
    ensure_matches(precondition, state.version)
    planned: dict[str, Any] = dict(values)
    placement = _placement(session, user_id, state, planned) if moving else None
    if values.keys() & recurring.SCHEDULE_FIELDS:
        planned.update(recurring.schedule(state, planned))
    advanced = _advance(state, planned)
    record = TodoRepository(session, user_id).update(todo_id, planned)  # type: ignore[arg-type]
    if record is None:  # locked above: cannot happen
        raise NotFound
    if placement is not None:
        follow(session, user_id, state, placement)
    touched = _completion(session, user_id, state, record, planned, advanced)
    changed = values.keys() & (recurring.SCHEDULE_FIELDS | {"completed"})
    if touched or (changed and (state.reminders or record.reminders)):
        reminders.refresh(session, user_id, [todo_id, *touched])
    return record


def _complete_plain(
    session: Session,
    user_id: uuid.UUID,
    todo_id: uuid.UUID,
    values: PlannerValues,
    precondition: Precondition[int] | None,
) -> TodoRecord | None:
    """Checking off (or reopening) a todo with no series, subtasks or reminders, the common write:
    one statement with its history row, no row lock read first. None: take the general path (which
    also answers 404 and 412)."""
    return completions.check_off(session, user_id, todo_id, values, accepted(precondition))


def _placement(session: Session, user_id: uuid.UUID, state: TodoState, planned: dict[str, Any]) -> Placement:
    placement = place(session, user_id, state, planned)
    planned.update(placement.values())
    if placement.group != Group(state.list_id, state.parent_id):
        planned["position"] = positions.last_key(session, user_id, placement.group)
    return placement


class Advanced(NamedTuple):
    """A recurring todo moved on to its next occurrence; `due_at` is the one completed."""

    due_at: datetime | None


def _advance(state: TodoState, planned: dict[str, Any]) -> Advanced | None:
    """Completing a recurring todo: move `planned` to the next occurrence (it stays open); None
    when the write does not advance a series."""
    if planned.get("completed") is not True or state.completed:
        return None
    rule = planned.get("recurrence", state.recurrence)
    if rule is None:
        return None
    due_at = planned.get("due_at", state.due_at)
    local = planned.get("recurrence_local", state.recurrence_local)
    index = planned.get("recurrence_index", state.recurrence_index)
    following = recurring.next_due(rule, planned.get("time_zone", state.time_zone), local, index, due_at)
    if following is None:
        return None  # the series has ended: the todo completes for real
    occurrence = following.occurrence
    planned |= {
        "completed": False,
        "due_at": following.due_at,
        "recurrence_local": occurrence.local,
        "recurrence_index": occurrence.index,
    }
    return Advanced(due_at)


def _completion(
    session: Session,
    user_id: uuid.UUID,
    state: TodoState,
    record: TodoRecord,
    planned: dict[str, Any],
    advanced: Advanced | None,
) -> list[uuid.UUID]:
    """History rows and the subtasks' completion; the subtasks whose state changed."""
    if advanced is not None:  # a recurring todo moved on: its subtasks start over
        completions.record(session, user_id, [(state.id, advanced.due_at)])
        return tree.reopen_descendants(session, user_id, state.id) if state.has_children else []
    if record.completed and not state.completed:
        done = tree.complete_descendants(session, user_id, state.id) if state.has_children else []
        completions.record(session, user_id, [(state.id, record.due_at), *done])
        return [child for child, _ in done]
    if state.completed and not record.completed and "completed" in planned:
        completions.undo(session, user_id, state.id, state.completed_at)
    return []
