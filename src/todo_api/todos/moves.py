"""`POST /api/todos/{todo_id}/move`: put a todo right after a sibling, under a parent, in a list.

One unit of work: the account lock (one user's moves take turns, so the neighbours read are the
neighbours written), the todo's row lock, its new place (`placement`: parent checks, cycles, four
levels), its key between its new neighbours (`positions`), ONE UPDATE of the todo, and its subtasks
following it to another list or level. Siblings are not renumbered, except by the rare rebalance.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from todo_api.errors import InvalidInput, NotFound
from todo_api.http.conditional import Tagged
from todo_api.todos import positions, tree
from todo_api.todos.placement import follow, parent_not_found, place
from todo_api.todos.planner_fields import TodoMove
from todo_api.todos.positions import AfterNotInGroup, Group
from todo_api.todos.repository import ListReferenceError, ParentReferenceError, TodoRepository
from todo_api.todos.schemas import TodoRead
from todo_api.todos.service import ETAG, list_not_found
from todo_api.users import service as users

AFTER_LOC = ("body", "after_id")


def move_todo(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, body: TodoMove) -> Tagged[TodoRead]:
    """Move the todo; 404 unless it is the user's, 422 for a parent, list or `after_id` that is
    not (the same answer for another user's ids as for missing ones)."""
    users.lock_account(session, user_id)
    state = tree.lock_todo(session, user_id, todo_id)
    if state is None:
        raise NotFound
    placement = place(session, user_id, state, body.changes())
    same_group = placement.group == Group(state.list_id, state.parent_id)
    try:
        key = positions.key_after(session, user_id, placement.group, todo_id, body.after_id, same_group=same_group)
    except AfterNotInGroup:
        raise InvalidInput(AFTER_LOC, "No such todo among the target siblings", str(body.after_id)) from None
    values = {**placement.values(), "position": key}
    try:
        record = TodoRepository(session, user_id).update(todo_id, values)  # type: ignore[arg-type]
    except ListReferenceError:
        raise list_not_found(body.list_id) from None
    except ParentReferenceError:
        raise parent_not_found(body.parent_id) from None
    if record is None:  # locked above: cannot happen
        raise NotFound
    follow(session, user_id, state, placement)
    return ETAG.tagged(TodoRead.model_validate(record), record.version)
