from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
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
