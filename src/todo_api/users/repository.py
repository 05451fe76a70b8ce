"""Users by identity (issuer, subject). A user row is only ever reached through its own token."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from todo_api.auth.principal import Principal
from todo_api.models.user import users_table

users = users_table.c
_IDENTITY = (users.issuer == bindparam("issuer")) & (users.subject == bindparam("subject"))
_FIND = select(users_table).where(_IDENTITY)
_DELETE = delete(users_table).where(_IDENTITY)


class UserRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def find_by_identity(self, issuer: str, subject: str) -> Row[Any] | None:
        return self.db.execute(_FIND, {"issuer": issuer, "subject": subject}).first()

    def upsert(self, principal: Principal) -> Row[Any]:
        """Create the user, or refresh email/name; safe under concurrent first requests."""
        values = insert(users_table).values(
            id=uuid.uuid4(),
            issuer=principal.issuer,
            subject=principal.subject,
            email=principal.email,
            name=principal.name,
        )
        statement = values.on_conflict_do_update(
            index_elements=[users.issuer, users.subject],
            set_={
                "email": func.coalesce(values.excluded.email, users.email),
                "name": func.coalesce(values.excluded.name, users.name),
                "updated_at": func.now(),
            },
        ).returning(users_table)
        row: Row[Any] = self.db.execute(statement).one()
        return row

    def delete_identity(self, issuer: str, subject: str) -> None:
        """Delete the user; lists and todos go with it (ON DELETE CASCADE)."""
        self.db.execute(_DELETE, {"issuer": issuer, "subject": subject})
