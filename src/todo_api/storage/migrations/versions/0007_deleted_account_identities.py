"""deleted-account tombstones remember the identity (issuer, subject) too

A request that arrived before an account's deletion but reached the database only after it (it
waited for a connection) on a worker that had never cached the identity finds no user row. Without
the identity in the tombstone it could not tell that case from a request sent after the deletion,
and would provision a fresh account for a write the deletion should have refused. Tombstones live
for minutes (`users.service.TOMBSTONE_RETENTION`); rows written before this revision have no
identity and are never matched by it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deleted_accounts", sa.Column("issuer", sa.Text(), nullable=True))
    op.add_column("deleted_accounts", sa.Column("subject", sa.Text(), nullable=True))
    op.create_index("ix_deleted_accounts_identity", "deleted_accounts", ["issuer", "subject"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deleted_accounts_identity", table_name="deleted_accounts")
    op.drop_column("deleted_accounts", "subject")
    op.drop_column("deleted_accounts", "issuer")
