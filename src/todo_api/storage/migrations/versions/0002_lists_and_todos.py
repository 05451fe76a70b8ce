"""lists and todos

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lists",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 100", name=op.f("ck_lists_name_length")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_lists_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lists")),
        sa.UniqueConstraint("id", "user_id", name=op.f("uq_lists_id_user_id")),
    )
    op.create_index("ix_lists_user_id_created_at_id", "lists", ["user_id", "created_at", "id"], unique=False)
    op.create_index("uq_lists_user_id_lower_name", "lists", ["user_id", sa.literal_column("lower(name)")], unique=True)
    op.create_table(
        "todos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("list_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("completed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("tag_keys", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("cardinality(tags) <= 20", name=op.f("ck_todos_tags_count")),
        sa.CheckConstraint("char_length(description) <= 10000", name=op.f("ck_todos_description_length")),
        sa.CheckConstraint("char_length(title) BETWEEN 1 AND 500", name=op.f("ck_todos_title_length")),
        sa.CheckConstraint("completed = (completed_at IS NOT NULL)", name=op.f("ck_todos_completed_at_matches")),
        sa.CheckConstraint("priority BETWEEN 0 AND 3", name=op.f("ck_todos_priority_range")),
        sa.ForeignKeyConstraint(
            ["list_id", "user_id"],
            ["lists.id", "lists.user_id"],
            name="fk_todos_list_id_user_id_lists",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_todos_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_todos")),
    )
    op.create_index("ix_todos_list_id_completed", "todos", ["list_id", "completed"], unique=False)
    op.create_index("ix_todos_tag_keys", "todos", ["tag_keys"], unique=False, postgresql_using="gin")
    op.create_index("ix_todos_user_id_created_at_id", "todos", ["user_id", "created_at", "id"], unique=False)
    op.create_index(
        "ix_todos_user_id_due_asc_id",
        "todos",
        ["user_id", sa.literal_column("coalesce(due_at, 'infinity'::timestamp with time zone)"), "id"],
        unique=False,
    )
    op.create_index(
        "ix_todos_user_id_due_desc_id",
        "todos",
        ["user_id", sa.literal_column("coalesce(due_at, '-infinity'::timestamp with time zone)"), "id"],
        unique=False,
    )
    op.create_index(
        "ix_todos_user_id_lower_title_id", "todos", ["user_id", sa.literal_column("lower(title)"), "id"], unique=False
    )
    op.create_index("ix_todos_user_id_priority_id", "todos", ["user_id", "priority", "id"], unique=False)
    op.create_index("ix_todos_user_id_updated_at_id", "todos", ["user_id", "updated_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_todos_user_id_updated_at_id", table_name="todos")
    op.drop_index("ix_todos_user_id_priority_id", table_name="todos")
    op.drop_index("ix_todos_user_id_lower_title_id", table_name="todos")
    op.drop_index("ix_todos_user_id_due_desc_id", table_name="todos")
    op.drop_index("ix_todos_user_id_due_asc_id", table_name="todos")
    op.drop_index("ix_todos_user_id_created_at_id", table_name="todos")
    op.drop_index("ix_todos_tag_keys", table_name="todos", postgresql_using="gin")
    op.drop_index("ix_todos_list_id_completed", table_name="todos")
    op.drop_table("todos")
    op.drop_index("uq_lists_user_id_lower_name", table_name="lists")
    op.drop_index("ix_lists_user_id_created_at_id", table_name="lists")
    op.drop_table("lists")
