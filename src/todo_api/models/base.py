"""Shared table conventions: constraint naming (stable Alembic diffs), uuid keys, timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, cast, func, literal
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel
from sqlmodel.sql.expression import Select

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = SQLModel.metadata


def uuid_pk() -> uuid.UUID:
    return Field(default_factory=uuid.uuid4, primary_key=True)  # type: ignore[no-any-return]


def timestamp() -> datetime:
    """A timezone-aware timestamp set by the database clock (`now()`: one clock for every
    replica, and created_at == updated_at for a new row)."""
    return Field(  # type: ignore[no-any-return]
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": func.now(), "nullable": False},
    )


def version_column() -> int:
    """Bumped on every modification; the strong ETag of the row."""
    return Field(default=1, sa_column_kwargs={"server_default": "1", "nullable": False})  # type: ignore[no-any-return]


def timestamp_literal(value: str) -> ColumnElement[datetime]:
    """A timestamptz constant such as 'infinity', inlined into the SQL (index expressions need the
    constant itself, not a bind parameter)."""
    return cast(literal(value, literal_execute=True), DateTime(timezone=True))


def sql_type(attribute: Any) -> TypeEngine[Any]:
    """The SQL type of a model attribute (`Todo.priority` → SMALLINT), for typed bind parameters."""
    kind: TypeEngine[Any] = attribute.type
    return kind


def returned(statement: UpdateBase) -> Select[*tuple[Any, ...]]:
    """`WITH changed AS (<INSERT or UPDATE … RETURNING …>) SELECT * FROM changed`: the rows the
    statement returns, as a SELECT. The same SQL work and the same rows, in one round trip.

    Why: the Session runs an ORM-enabled INSERT or UPDATE as a freshly annotated copy on every
    execution, so SQLAlchemy walks the whole statement again to derive its compiled-cache key
    (110-250 µs per execution for the request path's writes; a check-off's UPDATE is the largest).
    A SELECT keeps the key it derived the first time. Used for the writes of the busy routes
    (create, update, check-off, move); the figures are in bench/README.md.
    """
    # `Select`, not `sqlmodel.select`: with one argument that gives scalars (the first column only).
    return Select(statement.cte("changed"))
