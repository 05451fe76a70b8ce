"""Reminders: what a todo's `reminders` may hold, and the instants at which they fire.

A todo has up to `MAX_REMINDERS` reminders, each `{"at": <RFC 3339 instant>}` or
`{"before_due": <ISO 8601 duration>}`. Durations are strict: `PnW`, or `PnD` and/or `T` with
`nH`, `nM`, `nS` in that order, whole numbers only; no years or months (their length is not
fixed), no sign, not zero, at most 366 days; a JSON number is refused (pydantic's `timedelta`
would read it as seconds). The text is kept as written, so a client reads back what it sent.

A relative reminder follows the todo's current due date: a recurring todo's reminders move with
it. An absolute one fires once. A completed or deleted todo has no firing reminders.
`GET /api/reminders?from=&to=` asks for a `ReminderWindow`: `from <= fires_at < to`, at most 7 days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from todo_api.fields import UtcDatetime

MAX_REMINDERS: Final = 5
MAX_BEFORE_DUE: Final = timedelta(days=366)
MAX_WINDOW: Final = timedelta(days=7)

_TIME: Final = r"T(?:[0-9]{1,4}H(?:[0-9]{1,6}M)?(?:[0-9]{1,8}S)?|[0-9]{1,6}M(?:[0-9]{1,8}S)?|[0-9]{1,8}S)"
DURATION_PATTERN: Final = rf"^P(?:[0-9]{{1,2}}W|[0-9]{{1,3}}D(?:{_TIME})?|{_TIME})$"
"""At least one component, in order, whole numbers (digits enough for 366 days in any one unit)."""
_PARTS: Final = re.compile(r"([0-9]+)([WDHMS])")
_SECONDS: Final = {"W": 604_800, "D": 86_400, "H": 3_600, "M": 60, "S": 1}
_YEARS_OR_MONTHS: Final = re.compile(r"P[0-9.,]*Y|P(?:[0-9.,]+Y)?[0-9.,]+M")


def parse_duration(text: str) -> timedelta:
    """A strict ISO 8601 duration as a timedelta; ValueError says what is wrong."""
    if _YEARS_OR_MONTHS.match(text):
        raise ValueError("years and months are not allowed (their length varies): use days or weeks, e.g. P30D")
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError("must be an ISO 8601 duration such as PT15M, PT1H30M, P1D or P1W, in whole numbers")
    seconds = _seconds(text)
    if seconds == 0:
        raise ValueError("must be longer than zero")
    if seconds > MAX_BEFORE_DUE.total_seconds():
        raise ValueError("must be at most 366 days (P366D)")
    return timedelta(seconds=seconds)


def _seconds(text: str) -> int:
    # "M" is minutes here: months were refused above, and the pattern allows M only after T.
    return sum(int(n) * _SECONDS[unit] for n, unit in _PARTS.findall(text))


def _valid_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    AfterValidator(_valid_duration),
    Field(json_schema_extra={"pattern": DURATION_PATTERN, "examples": ["PT15M", "P1D"]}),
]


class AtReminder(BaseModel):
    """Fires once, at an instant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"at": "2030-01-31T08:45:00Z"}]})
    at: UtcDatetime


class BeforeDueReminder(BaseModel):
    """Fires this long before the todo's (current) due date; needs a due date."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"before_due": "PT15M"}]})
    before_due: Duration

    @property
    def offset(self) -> timedelta:
        return parse_duration(self.before_due)


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "at" if "at" in value else "before_due" if "before_due" in value else None
    return "at" if isinstance(value, AtReminder) else "before_due" if isinstance(value, BeforeDueReminder) else None


Reminder = Annotated[
    Annotated[AtReminder, Tag("at")] | Annotated[BeforeDueReminder, Tag("before_due")],
    Discriminator(
        _kind,
        custom_error_type="reminder_kind",
        custom_error_message='a reminder is {"at": <RFC 3339 instant>} or {"before_due": <ISO 8601 duration>}',
    ),
]
Reminders = Annotated[list[Reminder], Field(max_length=MAX_REMINDERS)]


def check_reminders(reminders: Iterable[Reminder], due_at: datetime | None) -> None:
    """ValueError if a `before_due` reminder has no due date to count back from."""
    if due_at is None and any(isinstance(reminder, BeforeDueReminder) for reminder in reminders):
        raise ValueError("a before_due reminder needs a due date")


def fire_times(
    reminders: Iterable[Reminder], due_at: datetime | None, *, completed: bool, deleted: bool
) -> list[datetime]:
    """The distinct instants at which the reminders fire, in order (none for a completed or deleted todo)."""
    if completed or deleted:
        return []
    instants = set()
    for reminder in reminders:
        if isinstance(reminder, AtReminder):
            instants.add(reminder.at)
        elif due_at is not None:
            try:
                instants.add(due_at - reminder.offset)
            except OverflowError:  # before year 1: never fires
                continue
    return sorted(instants)


class ReminderWindow(BaseModel):
    """The query of `GET /api/reminders`: reminders firing at `from <= t < to`, at most 7 days."""

    model_config = ConfigDict(extra="forbid")
    start: UtcDatetime = Field(alias="from")
    end: UtcDatetime = Field(alias="to")

    @model_validator(mode="after")
    def _bounded(self) -> ReminderWindow:
        if self.start >= self.end:
            raise ValueError("'from' must be before 'to'")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError("the window from 'from' to 'to' is at most 7 days")
        return self
