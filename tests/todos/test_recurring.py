"""Recurring todos, reminders and completion history through the API (issue 15)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api import Api


def _local(instant: str, zone: str) -> datetime:
    return datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))


async def _complete(api: Api, todo_id: str, **extra: Any) -> dict[str, Any]:
    response = await api.request("PATCH", f"/api/todos/{todo_id}", json={"completed": True, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _walk(api: Api, todo_id: str, zone: str, completions: int) -> list[datetime]:
    """Complete the todo `completions` times; the local due date after each."""
    seen = []
    for _ in range(completions):
        todo = await _complete(api, todo_id)
        assert todo["completed"] is False  # a recurring todo stays open
        seen.append(_local(todo["due_at"], zone))
    return seen


# (zone, spring change, autumn change) in 2030: the last Sundays of March/October in the EU; the
# second Sunday of March and first of November in the US.
DST_2030 = [("Europe/Berlin", "2030-03-31", "2030-10-27"), ("America/New_York", "2030-03-10", "2030-11-03")]


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST_2030)
async def test_a_daily_nine_oclock_rule_stays_at_nine_across_both_changes(
    api: Api, zone: str, spring: str, autumn: str
) -> None:
    tz = ZoneInfo(zone)
    for change in (spring, autumn):
        start = datetime.fromisoformat(change).replace(hour=9, tzinfo=tz) - timedelta(days=3)
        todo = await api.create_todo(title="standup", recurrence="FREQ=DAILY", time_zone=zone, due_at=start.isoformat())
        assert _local(todo["due_at"], zone) == start
        dues = await _walk(api, todo["id"], zone, 6)
        assert [due.date() for due in dues] == [(start + timedelta(days=n)).date() for n in range(1, 7)]
        assert {(due.hour, due.minute) for due in dues} == {(9, 0)}
        offsets = {due.utcoffset() for due in dues}
        assert len(offsets) == 2  # the offset changed in the middle: the wall-clock time did not


# A link of the tz database, the first due date as sent, then the due dates after three completions:
# 09:00 there every day (New York's clocks change on 2030-03-10; India's never do).
ZONE_LINKS = [
    (
        "US/Eastern",
        "2030-03-08T09:00:00-05:00",
        ["2030-03-08T14:00:00Z", "2030-03-09T14:00:00Z", "2030-03-10T13:00:00Z", "2030-03-11T13:00:00Z"],
    ),
    (
        "Asia/Calcutta",
        "2030-03-08T09:00:00+05:30",
        ["2030-03-08T03:30:00Z", "2030-03-09T03:30:00Z", "2030-03-10T03:30:00Z", "2030-03-11T03:30:00Z"],
    ),
]


@pytest.mark.parametrize(("zone", "first_due", "dues"), ZONE_LINKS)
async def test_time_zone_links_are_accepted_and_kept_as_written(
    api: Api, zone: str, first_due: str, dues: list[str]
) -> None:
    """README, "Recurring todos": `time_zone` is an IANA name, "exact names from the tz database,
    links such as `US/Eastern` included". A link is accepted (201), stored and returned exactly as
    sent (not replaced by the zone it links to), and the rule repeats the wall-clock time in it."""
    plain = await api.create_todo(title="no rule", time_zone=zone)
    assert plain["time_zone"] == zone
    todo = await api.create_todo(title="standup", recurrence="FREQ=DAILY", time_zone=zone, due_at=first_due)
    assert (todo["time_zone"], todo["due_at"]) == (zone, dues[0])
    seen = [(await _complete(api, todo["id"]))["due_at"] for _ in range(3)]
    assert seen == dues[1:]
    for created in (plain, todo):
        fetched = (await api.request("GET", f"/api/todos/{created['id']}")).json()
        assert fetched["time_zone"] == zone
    assert {item["time_zone"] for item in await api.all_pages("/api/todos")} == {zone}


async def test_completing_advances_and_records_each_completion(api: Api) -> None:
    todo = await api.create_todo(
        title="water plants", recurrence="freq=weekly;byday=mo,th;count=3", due_at="2030-01-07T08:00:00Z"
    )
    assert todo["recurrence"] == "FREQ=WEEKLY;BYDAY=MO,TH;COUNT=3"  # canonical form
    assert todo["time_zone"] == "UTC"
    first = await _complete(api, todo["id"])
    assert (first["due_at"], first["completed"], first["completed_at"]) == ("2030-01-10T08:00:00Z", False, None)
    second = await _complete(api, todo["id"])
    assert second["due_at"] == "2030-01-14T08:00:00Z"
    last = await _complete(api, todo["id"])  # COUNT=3: the third due date was the last
    assert last["completed"] is True
    assert last["due_at"] == "2030-01-14T08:00:00Z"
    history = await api.all_pages(f"/api/todos/{todo['id']}/completions", limit=2)
    assert [item["due_at"] for item in history] == [
        "2030-01-14T08:00:00Z",
        "2030-01-10T08:00:00Z",
        "2030-01-07T08:00:00Z",
    ]
    stamps = [item["completed_at"] for item in history]
    assert stamps == sorted(stamps, reverse=True)
    # Reopening forgets the completion it undoes; the earlier ones are history.
    await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": False})
    assert len(await api.all_pages(f"/api/todos/{todo['id']}/completions")) == 2


async def test_until_ends_the_series(api: Api) -> None:
    todo = await api.create_todo(
        title="x", recurrence="FREQ=DAILY;UNTIL=20300102", time_zone="Asia/Tokyo", due_at="2030-01-01T00:00:00Z"
    )
    assert (await _complete(api, todo["id"]))["due_at"] == "2030-01-02T00:00:00Z"
    assert (await _complete(api, todo["id"]))["completed"] is True


async def test_a_rescheduled_series_continues_from_the_new_date(api: Api) -> None:
    todo = await api.create_todo(title="x", recurrence="FREQ=WEEKLY;COUNT=3", due_at="2030-01-07T08:00:00Z")
    await _complete(api, todo["id"])  # index 1: due 2030-01-14
    # Reschedule and complete in one request: the new date is completed, the next follows it.
    moved = await _complete(api, todo["id"], due_at="2030-01-16T10:00:00Z")
    assert (moved["due_at"], moved["completed"]) == ("2030-01-23T10:00:00Z", False)
    assert (await _complete(api, todo["id"]))["completed"] is True  # COUNT kept counting: 3 due dates
    history = await api.all_pages(f"/api/todos/{todo['id']}/completions")
    assert [item["due_at"] for item in history] == [
        "2030-01-23T10:00:00Z",
        "2030-01-16T10:00:00Z",
        "2030-01-07T08:00:00Z",
    ]


async def test_changing_the_time_zone_reschedules_in_the_new_zone_and_count_keeps_counting(api: Api) -> None:
    """README, "Recurring todos": "Changing `due_at` or `time_zone` of a recurring todo reschedules
    it: the series continues from the new date and COUNT keeps counting", and the rule repeats
    "`due_at`'s wall-clock time in `time_zone`". A daily 15:00 Berlin series moved to New York
    keeps its current due date (an instant: 09:00 there) and then repeats 09:00 New York, across New
    York's spring change (2030-03-10; Berlin's is not until 03-31). The completions made before the
    change still count: COUNT=5 means five due dates in all, not five more."""
    todo = await api.create_todo(
        title="call", recurrence="FREQ=DAILY;COUNT=5", time_zone="Europe/Berlin", due_at="2030-03-07T15:00:00+01:00"
    )
    assert (await _complete(api, todo["id"]))["due_at"] == "2030-03-08T14:00:00Z"  # 15:00 Berlin, due date 2 of 5
    response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"time_zone": "America/New_York"})
    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["time_zone"], moved["due_at"], moved["completed"]) == (
        "America/New_York",
        "2030-03-08T14:00:00Z",  # the same instant, 09:00 EST
        False,
    )
    assert len(await api.all_pages(f"/api/todos/{todo['id']}/completions")) == 1  # changing the zone completes nothing
    dues = await _walk(api, todo["id"], "America/New_York", 3)
    assert [due.astimezone(UTC).isoformat() for due in dues] == [
        "2030-03-09T14:00:00+00:00",  # 09:00 EST
        "2030-03-10T13:00:00+00:00",  # 09:00 EDT (Berlin's 15:00 would still be 14:00Z)
        "2030-03-11T13:00:00+00:00",
    ]
    assert {(due.hour, due.minute) for due in dues} == {(9, 0)}
    last = await _complete(api, todo["id"])  # the fifth due date, counting the two before the change
    assert (last["completed"], last["due_at"]) == (True, "2030-03-11T13:00:00Z")
    history = await api.all_pages(f"/api/todos/{todo['id']}/completions")
    assert [item["due_at"] for item in reversed(history)] == [
        "2030-03-07T14:00:00Z",
        "2030-03-08T14:00:00Z",
        "2030-03-09T14:00:00Z",
        "2030-03-10T13:00:00Z",
        "2030-03-11T13:00:00Z",
    ]


async def test_setting_a_recurrence_starts_the_count_at_the_current_due_date(api: Api) -> None:
    """README, "Recurring todos": "Setting `recurrence` starts the series at `due_at` (COUNT counts
    from there)". A rule PATCHed onto a plain todo counts that todo's `due_at` as its first due
    date. A rule replacing another starts a new count at the current `due_at`: completions made
    under the old rule stay in the history but do not count toward the new COUNT (only changing
    `due_at` or `time_zone` keeps counting)."""
    plain = await api.create_todo(title="plain", due_at="2030-01-07T08:00:00Z")
    response = await api.request("PATCH", f"/api/todos/{plain['id']}", json={"recurrence": "FREQ=DAILY;COUNT=2"})
    assert response.status_code == 200, response.text
    assert (response.json()["recurrence"], response.json()["due_at"]) == ("FREQ=DAILY;COUNT=2", "2030-01-07T08:00:00Z")
    first = await _complete(api, plain["id"])
    assert (first["completed"], first["due_at"]) == (False, "2030-01-08T08:00:00Z")
    assert (await _complete(api, plain["id"]))["completed"] is True  # 2 due dates: 01-07 and 01-08

    todo = await api.create_todo(title="changed", recurrence="FREQ=DAILY;COUNT=3", due_at="2030-01-07T08:00:00Z")
    assert [due.isoformat() for due in await _walk(api, todo["id"], "UTC", 2)] == [
        "2030-01-08T08:00:00+00:00",
        "2030-01-09T08:00:00+00:00",  # the third and last due date of COUNT=3
    ]
    response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"recurrence": "FREQ=WEEKLY;COUNT=2"})
    assert response.status_code == 200, response.text
    assert (response.json()["due_at"], response.json()["completed"]) == ("2030-01-09T08:00:00Z", False)
    # Counted on from the old rule, two due dates would already be used up and this would complete it.
    restarted = await _complete(api, todo["id"])
    assert (restarted["completed"], restarted["due_at"]) == (False, "2030-01-16T08:00:00Z")
    done = await _complete(api, todo["id"])
    assert (done["completed"], done["due_at"]) == (True, "2030-01-16T08:00:00Z")
    history = await api.all_pages(f"/api/todos/{todo['id']}/completions")
    assert [item["due_at"] for item in reversed(history)] == [
        "2030-01-07T08:00:00Z",
        "2030-01-08T08:00:00Z",
        "2030-01-09T08:00:00Z",
        "2030-01-16T08:00:00Z",
    ]


async def test_a_recurring_parent_reopens_its_subtasks_for_the_next_occurrence(api: Api) -> None:
    parent = await api.create_todo(title="weekly review", recurrence="FREQ=WEEKLY", due_at="2030-01-07T08:00:00Z")
    child = await api.create_todo(title="inbox zero", parent_id=parent["id"], completed=True)
    open_child = await api.create_todo(title="plan", parent_id=parent["id"])
    advanced = await _complete(api, parent["id"])
    assert (advanced["completed"], advanced["due_at"]) == (False, "2030-01-14T08:00:00Z")
    for todo in (child, open_child):
        assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["completed"] is False


async def test_a_recurring_todo_created_completed_is_completed_once(api: Api) -> None:
    todo = await api.create_todo(title="x", recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z", completed=True)
    assert (todo["completed"], todo["due_at"]) == (False, "2030-01-02T09:00:00Z")
    assert len(await api.all_pages(f"/api/todos/{todo['id']}/completions")) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"recurrence": "FREQ=DAILY"}, "recurrence"),  # no due date
        ({"recurrence": "FREQ=HOURLY", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"recurrence": "FREQ=MINUTELY", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"recurrence": "FREQ=SECONDLY", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"recurrence": "FREQ=DAILY;COUNT=2;UNTIL=20300101", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"recurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"recurrence": "RRULE:FREQ=DAILY", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"recurrence": "", "due_at": "2030-01-01T09:00:00Z"}, "recurrence"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "europe/berlin"}, "time_zone"),
        ({"time_zone": None}, "time_zone"),
        ({"reminders": [{"before_due": "PT15M"}]}, "reminders"),  # no due date
        ({"reminders": [{"at": "2030-01-01T09:00:00Z"}] * 6}, "reminders"),
        ({"reminders": [{"before_due": "P1M"}], "due_at": "2030-01-01T09:00:00Z"}, "reminders"),
        ({"reminders": [{"at": "2030-01-01T09:00:00"}]}, "reminders"),
        ({"reminders": [{"at": "2030-01-01T09:00:00Z", "before_due": "PT1M"}]}, "reminders"),
    ],
)
async def test_bad_schedules_are_422_on_their_field(api: Api, body: dict[str, Any], loc: str) -> None:
    response = await api.request("POST", "/api/todos", json={"title": "x", **body})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", loc]
    assert await api.all_pages("/api/todos") == []


async def test_clearing_the_due_date_ends_the_recurrence_and_relative_reminders(api: Api) -> None:
    reminders = [{"before_due": "PT15M"}, {"at": "2030-01-01T07:00:00Z"}]
    todo = await api.create_todo(title="x", recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z", reminders=reminders)
    cleared = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"due_at": None})
    assert cleared.status_code == 200
    assert (cleared.json()["recurrence"], cleared.json()["reminders"]) == (None, [{"at": "2030-01-01T07:00:00Z"}])
    # Unless the same request keeps them: then they need the date.
    both = await api.create_todo(title="y", recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")
    response = await api.request("PATCH", f"/api/todos/{both['id']}", json={"due_at": None, "recurrence": "FREQ=DAILY"})
    assert response.status_code == 422


async def test_reminders_fire_in_the_window_and_follow_the_due_date(api: Api) -> None:
    todo = await api.create_todo(
        title="standup",
        recurrence="FREQ=DAILY",
        time_zone="Europe/Berlin",
        due_at="2030-01-07T09:00:00+01:00",
        reminders=[{"before_due": "PT15M"}, {"at": "2030-01-07T06:00:00Z"}],
    )
    other = await api.create_todo(title="later", due_at="2030-01-08T12:00:00Z", reminders=[{"before_due": "PT1H"}])
    window = {"from": "2030-01-07T00:00:00Z", "to": "2030-01-09T00:00:00Z"}
    fired = await api.all_pages("/api/reminders", limit=1, **window)
    assert [(item["fires_at"], item["todo_id"], item["title"]) for item in fired] == [
        ("2030-01-07T06:00:00Z", todo["id"], "standup"),
        ("2030-01-07T07:45:00Z", todo["id"], "standup"),
        ("2030-01-08T11:00:00Z", other["id"], "later"),
    ]
    await _complete(api, todo["id"])  # next due 2030-01-08 09:00 Berlin: the relative reminder moves
    await _complete(api, other["id"])  # completed todos have no firing reminders
    fired = await api.all_pages("/api/reminders", **window)
    assert [(item["fires_at"], item["todo_id"]) for item in fired] == [
        ("2030-01-07T06:00:00Z", todo["id"]),
        ("2030-01-08T07:45:00Z", todo["id"]),
    ]
    await api.request("DELETE", f"/api/todos/{todo['id']}")
    assert await api.all_pages("/api/reminders", **window) == []


@pytest.mark.parametrize(
    "window",
    [
        {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
        {"from": "2030-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
        {"from": "2030-01-01T00:00:00Z", "to": "2030-01-08T00:00:01Z"},
        {"from": "2030-01-01T00:00:00Z"},
        {"from": "2030-01-01", "to": "2030-01-02"},
        {"from": "yesterday", "to": "today"},
    ],
)
async def test_bad_reminder_windows_are_422(api: Api, window: dict[str, str]) -> None:
    response = await api.request("GET", "/api/reminders", params=window)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


async def test_completed_filters_and_sort(api: Api) -> None:
    done = []
    for n in range(3):
        todo = await api.create_todo(title=f"t{n}")
        done.append(await _complete(api, todo["id"]))
    await api.create_todo(title="open")
    ordered = await api.all_pages("/api/todos", sort="completed_at", limit=1)
    assert [item["id"] for item in ordered] == [todo["id"] for todo in done]
    newest = await api.all_pages("/api/todos", sort="-completed_at", limit=2)
    assert [item["id"] for item in newest] == [todo["id"] for todo in reversed(done)]
    middle = done[1]["completed_at"]
    after = await api.all_pages("/api/todos", completed_after=middle)
    assert [item["id"] for item in after] == [done[2]["id"]]
    before = await api.all_pages("/api/todos", completed_before=middle, sort="completed_at")
    assert [item["id"] for item in before] == [done[0]["id"]]


async def test_completions_of_an_unknown_todo_are_404(api: Api) -> None:
    response = await api.request("GET", f"/api/todos/{uuid.uuid4()}/completions")
    assert response.status_code == 404


async def test_the_readme_worked_example(api: Api) -> None:
    """README, "Planner": a weekly review on Mondays at 09:00 Berlin, three times, reminded 15 minutes before."""
    todo = await api.create_todo(
        title="Weekly review",
        due_at="2030-03-25T09:00:00+01:00",
        time_zone="Europe/Berlin",
        recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        reminders=[{"before_due": "PT15M"}],
    )
    assert todo["due_at"] == "2030-03-25T08:00:00Z"
    window = {"from": "2030-03-25T00:00:00Z", "to": "2030-04-01T00:00:00Z"}
    fired = await api.all_pages("/api/reminders", **window)
    assert [(item["fires_at"], item["title"]) for item in fired] == [("2030-03-25T07:45:00Z", "Weekly review")]
    advanced = await _complete(api, todo["id"])
    assert (advanced["completed"], advanced["due_at"]) == (False, "2030-04-01T07:00:00Z")
    later = await api.all_pages("/api/reminders", **{"from": "2030-04-01T00:00:00Z", "to": "2030-04-02T00:00:00Z"})
    assert [item["fires_at"] for item in later] == ["2030-04-01T06:45:00Z"]
    assert (await _complete(api, todo["id"]))["completed"] is False
    assert (await _complete(api, todo["id"]))["completed"] is True
    history = await api.all_pages(f"/api/todos/{todo['id']}/completions")
    assert history[-1]["due_at"] == "2030-03-25T08:00:00Z"
    assert len(history) == 3
