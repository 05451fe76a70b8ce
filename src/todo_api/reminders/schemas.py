"""The reminders contract: the polling window and what fires in it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from todo_api.fields import UtcDatetime
from todo_api.pagination import CURSOR_MAX_LENGTH, Page
from todo_api.planner.reminders import ReminderWindow

EXAMPLE_FIRING: dict[str, JsonValue] = {
    "fires_at": "2030-01-31T07:45:00Z",
    "todo_id": "0b6a1f9e-3c2d-4e5f-8a7b-9c0d1e2f3a4b",
    "title": "Buy milk",
}


class FiringRead(BaseModel):
    """A reminder that fires: when, and for which todo."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_FIRING]})

    fires_at: datetime = Field(description="When the reminder fires.")
    todo_id: uuid.UUID = Field(description="The todo it reminds of.")
    title: str = Field(description="The todo's title.")


class FiringPage(Page[FiringRead]):
    """Reminders firing in the window, in firing order; follow `next_cursor` for the next page."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_FIRING], "next_cursor": "AXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gU"}]}
    )


class ReminderQuery(ReminderWindow):
    """`from <= fires_at < to`, at most 7 days; one keyset page at a time."""

    start: UtcDatetime = Field(
        alias="from", description="Start of the window (RFC 3339), inclusive.", examples=["2030-01-31T00:00:00Z"]
    )
    end: UtcDatetime = Field(
        alias="to",
        description="End of the window (RFC 3339), exclusive; at most 7 days after `from`.",
        examples=["2030-02-01T00:00:00Z"],
    )
    limit: int = Field(default=50, ge=1, le=200, description="Reminders per page.")
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
