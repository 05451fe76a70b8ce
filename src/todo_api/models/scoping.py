"""Owner filters: the one predicate every statement on a user-owned table starts from.

One function per model. Each compares the owner column with the bind parameter `owner`, so a
statement is built once (with the filter in it) and the repository binds the owner's id on every
execution. `tests/test_scoping.py` runs the API and fails if any statement on these tables lacks
its model's filter.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Uuid, bindparam
from sqlmodel import col

from todo_api.models.idempotency import IdempotencyKey
from todo_api.models.planner import ReminderFire, TodoCompletion
from todo_api.models.rate_limit import RateLimitWindow
from todo_api.models.sync import SyncHorizon, SyncTombstone
from todo_api.models.todo import Todo
from todo_api.models.todo_list import TodoList
from todo_api.models.user import DeletedAccount, User

OWNER = "owner"  # the bind parameter holding the owner's user id
ISSUER, SUBJECT = "issuer", "subject"  # users are reached by their verified identity
SUBJECT_KEY = "subject_key"  # rate-limit windows: a hash of the identity (see ratelimit)


def _owner() -> ColumnElement[object]:
    return bindparam(OWNER, type_=Uuid())


def owned_todos() -> ColumnElement[bool]:
    return col(Todo.user_id) == _owner()


def owned_lists() -> ColumnElement[bool]:
    return col(TodoList.user_id) == _owner()


def live_todos() -> ColumnElement[bool]:
    """The owner's todos outside the trash: what every todo route and listing sees."""
    return owned_todos() & col(Todo.deleted_at).is_(None)


def live_lists() -> ColumnElement[bool]:
    """The owner's lists outside the trash."""
    return owned_lists() & col(TodoList.deleted_at).is_(None)


def owned_tombstones() -> ColumnElement[bool]:
    return col(SyncTombstone.user_id) == _owner()


def owned_horizon() -> ColumnElement[bool]:
    return col(SyncHorizon.user_id) == _owner()


def owned_completions() -> ColumnElement[bool]:
    return col(TodoCompletion.user_id) == _owner()


def owned_reminder_fires() -> ColumnElement[bool]:
    return col(ReminderFire.user_id) == _owner()


def owned_idempotency_keys() -> ColumnElement[bool]:
    return col(IdempotencyKey.user_id) == _owner()


def the_user() -> ColumnElement[bool]:
    """The user row of the token's identity (issuer, subject)."""
    return (col(User.issuer) == bindparam(ISSUER)) & (col(User.subject) == bindparam(SUBJECT))


def the_owner() -> ColumnElement[bool]:
    """The user row of the owner id a request resolved its identity to."""
    return col(User.id) == _owner()


def owned_deleted_accounts() -> ColumnElement[bool]:
    return col(DeletedAccount.user_id) == _owner()


def deleted_identities() -> ColumnElement[bool]:
    """Tombstones of the token's identity (an account deleted, possibly since replaced)."""
    return (col(DeletedAccount.issuer) == bindparam(ISSUER)) & (col(DeletedAccount.subject) == bindparam(SUBJECT))


def owned_rate_limit_windows() -> ColumnElement[bool]:
    return col(RateLimitWindow.subject_key) == bindparam(SUBJECT_KEY)
