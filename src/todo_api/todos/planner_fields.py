"""Field types of the planner's todo fields (issue 15): recurrence rules, time zones, reminders,
the move body, completion history. The parsers are `todo_api.planner`'s; here they become pydantic
types whose errors are ordinary 422s on the field."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from todo_api.fields import Patch
from todo_api.pagination import CURSOR_MAX_LENGTH, Page
from todo_api.planner.recurrence import DEFAULT_TIME_ZONE, MAX_TIME_ZONE_LENGTH, parse_time_zone
from todo_api.planner.reminders import Reminder, Reminders
from todo_api.planner.rules import MAX_RULE_LENGTH, parse_rule

# Loose outlines for the document (generators, clients); the parsers decide.
RULE_PATTERN = r"^[A-Za-z0-9=;,+-]+$"
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+/-]+$"


def _canonical_rule(text: str) -> str:
    return parse_rule(text).text


def _known_zone(name: str) -> str:
    parse_time_zone(name)
    return name


Recurrence = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_RULE_LENGTH,
        pattern=RULE_PATTERN,
        description="An RFC 5545 RRULE value, at most daily (`FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`); needs "
        "`due_at`. Returned in canonical form (upper case).",
        examples=["FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"],
    ),
    AfterValidator(_canonical_rule),
]
TimeZone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TIME_ZONE_LENGTH,
        pattern=TIME_ZONE_PATTERN,
        description="An IANA time zone name: `due_at`'s wall-clock time in it is what the rule repeats.",
        examples=["Europe/Berlin"],
    ),
    AfterValidator(_known_zone),
]
REMINDERS = TypeAdapter(Reminders)
PARENT_DESCRIPTION = (
    "A todo of the user's in the same list (left out with a parent: the parent's list), or null. "
    "Subtasks nest four levels deep (a top-level todo and three levels below)."
)
REMINDERS_DESCRIPTION = (
    'Up to 5 of `{"at": <RFC 3339>}` or `{"before_due": <ISO 8601 duration>}` (the latter needs `due_at`).'
)
DEFAULT_ZONE = DEFAULT_TIME_ZONE


def stored_reminders(reminders: list[Reminder] | list[dict[str, object]]) -> list[dict[str, str]]:
    """The JSON the table keeps (and pages return as is): `at` in UTC with `Z`, `before_due` as sent."""
    dumped: list[dict[str, str]] = REMINDERS.dump_python(REMINDERS.validate_python(reminders), mode="json")
    return dumped


class TodoMove(Patch):
    """Where to put a todo: right after `after_id` (null or left out: first) among the children of
    `parent_id` in `list_id`. Both default to the todo's own; a `parent_id` alone takes the parent's
    list, a `list_id` alone leaves the parent (the todo becomes top-level there)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"after_id": "0b6a1f9e-3c2d-4e5f-8a7b-9c0d1e2f3a4b"},
                {"after_id": None, "parent_id": "5e4d3c2b-1a0f-4d8c-b7a6-7d3c2b1a0f9e"},
            ]
        }
    )

    after_id: uuid.UUID | None = Field(
        default=None, description="The sibling to follow (null or left out: first).", examples=[None]
    )
    parent_id: uuid.UUID | None = Field(default=None, description="The new parent, or null for top level.")
    list_id: uuid.UUID | None = Field(default=None, description="The new list, or null for no list.")


EXAMPLE_CURSOR = "AXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gU"
EXAMPLE_COMPLETION: dict[str, JsonValue] = {"completed_at": "2030-01-31T07:45:00Z", "due_at": "2030-01-31T08:00:00Z"}


class CompletionRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_COMPLETION]})

    completed_at: datetime = Field(description="When the todo was completed.")
    due_at: datetime | None = Field(description="The due date (occurrence) that was completed.")


class CompletionPage(Page[CompletionRead]):
    """One page of a todo's completions, newest first; follow `next_cursor` for the next."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [EXAMPLE_COMPLETION], "next_cursor": "AXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7g"}]
        }
    )


class CompletionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200, description="Completions per page.")
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
