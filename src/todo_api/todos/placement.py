"""Where a todo goes in the hierarchy when a write names a `parent_id` and/or a `list_id`.

Rules (README, "Subtasks"):
- a parent is one of the user's todos (else 422, the same body for a foreign and a missing id,
  like a foreign `list_id`); the todo takes the parent's list. A `list_id` sent with it must be
  that list (else 422);
- a `list_id` alone, on a subtask, takes it out of its parent: it becomes a top-level todo of that
  list, with its own subtasks (moving a parent's list moves its whole subtree);
- no cycles (a todo under itself or one of its subtasks) and at most four levels
  (`depth` 0..`MAX_DEPTH`) counting the moved todo's own subtasks: else 422.
Callers hold the account lock, so the tree read here is the tree written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from todo_api.errors import InvalidInput
from todo_api.models.todo import MAX_DEPTH
from todo_api.todos import tree
from todo_api.todos.positions import Group
from todo_api.todos.tree import TodoState

PARENT_LOC = ("body", "parent_id")


def parent_not_found(parent_id: object) -> InvalidInput:
    return InvalidInput(PARENT_LOC, "Parent not found", str(parent_id))


@dataclass(frozen=True, slots=True)
class Placement:
    list_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    depth: int

    @property
    def group(self) -> Group:
        return Group(self.list_id, self.parent_id)

    def values(self) -> dict[str, Any]:
        return {"list_id": self.list_id, "parent_id": self.parent_id, "depth": self.depth}


def place(session: Session, user_id: uuid.UUID, state: TodoState | None, fields: Mapping[str, Any]) -> Placement:
    """The todo's place after a write of `fields` (only `parent_id`/`list_id` matter; a key that is
    absent is "unchanged"). `state` is None for a new todo."""
    current = Placement(None, None, 0) if state is None else Placement(state.list_id, state.parent_id, state.depth)
    if "parent_id" in fields and fields["parent_id"] is not None:
        return _under(session, user_id, state, fields["parent_id"], fields)
    list_id = fields.get("list_id", current.list_id)
    if "parent_id" in fields or current.parent_id is None or list_id != current.list_id:
        return Placement(list_id, None, 0)  # top level (a subtask sent to another list leaves its parent)
    return current


def _under(
    session: Session, user_id: uuid.UUID, state: TodoState | None, parent_id: uuid.UUID, fields: Mapping[str, Any]
) -> Placement:
    parent = tree.parent_place(session, user_id, parent_id)
    if parent is None:
        raise parent_not_found(parent_id)
    if "list_id" in fields and fields["list_id"] != parent.list_id:
        raise InvalidInput(PARENT_LOC, "The parent is in another list", str(parent_id))
    depth = parent.depth + 1
    height = 0
    if state is not None:
        deepest, cycle = tree.subtree_shape(session, user_id, state.id, parent_id)
        if cycle:
            raise InvalidInput(
                PARENT_LOC, "A todo cannot be placed under itself or one of its subtasks", str(parent_id)
            )
        height = deepest - state.depth
    if depth + height > MAX_DEPTH:
        message = f"Subtasks nest at most {MAX_DEPTH + 1} levels deep (this would make {depth + height + 1})"
        raise InvalidInput(PARENT_LOC, message, str(parent_id))
    return Placement(parent.list_id, parent_id, depth)


def follow(session: Session, user_id: uuid.UUID, state: TodoState, placement: Placement) -> None:
    """After the todo's own write: its subtasks follow it to its list and level."""
    shift = placement.depth - state.depth
    if state.has_children and (placement.list_id != state.list_id or shift):
        tree.move_descendants(session, user_id, state.id, placement.list_id, shift)
