"""planner: subtasks, manual order, recurring todos, reminders, completion history

- todos: `parent_id` (a todo of the same user; deleting a parent deletes its subtree), `depth`
  (0–3, kept by the service), `position` (a fractional key, byte order = the user's order among
  siblings), `recurrence` and `time_zone`, the series state `recurrence_local`/`recurrence_index`,
  `reminders` (the definitions as written).
- lists: `position`.
- todo_completions: one row per completion (history); reminder_fires: each reminder's next firing
  instant, derived by the service in the same unit of work as every write that changes it.

The unique position constraints are DEFERRABLE INITIALLY IMMEDIATE: a rebalance rewrites a whole
sibling group in one UPDATE, which passes through transient duplicates that a plain unique index
refuses row by row. Existing rows get positions per sibling group in `created_at, id` order, from
the `fractional-indexing` package itself (never app code, so this migration's result never changes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import fractional_indexing
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_CHECK = "position ~ '^[0-9A-Za-z]{2,64}$'"


def _backfill(table: str, group: str) -> None:
    """Positions for existing rows, one sibling group at a time, oldest first."""
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, {group} FROM {table} ORDER BY created_at, id")).fetchall()
    groups: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[1:])].append(row[0])
    for ids in groups.values():
        keys = fractional_indexing.generate_n_keys_between(None, None, len(ids))
        connection.execute(
            sa.text(f"UPDATE {table} SET position = :key WHERE id = :id"),
            [{"key": key, "id": id_} for key, id_ in zip(keys, ids, strict=True)],
        )


def _todo_columns() -> None:
    op.add_column("todos", sa.Column("parent_id", sa.Uuid(), nullable=True))
    op.add_column("todos", sa.Column("depth", sa.SmallInteger(), server_default="0", nullable=False))
    op.add_column("todos", sa.Column("position", sa.Text(collation="C"), nullable=True))
    op.add_column("todos", sa.Column("recurrence", sa.Text(), nullable=True))
    op.add_column("todos", sa.Column("time_zone", sa.Text(), server_default="UTC", nullable=False))
    op.add_column("todos", sa.Column("recurrence_local", sa.DateTime(timezone=False), nullable=True))
    op.add_column("todos", sa.Column("recurrence_index", sa.Integer(), server_default="0", nullable=False))
    reminders = sa.Column("reminders", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False)
    op.add_column("todos", reminders)
    # The trash (0005) with subtasks: a todo's subtasks go to the trash with it and come back with it.
    op.add_column(
        "todos", sa.Column("deleted_with_parent", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_unique_constraint(op.f("uq_todos_id_user_id"), "todos", ["id", "user_id"])
    op.create_foreign_key(
        op.f("fk_todos_parent_id_user_id_todos"),
        "todos",
        "todos",
        ["parent_id", "user_id"],
        ["id", "user_id"],
        ondelete="CASCADE",
    )
    checks = {
        "ck_todos_not_own_parent": "parent_id <> id",
        "ck_todos_depth_range": "depth BETWEEN 0 AND 3",
        "ck_todos_position_key": KEY_CHECK,
        "ck_todos_recurrence_length": "char_length(recurrence) <= 500",
        "ck_todos_time_zone_length": "char_length(time_zone) <= 64",
        "ck_todos_reminders_list": "jsonb_typeof(reminders) = 'array' AND jsonb_array_length(reminders) <= 5",
        "ck_todos_recurrence_due": "recurrence IS NULL OR (due_at IS NOT NULL AND recurrence_local IS NOT NULL)",
    }
    for name, condition in checks.items():
        op.create_check_constraint(op.f(name), "todos", condition)
    # Children of a todo in order: the subtree walk, the delete cascade, `parent_id=` pages.
    op.create_index(
        "ix_todos_parent_id_position",
        "todos",
        ["parent_id", "position"],
        postgresql_where=sa.text("parent_id IS NOT NULL"),
    )
    # `completed_after`/`completed_before` and `sort=completed_at`.
    op.create_index(
        "ix_todos_user_id_completed_at_id",
        "todos",
        ["user_id", "completed_at", "id"],
        postgresql_where=sa.text("completed_at IS NOT NULL"),
    )


def upgrade() -> None:
    _todo_columns()
    op.add_column("lists", sa.Column("position", sa.Text(collation="C"), nullable=True))
    op.create_check_constraint(op.f("ck_lists_position_key"), "lists", KEY_CHECK)
    _backfill("todos", "user_id, list_id")
    _backfill("lists", "user_id")
    for table, columns in (("todos", "user_id, list_id, parent_id, position"), ("lists", "user_id, position")):
        op.alter_column(table, "position", nullable=False)
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT uq_{table}_{columns.replace(', ', '_')} "
            f"UNIQUE NULLS NOT DISTINCT ({columns}) DEFERRABLE INITIALLY IMMEDIATE"
        )
    op.create_table(
        "todo_completions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("todo_id", sa.Uuid(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["todo_id", "user_id"],
            ["todos.id", "todos.user_id"],
            name="fk_todo_completions_todo_id_user_id_todos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_todo_completions")),
    )
    op.create_index(
        "ix_todo_completions_todo_id_completed_at_id", "todo_completions", ["todo_id", "completed_at", "id"]
    )
    op.create_table(
        "reminder_fires",
        sa.Column("todo_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("fires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["todo_id", "user_id"],
            ["todos.id", "todos.user_id"],
            name="fk_reminder_fires_todo_id_user_id_todos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("todo_id", "fires_at", name=op.f("pk_reminder_fires")),
    )
    op.create_index("ix_reminder_fires_user_id_fires_at_todo_id", "reminder_fires", ["user_id", "fires_at", "todo_id"])


def downgrade() -> None:
    op.drop_table("reminder_fires")
    op.drop_table("todo_completions")
    op.drop_constraint("uq_lists_user_id_position", "lists")
    op.drop_constraint("ck_lists_position_key", "lists")
    op.drop_column("lists", "position")
    op.drop_index("ix_todos_user_id_completed_at_id", table_name="todos")
    op.drop_index("ix_todos_parent_id_position", table_name="todos")
    op.drop_constraint("uq_todos_user_id_list_id_parent_id_position", "todos")
    op.drop_constraint("fk_todos_parent_id_user_id_todos", "todos")
    op.drop_constraint("uq_todos_id_user_id", "todos")
    for column in (
        "reminders",
        "recurrence_index",
        "recurrence_local",
        "time_zone",
        "recurrence",
        "position",
        "depth",
        "parent_id",
        "deleted_with_parent",
    ):
        op.drop_column("todos", column)
