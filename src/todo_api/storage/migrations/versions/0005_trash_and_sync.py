"""trash, change stamps for sync, tombstones of purged resources

- `deleted_at` on todos and lists: a row with it set is in the trash. Every listing index becomes
  partial (`WHERE deleted_at IS NULL`), so the trash costs live queries nothing; the unique list
  name holds among live lists only. `deleted_with_list` marks the todos a list took with it.
- `change_xid` (xid8) on todos and lists: the id of the transaction that last wrote the row, set by
  a BEFORE trigger on every insert and update. Sync reads rows whose `change_xid` is at least the
  xmin of an earlier snapshot (see `todo_api.sync`): unlike timestamps, that never skips a write
  that commits after a sync read.
- A todo write that changes a list's counts (insert, completion, move, trash, restore, live delete)
  stamps that list too, so a sync re-sends the list with its new counts.
- `sync_tombstones`: one row per purged (hard-deleted) todo or list, written by a trigger, so sync
  still reports deletions after the rows are gone. `sync_horizons`: per user, the newest tombstone
  housekeeping has forgotten; older sync tokens answer 410.
- The per-user row counts of 0004 count live rows only (trash decrements, restore increments).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "deleted_at IS NULL"
# (index, table, expressions, unique): the listing indexes of 0002, now on live rows only.
LISTING_INDEXES = (
    ("ix_todos_user_id_created_at_id", "todos", "user_id, created_at, id", False),
    ("ix_todos_user_id_updated_at_id", "todos", "user_id, updated_at, id", False),
    ("ix_todos_user_id_priority_id", "todos", "user_id, priority, id", False),
    ("ix_todos_user_id_lower_title_id", "todos", "user_id, lower(title), id", False),
    ("ix_todos_user_id_due_asc_id", "todos", "user_id, coalesce(due_at, 'infinity'::timestamptz), id", False),
    ("ix_todos_user_id_due_desc_id", "todos", "user_id, coalesce(due_at, '-infinity'::timestamptz), id", False),
    # user_id too: a list's counts (filtered by owner, as every statement is) come from this one
    # index, instead of a bitmap AND with the user's whole (user_id, change_xid, id) range.
    ("ix_todos_list_id_completed", "todos", "list_id, completed, user_id", False),
    ("ix_lists_user_id_created_at_id", "lists", "user_id, created_at, id", False),
    ("uq_lists_user_id_lower_name", "lists", "user_id, lower(name)", True),
)
TABLES = ("todos", "lists")
COUNTERS = (("todos", "todo_count"), ("lists", "list_count"))
KINDS = (("todos", "todo"), ("lists", "list"))


def _create_index(name: str, table: str, expressions: str, unique: bool, where: str | None) -> None:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    op.execute(f"CREATE {kind} {name} ON {table} ({expressions})" + (f" WHERE {where}" if where else ""))


def _stamp() -> None:
    op.execute("""
CREATE FUNCTION stamp_change_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_xid := pg_current_xact_id();
    RETURN NEW;
END
$$""")
    for table in TABLES:
        op.add_column(table, sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        # A volatile default: existing rows get this migration's transaction id.
        op.execute(f"ALTER TABLE {table} ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id()")
        op.execute(
            f"CREATE TRIGGER {table}_stamp_change BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION stamp_change_xid()"
        )
        op.execute(f"CREATE INDEX ix_{table}_user_id_change_xid_id ON {table} (user_id, change_xid, id)")
        op.execute(
            f"CREATE INDEX ix_{table}_user_id_deleted_at_id ON {table} (user_id, deleted_at, id) "
            "WHERE deleted_at IS NOT NULL"
        )
        op.execute(f"CREATE INDEX ix_{table}_deleted_at ON {table} (deleted_at) WHERE deleted_at IS NOT NULL")
    op.add_column(
        "todos", sa.Column("deleted_with_list", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )


def _live_counts() -> None:
    """0004's counters, on live rows only: inserts and deletes of trashed rows change nothing,
    trashing (an UPDATE setting deleted_at) decrements, restoring increments. A user row is written
    only when its count changes, so ordinary updates never lock it."""
    for table, counter in COUNTERS:
        op.execute(f"""
CREATE OR REPLACE FUNCTION {table}_row_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET {counter} = users.{counter} + per_user.delta
    FROM (
        SELECT user_id, CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END AS delta
        FROM changed WHERE deleted_at IS NULL GROUP BY user_id
    ) AS per_user
    WHERE users.id = per_user.user_id;
    RETURN NULL;
END
$$""")
        op.execute(f"""
CREATE FUNCTION {table}_live_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET {counter} = users.{counter} + per_user.delta
    FROM (
        SELECT n.user_id,
               sum((n.deleted_at IS NULL)::int - (o.deleted_at IS NULL)::int) AS delta
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (n.deleted_at IS NULL) <> (o.deleted_at IS NULL)
        GROUP BY n.user_id
    ) AS per_user
    WHERE users.id = per_user.user_id AND per_user.delta <> 0;
    RETURN NULL;
