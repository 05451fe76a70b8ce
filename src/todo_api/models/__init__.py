"""SQLModel tables. Importing this package registers every table on `metadata` (Alembic's target)."""

from todo_api.models.base import metadata
from todo_api.models.idempotency import IdempotencyKey
from todo_api.models.planner import ReminderFire, TodoCompletion
from todo_api.models.rate_limit import RateLimitWindow
from todo_api.models.sync import SyncHorizon, SyncTombstone
from todo_api.models.todo import Todo
from todo_api.models.todo_list import TodoList
from todo_api.models.user import DeletedAccount, User

__all__ = [
    "DeletedAccount",
    "IdempotencyKey",
    "RateLimitWindow",
    "ReminderFire",
    "SyncHorizon",
    "SyncTombstone",
    "Todo",
    "TodoCompletion",
    "TodoList",
    "User",
    "metadata",
]
