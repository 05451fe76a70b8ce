"""Shared table conventions: constraint naming (stable Alembic diffs), uuid keys, timestamps."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Table, bindparam, func
from sqlmodel import Field, SQLModel

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


def versioned_changes(table: Table, fields: Iterable[str]) -> dict[str, Any]:
    """The SET of an UPDATE on a versioned, timestamped table: each of `fields` from a bind
    parameter `new_<field>` (see `new_values`), `updated_at` now, `version` bumped."""
    changes: dict[str, Any] = {name: bindparam(f"new_{name}", type_=table.c[name].type) for name in fields}
    return changes | {"updated_at": func.now(), "version": table.c.version + 1}


def new_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The bind parameters of `versioned_changes` for these column values."""
    return {f"new_{name}": value for name, value in values.items()}
