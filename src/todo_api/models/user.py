from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from todo_api.models.base import timestamp, uuid_pk


class User(SQLModel, table=True):
    """An identity from the token issuer, provisioned on its first valid request.

    `subject` is the token's `sub`: an arbitrary string (Auth0 `auth0|…`, Clerk `user_…`),
    unique together with the issuer, never assumed to be a UUID.
    """

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: uuid.UUID = uuid_pk()
    issuer: str = Field(sa_type=Text)
    subject: str = Field(sa_type=Text)
    email: str | None = Field(default=None, sa_type=Text)
    name: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    # Kept by the database (triggers on todos and lists, migration 0004), never written here: what
    # a quota is checked against.
    todo_count: int = Field(default=0, sa_column_kwargs={"server_default": "0", "nullable": False})
    list_count: int = Field(default=0, sa_column_kwargs={"server_default": "0", "nullable": False})


class DeletedAccount(SQLModel, table=True):
    """When an account was deleted, kept for a few minutes (housekeeping purges older ones): a request
    whose user row is gone (by its cached id, or by its identity on a cache miss) arrived either
    before the deletion (it raced with it: refused) or after (a worker's cached identity was stale,
    or the identity is simply back: the account starts afresh)."""

    __tablename__ = "deleted_accounts"
    __table_args__ = (
        Index("ix_deleted_accounts_deleted_at", "deleted_at"),
        Index("ix_deleted_accounts_identity", "issuer", "subject"),
    )

    user_id: uuid.UUID = Field(primary_key=True)
    deleted_at: datetime = Field(sa_type=DateTime(timezone=True))
    # The identity the account belonged to (migration 0007; absent in older tombstones): a request
    # that finds no user row for its identity can tell whether the deletion came after it arrived.
    issuer: str | None = Field(default=None, sa_type=Text)
    subject: str | None = Field(default=None, sa_type=Text)
