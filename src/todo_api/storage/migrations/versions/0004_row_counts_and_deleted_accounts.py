"""row counts per user (quotas) and deleted-account tombstones

Each user row carries its number of todos and lists, kept by statement-level triggers on every
insert and delete (cascades and bulk loads included), so a quota is checked in the same statement
that inserts, under the user row's lock, in O(1): it holds across workers and replicas.
`deleted_accounts` remembers for a few minutes when an account was deleted, so a write that raced
with the deletion can be told apart from one sent later with a stale per-worker identity cache.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = (("todos", "todo_count"), ("lists", "list_count"))


def _count_function(table: str, counter: str) -> str:
    """One function per counted table; `changed` is the statement's transition table."""
    return f"""
CREATE FUNCTION {table}_row_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET {counter} = users.{counter} + per_user.delta
    FROM (
        SELECT user_id, CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END AS delta
        FROM changed GROUP BY user_id
    ) AS per_user
    WHERE users.id = per_user.user_id;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    for table, counter in COUNTED:
        op.add_column("users", sa.Column(counter, sa.Integer(), server_default="0", nullable=False))
        op.execute(
            f"UPDATE users SET {counter} = counted.n "
            f"FROM (SELECT user_id, count(*) AS n FROM {table} GROUP BY user_id) AS counted "
            "WHERE users.id = counted.user_id"
        )
        op.execute(_count_function(table, counter))
        op.execute(
            f"CREATE TRIGGER {table}_count_inserted AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {table}_row_count()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_count_deleted AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {table}_row_count()"
        )
    op.create_table(
        "deleted_accounts",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deleted_accounts")),
    )
    op.create_index("ix_deleted_accounts_deleted_at", "deleted_accounts", ["deleted_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deleted_accounts_deleted_at", table_name="deleted_accounts")
    op.drop_table("deleted_accounts")
    for table, counter in COUNTED:
        op.execute(f"DROP TRIGGER {table}_count_deleted ON {table}")
        op.execute(f"DROP TRIGGER {table}_count_inserted ON {table}")
        op.execute(f"DROP FUNCTION {table}_row_count()")
        op.drop_column("users", counter)