END
$$""")
        op.execute(
            f"CREATE TRIGGER {table}_count_updated AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_live_count()"
        )


def _list_stamps() -> None:
    """A list's representation carries its counts: a todo write that changes them stamps the list."""
    op.execute("""
CREATE FUNCTION todos_touch_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE lists SET change_xid = pg_current_xact_id()
        WHERE id IN (SELECT list_id FROM new_rows WHERE list_id IS NOT NULL);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE lists SET change_xid = pg_current_xact_id()
        WHERE id IN (SELECT list_id FROM old_rows WHERE list_id IS NOT NULL AND deleted_at IS NULL);
    ELSE
        UPDATE lists SET change_xid = pg_current_xact_id()
        WHERE id IN (
            SELECT unnest(ARRAY[o.list_id, n.list_id])
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE o.list_id IS DISTINCT FROM n.list_id OR o.completed <> n.completed
               OR (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)
        );
    END IF;
    RETURN NULL;
END
$$""")
    for event, transitions in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER todos_touch_lists_{event.lower()} AFTER {event} ON todos "
            f"REFERENCING {transitions} FOR EACH STATEMENT EXECUTE FUNCTION todos_touch_lists()"
        )


def _tombstones() -> None:
    op.execute(
        "CREATE TABLE sync_tombstones ("
        " id uuid NOT NULL CONSTRAINT pk_sync_tombstones PRIMARY KEY,"
        " user_id uuid NOT NULL"
        " CONSTRAINT fk_sync_tombstones_user_id_users REFERENCES users (id) ON DELETE CASCADE,"
        " kind text NOT NULL CONSTRAINT ck_sync_tombstones_kind CHECK (kind IN ('todo', 'list')),"
        " change_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),"
        " purged_at timestamptz NOT NULL DEFAULT now())"
    )
    op.create_index("ix_sync_tombstones_user_id_change_xid_id", "sync_tombstones", ["user_id", "change_xid", "id"])
    op.create_index("ix_sync_tombstones_purged_at", "sync_tombstones", ["purged_at"])
    op.execute(
        "CREATE TABLE sync_horizons ("
        " user_id uuid NOT NULL CONSTRAINT pk_sync_horizons PRIMARY KEY"
        " CONSTRAINT fk_sync_horizons_user_id_users REFERENCES users (id) ON DELETE CASCADE,"
        " purged_xid xid8 NOT NULL)"
    )
    for table, kind in KINDS:
        # Only for accounts that still exist: deleting an account cascades to its rows, and its
        # tombstones would outlive it (the account's cascade runs after its user row is gone).
        op.execute(f"""
CREATE FUNCTION {table}_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_tombstones (id, user_id, kind)
    SELECT gone.id, gone.user_id, '{kind}' FROM old_rows AS gone
    WHERE EXISTS (SELECT FROM users WHERE users.id = gone.user_id)
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$""")
        op.execute(
            f"CREATE TRIGGER {table}_tombstone AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_tombstone()"
        )


def upgrade() -> None:
    _stamp()
    for name, table, expressions, unique in LISTING_INDEXES:
        op.drop_index(name, table_name=table)
        _create_index(name, table, expressions, unique, LIVE)
    _live_counts()
    _list_stamps()
    _tombstones()


def downgrade() -> None:
    for table, _ in KINDS:
        op.execute(f"DROP TRIGGER {table}_tombstone ON {table}")
        op.execute(f"DROP FUNCTION {table}_tombstone()")
    op.drop_table("sync_horizons")
    op.drop_table("sync_tombstones")
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER todos_touch_lists_{event} ON todos")
    op.execute("DROP FUNCTION todos_touch_lists()")
    for table, counter in COUNTERS:
        op.execute(f"DROP TRIGGER {table}_count_updated ON {table}")
        op.execute(f"DROP FUNCTION {table}_live_count()")
        op.execute(f"DELETE FROM {table} WHERE deleted_at IS NOT NULL")
        op.execute(f"""
CREATE OR REPLACE FUNCTION {table}_row_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET {counter} = users.{counter} + per_user.delta
    FROM (
        SELECT user_id, CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END AS delta
        FROM changed GROUP BY user_id
    ) AS per_user
    WHERE users.id = per_user.user_id;
    RETURN NULL;
END
$$""")
    for name, table, expressions, unique in LISTING_INDEXES:
        op.drop_index(name, table_name=table)
        _create_index(name, table, expressions.removesuffix(", user_id"), unique, None)
    op.drop_column("todos", "deleted_with_list")
    for table in TABLES:
        op.drop_index(f"ix_{table}_deleted_at", table_name=table)
        op.drop_index(f"ix_{table}_user_id_deleted_at_id", table_name=table)
        op.drop_index(f"ix_{table}_user_id_change_xid_id", table_name=table)
        op.execute(f"DROP TRIGGER {table}_stamp_change ON {table}")
        op.drop_column(table, "change_xid")
        op.drop_column(table, "deleted_at")
    op.execute("DROP FUNCTION stamp_change_xid()")
