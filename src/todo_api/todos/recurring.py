"""Recurring todos: the series state kept with a todo, and what completing one does.

A recurring todo has a `recurrence` (RRULE), a `time_zone` and a `due_at`; the series state is
`recurrence_local` (the current occurrence's wall-clock time as the rule made it) and
`recurrence_index` (0 for the first due date), see `todo_api.planner.recurrence`.

- Setting `recurrence` starts the series at `due_at` (index 0: COUNT counts from there).
- Setting `due_at` or `time_zone` of a recurring todo reschedules it: the series continues from the
  new date and COUNT keeps counting (index kept).
- Clearing `due_at` (null) also clears `recurrence` and drops `before_due` reminders unless the
  same request sets them (then 422): without a date there is nothing to repeat or count back from.
- Completing it (PATCH `completed: true`) records a completion and moves `due_at` to the next
  occurrence after the current one; the todo stays open. With no next occurrence (COUNT or UNTIL
  reached, or none within 50 years) it completes for real. A request that also changes the
  schedule applies it first, then completes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from todo_api.errors import InvalidInput
from todo_api.planner.recurrence import Next, Occurrence, next_occurrence, parse_time_zone, start_series
from todo_api.planner.reminders import check_reminders
from todo_api.planner.rules import parse_rule
from todo_api.todos.planner_fields import DEFAULT_ZONE, REMINDERS
from todo_api.todos.tree import TodoState

RECURRENCE_LOC = ("body", "recurrence")
REMINDERS_LOC = ("body", "reminders")
SCHEDULE_FIELDS = frozenset({"due_at", "recurrence", "time_zone", "reminders"})


def _drop_before_due(reminders: list[dict[str, str]]) -> list[dict[str, str]]:
    return [reminder for reminder in reminders if "before_due" not in reminder]


def schedule(state: TodoState | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of the schedule after a write of `fields` (a key absent is unchanged; `state`
    None for a new todo): `due_at`, `recurrence`, `time_zone`, the series state, `reminders`."""
    before: dict[str, Any] = {
        "due_at": None if state is None else state.due_at,
        "recurrence": None if state is None else state.recurrence,
        "time_zone": DEFAULT_ZONE if state is None else state.time_zone,
        "reminders": [] if state is None else state.reminders,
    }
    after = before | {name: fields[name] for name in SCHEDULE_FIELDS if name in fields}
    if after["due_at"] is None and "due_at" in fields:
        after["recurrence"] = after["recurrence"] if "recurrence" in fields else None
        after["reminders"] = after["reminders"] if "reminders" in fields else _drop_before_due(after["reminders"])
    try:
        check_reminders(REMINDERS.validate_python(after["reminders"]), after["due_at"])
    except ValueError as exc:
        raise InvalidInput(REMINDERS_LOC, str(exc), after["reminders"]) from None
    return after | _series(state, before, after)


def _series(state: TodoState | None, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    rule_text = after["recurrence"]
    if rule_text is None:
        return {"recurrence_local": None, "recurrence_index": 0}
    if after["due_at"] is None:
        raise InvalidInput(RECURRENCE_LOC, "A recurring todo needs a due_at", rule_text)
    restart = state is None or rule_text != before["recurrence"]
    if not restart and all(after[name] == before[name] for name in ("due_at", "time_zone")):
        return {}  # unchanged series
    try:
        occurrence = start_series(parse_rule(rule_text), parse_time_zone(after["time_zone"]), after["due_at"])
    except ValueError as exc:
        raise InvalidInput(RECURRENCE_LOC, str(exc), rule_text) from None
    index = 0 if restart or state is None else state.recurrence_index
    return {"recurrence_local": occurrence.local, "recurrence_index": index}


def next_due(
    recurrence: str, time_zone: str, local: datetime | None, index: int, due_at: datetime | None
) -> Next | None:
    """The series' next due date after the current one, or None when it has ended."""
    if local is None or due_at is None:  # not a series (the table's check makes this impossible)
        return None
    return next_occurrence(parse_rule(recurrence), parse_time_zone(time_zone), Occurrence(local, index), due_at)
