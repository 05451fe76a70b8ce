"""Users by identity (issuer, subject). A user row is only ever reached through its own token."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.auth.principal import Principal
from todo_api.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find_by_identity(self, issuer: str, subject: str) -> User | None:
        statement = select(User).where(User.issuer == issuer, User.subject == subject)
        return (await self.session.exec(statement)).first()

    async def upsert(self, principal: Principal) -> User:
        """Create the user, or refresh email/name; safe under concurrent first requests."""
        values = insert(User).values(
            id=uuid.uuid4(),
            issuer=principal.issuer,
            subject=principal.subject,
            email=principal.email,
            name=principal.name,
        )
        statement = values.on_conflict_do_update(
            index_elements=[col(User.issuer), col(User.subject)],
            set_={
                "email": func.coalesce(values.excluded.email, col(User.email)),
                "name": func.coalesce(values.excluded.name, col(User.name)),
                "updated_at": func.now(),
            },
        ).returning(User)
        # populate_existing: the row may already sit in this session's identity map (stale profile).
        result = await self.session.exec(statement, execution_options={"populate_existing": True})
        user: User = result.scalar_one()
        return user

    async def delete(self, user_id: uuid.UUID) -> None:
        """Delete the user; lists and todos go with it (ON DELETE CASCADE)."""
        await self.session.exec(delete(User).where(col(User.id) == user_id))
