"""Reminders: strict durations, the reminder models, when they fire, and the polling window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tests.hostile.strategies import UNICODE_DIGITS
from todo_api.planner.reminders import (
    DURATION_PATTERN,
    AtReminder,
    BeforeDueReminder,
    Reminders,
    ReminderWindow,
    check_reminders,
    fire_times,
    parse_duration,
)

REMINDERS = TypeAdapter(Reminders)
DUE = datetime(2030, 1, 31, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("PT1H30M", timedelta(minutes=90)),
        ("PT90M", timedelta(minutes=90)),
        ("P1D", timedelta(days=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P2W", timedelta(weeks=2)),
        ("PT1S", timedelta(seconds=1)),
        ("P366D", timedelta(days=366)),
        ("PT8784H", timedelta(days=366)),
    ],
)
def test_iso_8601_durations_are_read(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P1M", "years and months are not allowed"),
        ("P1Y", "years and months are not allowed"),
        ("P1Y2M3D", "years and months are not allowed"),
        ("P0.5M", "years and months are not allowed"),
        ("PT0S", "longer than zero"),
        ("P0D", "longer than zero"),
        ("P0W", "longer than zero"),
        ("P367D", "at most 366 days"),
        ("PT8785H", "at most 366 days"),
        ("P53W", "at most 366 days"),
        ("", "ISO 8601 duration"),
        ("P", "ISO 8601 duration"),
        ("PT", "ISO 8601 duration"),
        ("P1DT", "ISO 8601 duration"),
        ("-PT15M", "ISO 8601 duration"),
        ("PT-15M", "ISO 8601 duration"),
        ("+PT15M", "ISO 8601 duration"),
        ("PT1.5H", "ISO 8601 duration"),
        ("PT1,5H", "ISO 8601 duration"),
        ("pt15m", "ISO 8601 duration"),
        ("PT15M ", "ISO 8601 duration"),
        ("PT15M\n", "ISO 8601 duration"),
        ("15", "ISO 8601 duration"),
        ("PT15", "ISO 8601 duration"),
        ("PT30M1H", "ISO 8601 duration"),
        ("P1W2D", "ISO 8601 duration"),
        ("PT١٥M", "ISO 8601 duration"),
        ("PT99999999999999999999S", "ISO 8601 duration"),
        ("00:15:00", "ISO 8601 duration"),
    ],
)
def test_durations_other_than_strict_positive_iso_8601_up_to_366_days_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@given(st.text(alphabet=st.sampled_from([*"PTWDHMSY0123456789.,-+ \n", *UNICODE_DIGITS]), max_size=20))
def test_any_duration_text_is_a_positive_bounded_delta_or_refused(text: str) -> None:
    try:
        delta = parse_duration(text)
    except ValueError:
        return
    assert timedelta(0) < delta <= timedelta(days=366)


def test_reminders_are_at_instants_or_before_the_due_date() -> None:
    parsed = REMINDERS.validate_python([{"at": "2030-01-31T09:45:00+01:00"}, {"before_due": "PT15M"}])
    assert parsed == [AtReminder(at=datetime(2030, 1, 31, 8, 45, tzinfo=UTC)), BeforeDueReminder(before_due="PT15M")]
    assert REMINDERS.dump_python(parsed, mode="json") == [{"at": "2030-01-31T08:45:00Z"}, {"before_due": "PT15M"}]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([{"before_due": 900}], "before_due"),  # pydantic's timedelta would read seconds
        ([{"before_due": 900.0}], "before_due"),
        ([{"before_due": "P1M"}], "before_due"),
        ([{"at": 1893456000}], "at"),  # a Unix timestamp
        ([{"at": "2030-01-31T09:00:00"}], "at"),  # no offset
        ([{"at": "2030-01-31"}], "at"),
        ([{}], "reminder"),
        (["PT15M"], "reminder"),
        ([None], "reminder"),
        ([{"at": "2030-01-31T09:00:00Z", "before_due": "PT15M"}], "before_due"),
        ([{"after_due": "PT15M"}], "reminder"),
        ([{"before_due": "PT15M", "note": "x"}], "note"),
        ([{"before_due": f"PT{n + 1}M"} for n in range(6)], "5 items"),
        ({"before_due": "PT15M"}, "list"),
    ],
)
def test_malformed_reminders_are_refused(body: Any, where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        REMINDERS.validate_python(body)


def test_five_reminders_are_the_limit() -> None:
    assert len(REMINDERS.validate_python([{"before_due": f"PT{n + 1}M"} for n in range(5)])) == 5


def test_a_relative_reminder_needs_a_due_date() -> None:
    relative = REMINDERS.validate_python([{"before_due": "PT15M"}])
    check_reminders(relative, DUE)
    check_reminders(REMINDERS.validate_python([{"at": "2030-01-31T09:00:00Z"}]), None)
    with pytest.raises(ValueError, match="needs a due date"):
        check_reminders(relative, None)


def test_reminders_fire_in_order_once_each_and_relative_ones_follow_the_due_date() -> None:
    reminders = REMINDERS.validate_python(
        [{"before_due": "P1D"}, {"at": "2030-01-01T00:00:00Z"}, {"before_due": "PT15M"}, {"at": "2030-01-31T08:45:00Z"}]
    )
    assert fire_times(reminders, DUE, completed=False, deleted=False) == [
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 30, 9, tzinfo=UTC),
        datetime(2030, 1, 31, 8, 45, tzinfo=UTC),  # the absolute one and PT15M coincide: fires once
    ]
    moved = DUE + timedelta(days=7)  # a recurring todo's next due date
    assert fire_times(reminders, moved, completed=False, deleted=False) == [
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 31, 8, 45, tzinfo=UTC),
        datetime(2030, 2, 6, 9, tzinfo=UTC),
        datetime(2030, 2, 7, 8, 45, tzinfo=UTC),
    ]
    assert fire_times(reminders, None, completed=False, deleted=False) == [
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 31, 8, 45, tzinfo=UTC),
    ]


@pytest.mark.parametrize(("completed", "deleted"), [(True, False), (False, True), (True, True)])
def test_completed_and_deleted_todos_have_no_firing_reminders(completed: bool, deleted: bool) -> None:
    reminders = REMINDERS.validate_python([{"before_due": "PT15M"}, {"at": "2030-01-01T00:00:00Z"}])
    assert fire_times(reminders, DUE, completed=completed, deleted=deleted) == []


def test_a_reminder_before_year_one_never_fires() -> None:
    reminders = REMINDERS.validate_python([{"before_due": "P2D"}])
    assert fire_times(reminders, datetime(1, 1, 1, 9, tzinfo=UTC), completed=False, deleted=False) == []


WINDOW = TypeAdapter(ReminderWindow)


def test_the_window_is_from_before_to_and_at_most_seven_days() -> None:
    window = WINDOW.validate_python({"from": "2030-01-01T00:00:00+01:00", "to": "2030-01-07T23:00:00Z"})
    assert (window.start, window.end) == (datetime(2029, 12, 31, 23, tzinfo=UTC), datetime(2030, 1, 7, 23, tzinfo=UTC))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, "'from' must be before 'to'"),
        ({"from": "2030-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, "'from' must be before 'to'"),
        ({"from": "2030-01-01T00:00:00Z", "to": "2030-01-08T00:00:01Z"}, "at most 7 days"),
        ({"from": "2030-01-01T00:00:00Z"}, "to"),
        ({"from": "2030-01-01T00:00:00Z", "to": "2030-01-02"}, "to"),
        ({"from": "1893456000", "to": "2030-01-02T00:00:00Z"}, "from"),
        ({"from": "2030-01-01T00:00:00Z", "to": "2030-01-02T00:00:00Z", "limit": "5"}, "limit"),
        ({"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}, "from"),
    ],
)
def test_malformed_windows_are_refused(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WINDOW.validate_python(query)


def test_the_schema_states_the_duration_pattern_and_the_limit() -> None:
    schema = REMINDERS.json_schema()
    assert schema["maxItems"] == 5
    assert schema["$defs"]["BeforeDueReminder"]["properties"]["before_due"]["pattern"] == DURATION_PATTERN


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["at", "before_due", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)
reminder_like = st.dictionaries(
    st.sampled_from(["at", "before_due"]),
    st.text(alphabet=st.sampled_from([*"PTWDHMS0123456789-:Z+.T "]), max_size=25) | json_values,
    min_size=1,
    max_size=2,
)


@given(st.lists(reminder_like, max_size=7) | json_values)
def test_any_json_is_at_most_five_valid_reminders_or_a_validation_error(body: Any) -> None:
    try:
        reminders = REMINDERS.validate_python(body)
    except ValidationError:
        return
    assert len(reminders) <= 5
    for instant in fire_times(reminders, DUE, completed=False, deleted=False):
        assert instant.tzinfo == UTC


@given(st.datetimes(timezones=st.just(UTC)), st.timedeltas(timedelta(days=-9), timedelta(days=9)))
def test_a_window_is_accepted_exactly_when_it_is_forward_and_at_most_seven_days(
    start: datetime, length: timedelta
) -> None:
    try:
        end = start + length
    except OverflowError:
        return
    query = {"from": start.isoformat(), "to": end.isoformat()}
    if timedelta(0) < length <= timedelta(days=7):
        assert WINDOW.validate_python(query).end - WINDOW.validate_python(query).start == length
    else:
        with pytest.raises(ValidationError):
            WINDOW.validate_python(query)
