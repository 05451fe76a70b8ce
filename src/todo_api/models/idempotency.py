from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, SmallInteger, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from todo_api.models.base import timestamp


class IdempotencyKey(SQLModel, table=True):
    """The stored outcome of a non-idempotent request sent with `Idempotency-Key`.

    Written in the same transaction as the request's effect: both exist, or neither.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    user_id: uuid.UUID = Field(
        primary_key=True, sa_column_args=[ForeignKey("users.id", ondelete="CASCADE")], nullable=False
    )
    key: str = Field(primary_key=True, sa_type=Text)
    request_hash: str = Field(sa_type=Text)
    status_code: int = Field(sa_type=SmallInteger)
    headers: dict[str, Any] = Field(sa_type=JSONB)
    body: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = timestamp()
