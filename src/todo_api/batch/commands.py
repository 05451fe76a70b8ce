"""One handler per command type, each calling the service its REST route calls (same rules, same
errors), with the route's status code. Arguments are parsed here like the route parses its body
and path: a bad argument is the route's 422."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, StrictInt, TypeAdapter, ValidationError
from sqlmodel import Session

from todo_api.batch.schemas import CommandType
from todo_api.errors import AppError, ErrorCode, InvalidInput
from todo_api.http.conditional import ETag, Precondition, PreconditionRequired
from todo_api.lists import moves as list_moves
from todo_api.lists import service as lists
from todo_api.lists.schemas import ListCreate, ListMove, ListUpdate
from todo_api.todos import moves as todo_moves
from todo_api.todos import service as todos
from todo_api.todos.planner_fields import TodoMove
from todo_api.todos.schemas import TodoCreate, TodoUpdate
from todo_api.trash import service as trash
from todo_api.trash.schemas import ResourceKind

PRECONDITION_ARGS = ("if_match", "if_version")
_UUID = TypeAdapter(uuid.UUID)
_VERSION = TypeAdapter(StrictInt)


@dataclass(frozen=True, slots=True)
class Limits:
    """What the server holds every command to: the quotas, and REQUIRE_IF_MATCH (an update or a
    delete without `if_match`/`if_version` is 428, as its route without If-Match)."""

    todos: int
    lists: int
    require_if_match: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    resource: BaseModel | None = None


class ArgumentsInvalid(AppError):
    """422 with FastAPI's validation-error list, as the REST route answers a bad body."""

    status_code = 422
    code = ErrorCode.VALIDATION_FAILED


def _invalid(error: ValidationError, prefix: tuple[str, ...]) -> ArgumentsInvalid:
    return ArgumentsInvalid(
        [
            {"type": item["type"], "loc": [*prefix, *item["loc"]], "msg": item["msg"], "input": item["input"]}
            for item in error.errors(include_url=False)
        ]
    )


def _parse[M: BaseModel](model: type[M], args: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        raise _invalid(exc, ("body",)) from None


def _id(args: Mapping[str, Any], parameter: str) -> uuid.UUID:
    try:
        return _UUID.validate_python(args.get("id"))
    except ValidationError as exc:
        raise _invalid(exc, ("path", parameter)) from None


def _precondition[V](args: Mapping[str, Any], etag: ETag[V], versions: bool, limits: Limits) -> Precondition[V] | None:
    """`if_match`: an ETag as the resource sent it; `if_version` (todos): that ETag's number."""
    if limits.require_if_match and args.get("if_match") is None and "if_version" not in args:
        raise PreconditionRequired
    if "if_version" in args:
        if not versions:
            raise InvalidInput(("body", "if_version"), "Lists take if_match (their ETag)", args["if_version"])
        try:
            return etag.precondition(f'"{_VERSION.validate_python(args["if_version"])}"')
        except ValidationError as exc:
            raise _invalid(exc, ("body", "if_version")) from None
    match = args.get("if_match")
    if match is None:
        return None
    if not isinstance(match, str):
        raise InvalidInput(("body", "if_match"), "An ETag, as a string", match)
    return etag.precondition(match)


def _body(args: Mapping[str, Any], meta: tuple[str, ...] = ("id", *PRECONDITION_ARGS)) -> dict[str, Any]:
    return {name: value for name, value in args.items() if name not in meta}


def todo_add(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    created = todos.create_todo(session, user_id, _parse(TodoCreate, args), limits.todos)
    return Outcome(201, created.item)


def todo_update(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    todo_id, precondition = _id(args, "todo_id"), _precondition(args, todos.ETAG, True, limits)
    updated = todos.update_todo(session, user_id, todo_id, _parse(TodoUpdate, _body(args)), precondition)
    return Outcome(200, updated.item)


def todo_delete(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    todos.delete_todo(session, user_id, _id(args, "todo_id"), _precondition(args, todos.ETAG, True, limits))
    return Outcome(204)


def todo_move(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    todo_id = _id(args, "todo_id")
    # Moves take no precondition (the route reads no If-Match): `if_match` is an unknown field, 422.
    moved = todo_moves.move_todo(session, user_id, todo_id, _parse(TodoMove, _body(args, ("id",))))
    return Outcome(200, moved.item)


def _restore(kind: ResourceKind) -> Callable[[Session, uuid.UUID, Mapping[str, Any], Limits], Outcome]:
    def restore(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
        restored = trash.restore(session, user_id, _id(args, "resource_id"), limits.todos, limits.lists, kind)
        return Outcome(200, restored.item)

    return restore


def list_add(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    created = lists.create_list(session, user_id, _parse(ListCreate, args), limits.lists)
    return Outcome(201, created.item)


def list_update(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    list_id, precondition = _id(args, "list_id"), _precondition(args, lists.ETAG, False, limits)
    updated = lists.update_list(session, user_id, list_id, _parse(ListUpdate, _body(args)), precondition)
    return Outcome(200, updated.item)


def list_delete(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    lists.delete_list(session, user_id, _id(args, "list_id"), _precondition(args, lists.ETAG, False, limits))
    return Outcome(204)


def list_move(session: Session, user_id: uuid.UUID, args: Mapping[str, Any], limits: Limits) -> Outcome:
    list_id = _id(args, "list_id")
    moved = list_moves.relocate(session, user_id, list_id, _parse(ListMove, _body(args, ("id",))))
    return Outcome(200, moved.item)


type Handler = Callable[[Session, uuid.UUID, Mapping[str, Any], Limits], Outcome]
HANDLERS: dict[CommandType, Handler] = {
    CommandType.TODO_ADD: todo_add,
    CommandType.TODO_UPDATE: todo_update,
    CommandType.TODO_DELETE: todo_delete,
    CommandType.TODO_RESTORE: _restore(ResourceKind.TODO),
    CommandType.TODO_MOVE: todo_move,
    CommandType.LIST_ADD: list_add,
    CommandType.LIST_UPDATE: list_update,
    CommandType.LIST_DELETE: list_delete,
    CommandType.LIST_RESTORE: _restore(ResourceKind.LIST),
    CommandType.LIST_MOVE: list_move,
}
