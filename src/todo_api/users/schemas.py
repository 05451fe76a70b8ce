from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserRead(BaseModel):
    """The account behind the token: created on its first request, keyed by (issuer, subject)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3e2d1c0b-9a8f-4e7d-a6c5-b4a392817060",
                    "issuer": "https://idp.example.org/",
                    "subject": "user_2x7Kq9",
                    "email": "ada@example.org",
                    "name": "Ada",
                    "created_at": "2030-01-30T12:00:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    issuer: str = Field(description="The token's `iss` (empty when tokens carry none).")
    subject: str = Field(description="The token's `sub`.")
    email: str | None = Field(description="The token's `email` claim, refreshed on each new token.")
    name: str | None = Field(description="The token's `name` claim, refreshed on each new token.")
    created_at: datetime
