"""Trash storage: the owner's trashed todos and lists (`owned_*()` with `deleted_at` set), their
keyset pages, restores, purges. Built like the resource repositories: SQLModel statements, once per
shape, bind parameters for every value, columns rather than entities."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Interval, Uuid, bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select, update

from todo_api.errors import violated_constraint
from todo_api.lists.repository import TRASHED_COUNTS, UNIQUE_NAME
from todo_api.models import Todo, TodoList, User
from todo_api.models.scoping import OWNER, owned_lists, owned_todos, the_owner
from todo_api.pagination import Position, SortSpec, by_time, page_params
from todo_api.todos.repository import TodoRecord

_NO_SYNC = {"synchronize_session": False}


class DuplicateNameError(Exception):
    """A live list already has the name of the list being restored."""


class Allowance(NamedTuple):
    """The owner's live row counts, read under the user row's lock (quotas)."""

    todo_count: int
    list_count: int


class TrashedTodo(NamedTuple):
    list_id: uuid.UUID | None
    list_trashed: bool  # its list is in the trash too
    parent_trashed: bool  # its parent is in the trash too
    deleted_at: datetime


class TrashedList(NamedTuple):
    id: uuid.UUID
    todos: int  # todos it took with it


def _spec(model: Any) -> SortSpec:
    """Newest deletion first; both kinds share one order (and one cursor)."""
    return by_time("-deleted_at", col(model.deleted_at), col(model.id))


TODO_SPEC, LIST_SPEC = _spec(Todo), _spec(TodoList)
_TARGET = bindparam("target", type_=Uuid())
TRASHED_TODOS = owned_todos() & col(Todo.deleted_at).is_not(None)
TRASHED_LISTS = owned_lists() & col(TodoList.deleted_at).is_not(None)
# Items of the trash: lists, and todos deleted on their own (a list's todos, and a todo's subtasks,
# come back with it).
_TODO_FIELDS = [col(getattr(Todo, name)) for name in TodoRecord._fields if name != "version"]
_LIST_FIELDS = [col(TodoList.id), col(TodoList.name), col(TodoList.created_at), col(TodoList.updated_at)]
_ON_ITS_OWN = col(Todo.deleted_with_list).is_(False) & col(Todo.deleted_with_parent).is_(False)
_TODO_PAGES = TODO_SPEC.pages(_TODO_FIELDS, TRASHED_TODOS & _ON_ITS_OWN)
_LIST_PAGES = LIST_SPEC.pages([*_LIST_FIELDS, *TRASHED_COUNTS, col(TodoList.position)], TRASHED_LISTS)

_ALLOWANCE = select(col(User.todo_count), col(User.list_count)).where(the_owner()).with_for_update()
_LIST_STATE = select(col(TodoList.deleted_at)).where(owned_lists(), col(TodoList.id) == bindparam("list_id"))
_TODO = select(col(Todo.id), col(Todo.list_id), col(Todo.parent_id), col(Todo.deleted_at)).where(
    TRASHED_TODOS, col(Todo.id) == _TARGET
)
_PARENT_STATE = select(col(Todo.deleted_at)).where(owned_todos(), col(Todo.id) == bindparam("parent_id"))
_LIST = select(col(TodoList.id)).where(TRASHED_LISTS, col(TodoList.id) == _TARGET)
_WITH_LIST = owned_todos() & col(Todo.deleted_with_list).is_(True) & (col(Todo.list_id) == _TARGET)
_TAKEN = select(func.count()).select_from(Todo).where(_WITH_LIST)
_BACK = {"deleted_at": None, "updated_at": func.now()}
_RESTORE_TODO = (
    update(Todo)
    .where(TRASHED_TODOS, col(Todo.id) == _TARGET)
    .values(_BACK | {"deleted_with_list": False, "deleted_with_parent": False, "version": col(Todo.version) + 1})
    .execution_options(**_NO_SYNC)
)
_RESTORE_LIST = (
    update(TodoList)
    .where(TRASHED_LISTS, col(TodoList.id) == _TARGET)
    .values(_BACK | {"version": col(TodoList.version) + 1})
    .execution_options(**_NO_SYNC)
)
_RESTORE_LIST_TODOS = (
    update(Todo)
    .where(_WITH_LIST)
    .values(deleted_at=None, deleted_with_list=False, version=col(Todo.version) + 1)
    .execution_options(**_NO_SYNC)
)
_PURGE_TODO = delete(Todo).where(TRASHED_TODOS, col(Todo.id) == _TARGET).returning(col(Todo.id))
_PURGE_LIST = delete(TodoList).where(TRASHED_LISTS, col(TodoList.id) == _TARGET).returning(col(TodoList.id))
_EMPTY_LISTS = delete(TodoList).where(TRASHED_LISTS).execution_options(**_NO_SYNC)  # their todos cascade
_EMPTY_TODOS = delete(Todo).where(TRASHED_TODOS).execution_options(**_NO_SYNC)
# Housekeeping across all users: the trash is kept TRASH_RETENTION_DAYS.
_EXPIRED = func.now() - bindparam("keep", type_=Interval)
_EXPIRE_LISTS = (
    delete(TodoList)
    .where(col(TodoList.deleted_at) < _EXPIRED)
    .execution_options(synchronize_session=False, all_users=True)
)
_EXPIRE_TODOS = (
    delete(Todo).where(col(Todo.deleted_at) < _EXPIRED).execution_options(synchronize_session=False, all_users=True)
)


class TrashRepository:
    def __init__(self, session: Session, user_id: uuid.UUID) -> None:
        self.session = session
        self._owner = {OWNER: user_id}

    def page(self, after: Position | None, limit: int) -> tuple[list[Any], list[Any]]:
        """Up to `limit` trashed todos and up to `limit` trashed lists after `after`, each newest first."""
        params = {**self._owner, **page_params(after, limit)}
        todos = self.session.exec(_TODO_PAGES[after is not None], params=params).all()
        lists = self.session.exec(_LIST_PAGES[after is not None], params=params).all()
        return list(todos), list(lists)

    def allowance(self) -> Allowance | None:
        """The live counts, with the user row locked (creates take turns with this restore)."""
        row = self.session.exec(_ALLOWANCE, params=self._owner).first()
        return None if row is None else Allowance._make(row)

    def trashed_todo(self, todo_id: uuid.UUID) -> TrashedTodo | None:
        found = self.session.exec(_TODO, params={**self._owner, "target": todo_id}).first()
        if found is None:
            return None
        _, list_id, parent_id, deleted_at = found
        if deleted_at is None:  # not in the trash (TRASHED_TODOS says it is): nothing to restore
            return None
        list_trashed = parent_trashed = False
        if list_id is not None:
            list_state = self.session.exec(_LIST_STATE, params={**self._owner, "list_id": list_id}).first()
            list_trashed = list_state is not None
        if parent_id is not None:
            parent_state = self.session.exec(_PARENT_STATE, params={**self._owner, "parent_id": parent_id}).first()
            parent_trashed = parent_state is not None
        return TrashedTodo(list_id, list_trashed, parent_trashed, deleted_at)

    def trashed_list(self, list_id: uuid.UUID) -> TrashedList | None:
        params = {**self._owner, "target": list_id}
        if self.session.exec(_LIST, params=params).first() is None:
            return None
        return TrashedList(list_id, int(self.session.exec(_TAKEN, params=params).one()))

    def restore_todo(self, todo_id: uuid.UUID) -> None:
        self.session.exec(_RESTORE_TODO, params={**self._owner, "target": todo_id})

    def restore_list(self, list_id: uuid.UUID) -> None:
        """The list and the todos it took with it."""
        params = {**self._owner, "target": list_id}
        try:
            self.session.exec(_RESTORE_LIST, params=params)
        except IntegrityError as exc:
            if violated_constraint(exc) == UNIQUE_NAME:
                raise DuplicateNameError from None
            raise
        self.session.exec(_RESTORE_LIST_TODOS, params=params)

    def purge(self, resource_id: uuid.UUID) -> bool:
        """Delete a trashed todo or list (and the list's todos) for good."""
        params = {**self._owner, "target": resource_id}
        if self.session.exec(_PURGE_TODO, params=params).first() is not None:
            return True
        return self.session.exec(_PURGE_LIST, params=params).first() is not None

    def empty(self) -> None:
        self.session.exec(_EMPTY_LISTS, params=self._owner)
        self.session.exec(_EMPTY_TODOS, params=self._owner)


def expire(session: Session, keep: timedelta) -> None:
    """Housekeeping: purge what has been in any user's trash longer than `keep`."""
    session.exec(_EXPIRE_LISTS, params={"keep": keep})
    session.exec(_EXPIRE_TODOS, params={"keep": keep})
