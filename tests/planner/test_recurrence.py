"""Recurring todos: next due dates on wall-clock time across daylight-saving changes, COUNT/UNTIL,
the bounded search, and the series continuation against a from-the-start expansion by dateutil."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.planner.strategies import due_dates, rule_texts, zones
from todo_api.planner.recurrence import (
    HORIZON_YEARS,
    Occurrence,
    _BoundedRule,
    _SearchExhausted,
    next_occurrence,
    parse_time_zone,
    start_series,
)
from todo_api.planner.rules import Rule, parse_rule


def chain(text: str, zone_name: str, first_local: datetime, steps: int) -> list[datetime]:
    """The first due date (wall-clock `first_local` in the zone) and up to `steps` next ones, local."""
    rule, zone = parse_rule(text), parse_time_zone(zone_name)
    due = first_local.replace(tzinfo=zone).astimezone(UTC)
    occurrence = start_series(rule, zone, due)
    dues = [due]
    for _ in range(steps):
        following = next_occurrence(rule, zone, occurrence, due)
        if following is None:
            break
        due, occurrence = following
        dues.append(due)
    return [d.astimezone(zone) for d in dues]


def wall(*dues: datetime) -> list[tuple[datetime, timedelta | None]]:
    return [(d.replace(tzinfo=None), d.utcoffset()) for d in dues]


H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "changes"),
    [
        ("Europe/Berlin", [date(2026, 3, 29), date(2026, 10, 25)]),
        ("America/New_York", [date(2026, 3, 8), date(2026, 11, 1)]),
        ("Australia/Sydney", [date(2026, 4, 5), date(2026, 10, 4)]),  # southern: summer time ends in April
        ("Australia/Lord_Howe", [date(2026, 4, 5), date(2026, 10, 4)]),  # a 30-minute shift
    ],
)
def test_daily_nine_oclock_stays_nine_oclock_across_both_changes_of_a_year(zone: str, changes: list[date]) -> None:
    dues = chain("FREQ=DAILY", zone, datetime(2026, 1, 1, 9), steps=364)
    assert [d.date() for d in dues] == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    assert {d.time() for d in dues} == {time(9)}
    assert [b.date() for a, b in pairwise(dues) if a.utcoffset() != b.utcoffset()] == changes


def test_a_time_in_the_spring_gap_is_read_with_the_offset_before_it_and_the_series_keeps_its_time() -> None:
    dues = chain("FREQ=DAILY", "Europe/Berlin", datetime(2026, 3, 28, 2, 30), steps=2)
    assert wall(*dues) == [
        (datetime(2026, 3, 28, 2, 30), H),
        (datetime(2026, 3, 29, 3, 30), 2 * H),  # 02:30 does not exist: 01:30 UTC
        (datetime(2026, 3, 30, 2, 30), 2 * H),  # back to 02:30, not 03:30
    ]


def test_a_time_in_the_autumn_fold_is_its_first_occurrence() -> None:
    assert wall(*chain("FREQ=DAILY", "Europe/Berlin", datetime(2026, 10, 24, 2, 30), steps=2))[1:] == [
        (datetime(2026, 10, 25, 2, 30), 2 * H),
        (datetime(2026, 10, 26, 2, 30), H),
    ]
    assert wall(*chain("FREQ=DAILY", "America/New_York", datetime(2026, 10, 31, 1, 30), steps=1))[1:] == [
        (datetime(2026, 11, 1, 1, 30), -4 * H),
    ]


def test_occurrences_the_gap_moves_onto_or_before_the_previous_one_are_skipped() -> None:
    rule, zone = parse_rule("FREQ=DAILY;BYHOUR=2,3;BYMINUTE=15,45"), parse_time_zone("Europe/Berlin")
    due = datetime(2026, 3, 28, 3, 45, tzinfo=zone).astimezone(UTC)
    occurrence = start_series(rule, zone, due)
    seen = []
    for _ in range(3):
        following = next_occurrence(rule, zone, occurrence, due)
        assert following is not None
        due, occurrence = following
        seen.append((due.astimezone(zone).replace(tzinfo=None), occurrence))
    assert seen == [
        (datetime(2026, 3, 29, 3, 15), Occurrence(datetime(2026, 3, 29, 2, 15), 1)),
        (datetime(2026, 3, 29, 3, 45), Occurrence(datetime(2026, 3, 29, 2, 45), 2)),
        # 03:15 and 03:45 would not be later than 03:45: skipped, not counted
        (datetime(2026, 3, 30, 2, 15), Occurrence(datetime(2026, 3, 30, 2, 15), 3)),
    ]


def test_weekly_on_given_days_and_a_first_due_date_off_the_rule_counts_as_the_first() -> None:
    dues = chain("FREQ=WEEKLY;BYDAY=MO,WE", "UTC", datetime(2026, 1, 6, 9), steps=4)  # a Tuesday
    assert [d.date() for d in dues] == [
        date(2026, 1, 6),
        date(2026, 1, 7),
        date(2026, 1, 12),
        date(2026, 1, 14),
        date(2026, 1, 19),
    ]
    biweekly = chain("FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;WKST=SU", "UTC", datetime(2026, 1, 2, 9), steps=2)
    assert [d.date() for d in biweekly] == [date(2026, 1, 2), date(2026, 1, 16), date(2026, 1, 30)]


def test_weekly_bysetpos_counts_over_the_whole_week_not_from_the_due_date() -> None:
    """dateutil would build the first week from Tuesday on and pick Wednesday as the 2nd of MO,TU,WE."""
    dues = chain("FREQ=WEEKLY;BYDAY=MO,TU,WE;BYSETPOS=2", "UTC", datetime(2000, 1, 4, 9), steps=2)  # a Tuesday
    assert [d.date() for d in dues] == [date(2000, 1, 4), date(2000, 1, 11), date(2000, 1, 18)]


def test_monthly_on_the_31st_skips_shorter_months() -> None:
    dues = chain("FREQ=MONTHLY;BYMONTHDAY=31", "Europe/Berlin", datetime(2026, 1, 31, 9), steps=7)
    assert [d.date() for d in dues] == [
        date(2026, 1, 31), date(2026, 3, 31), date(2026, 5, 31), date(2026, 7, 31),
        date(2026, 8, 31), date(2026, 10, 31), date(2026, 12, 31), date(2027, 1, 31),
    ]  # fmt: skip
    assert {d.time() for d in dues} == {time(9)}


def test_last_weekday_of_the_month_and_last_friday() -> None:
    last_weekday = chain("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "UTC", datetime(2026, 1, 30, 17), steps=3)
    assert [d.date() for d in last_weekday] == [
        date(2026, 1, 30),
        date(2026, 2, 27),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    last_friday = chain("FREQ=MONTHLY;BYDAY=-1FR", "UTC", datetime(2026, 5, 1, 17), steps=2)
    assert [d.date() for d in last_friday] == [date(2026, 5, 1), date(2026, 5, 29), date(2026, 6, 26)]


@pytest.mark.parametrize(("count", "dues"), [(1, 1), (2, 2), (3, 3), (5, 5)])
def test_count_is_the_number_of_due_dates_including_the_first(count: int, dues: int) -> None:
    assert len(chain(f"FREQ=WEEKLY;BYDAY=MO;COUNT={count}", "UTC", datetime(2026, 1, 6, 9), steps=10)) == dues


def test_count_is_kept_by_the_stored_index() -> None:
    rule, zone = parse_rule("FREQ=DAILY;COUNT=10"), parse_time_zone("UTC")
    due = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert next_occurrence(rule, zone, Occurrence(datetime(2026, 1, 1, 9), 8), due) is not None
    assert next_occurrence(rule, zone, Occurrence(datetime(2026, 1, 1, 9), 9), due) is None


@pytest.mark.parametrize(
    ("until", "last"),
    [
        ("20260105T080000Z", date(2026, 1, 5)),  # an instant equal to an occurrence: included
        ("20260105T075959Z", date(2026, 1, 4)),
        ("20260105T090000", date(2026, 1, 5)),  # wall-clock time in the todo's zone
        ("20260105T085959", date(2026, 1, 4)),
        ("20260105", date(2026, 1, 5)),  # every occurrence on that local date
        ("20251231", date(2026, 1, 1)),  # before the first due date: no next one
    ],
)
def test_until_is_inclusive_in_each_of_its_forms(until: str, last: date) -> None:
    dues = chain(f"FREQ=DAILY;UNTIL={until}", "Europe/Berlin", datetime(2026, 1, 1, 9), steps=10)
    assert dues[-1].date() == last


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 6, 9)),
        ("FREQ=MONTHLY;BYMONTH=4,6,9,11;BYMONTHDAY=31", datetime(2026, 1, 6, 9)),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 6, 9)),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", datetime(2026, 1, 6, 9)),  # one Monday a week
        ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", datetime(2026, 1, 6, 9)),  # Tuesdays only
        ("FREQ=YEARLY;BYMONTH=5;BYMONTHDAY=3;BYSETPOS=3", datetime(2026, 1, 6, 9)),
        ("FREQ=MONTHLY;BYDAY=6MO", datetime(2026, 1, 6, 9)),
        ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", datetime(2025, 1, 6, 9)),  # 2025 + 4n: never leap
        ("FREQ=YEARLY;INTERVAL=51", datetime(2026, 1, 6, 9)),
        ("FREQ=MONTHLY;INTERVAL=1000", datetime(2026, 1, 6, 9)),  # 83 years
    ],
)
def test_rules_that_never_recur_within_the_horizon_are_refused(text: str, first: datetime) -> None:
    with pytest.raises(ValueError, match=f"no occurrence within {HORIZON_YEARS} years"):
        start_series(parse_rule(text), parse_time_zone("UTC"), first.replace(tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "first", "following"),
    [
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", datetime(2026, 1, 6, 9), date(2028, 2, 29)),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", datetime(2026, 1, 6, 9), date(2044, 2, 29)),
        ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", datetime(2024, 2, 29, 9), date(2028, 2, 29)),
        ("FREQ=YEARLY;INTERVAL=49", datetime(2026, 1, 6, 9), date(2075, 1, 6)),
    ],
)
def test_rare_but_recurring_rules_are_accepted(text: str, first: datetime, following: date) -> None:
    assert chain(text, "UTC", first, steps=1)[1].date() == following


@pytest.mark.parametrize(
    ("freq", "filters"),
    [
        (YEARLY, {"bymonth": 2, "bymonthday": 30}),
        (MONTHLY, {"bymonth": 2, "bymonthday": 30}),
        (WEEKLY, {"byweekday": 0, "bysetpos": 2}),
        (DAILY, {"bymonth": 2, "bymonthday": 30}),
        (DAILY, {"bymonth": 2, "bymonthday": 30, "interval": 45}),
    ],
)
def test_a_search_that_finds_nothing_spends_its_budget_and_stops(freq: int, filters: dict[str, int]) -> None:
    """Without the budget dateutil would search on to year 9999; with it, it stops within 12 periods here."""
    expansion = _BoundedRule(freq, dtstart=datetime(2026, 3, 1), budget=12, **filters)
    with pytest.raises(_SearchExhausted):
        next(iter(expansion))
    assert expansion.budget == -1


def test_the_last_occurrences_before_year_10000_end_the_series() -> None:
    assert wall(*chain("FREQ=DAILY", "Pacific/Chatham", datetime(9999, 12, 30, 22, 45), steps=5)) == [
        (datetime(9999, 12, 30, 22, 45), timedelta(hours=13, minutes=45)),
        (datetime(9999, 12, 31, 22, 45), timedelta(hours=13, minutes=45)),
    ]
    # 9999-12-31 22:00 in New York is in year 10000 in UTC
    assert len(chain("FREQ=DAILY", "America/New_York", datetime(9999, 12, 30, 22), steps=5)) == 1
    with pytest.raises(ValueError, match="out of range"):
        start_series(
            parse_rule("FREQ=DAILY"), parse_time_zone("Pacific/Chatham"), datetime(9999, 12, 31, 23, tzinfo=UTC)
        )


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "US/Eastern", "Asia/Calcutta"]
)
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert parse_time_zone(name).key == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Olympus",
        "europe/berlin",
        "Europe/Berlin ",
        "/usr/share/zoneinfo/UTC",
        "../../etc/passwd",
        "CEST",
        "+02:00",
        "Europe/Berlin\x00",
    ],
)
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_time_zone(name)


@given(st.text(max_size=80))
def test_any_time_zone_text_is_a_zone_or_a_value_error(name: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_time_zone(name).key == name


def reference(rule: Rule, zone_name: str, due_at: datetime, steps: int) -> tuple[list[datetime], datetime | None]:
    """Due dates expanded from the series start by dateutil's own parser, and the nominal time of the
    first occurrence past the horizon if that is what ended them."""
    zone = parse_time_zone(zone_name)
    start = due_at.astimezone(zone).replace(tzinfo=None)
    core = ";".join(part for part in rule.text.split(";") if not part.startswith(("COUNT=", "UNTIL=")))
    kept, last_local = [due_at], start
    # dateutil's first WEEKLY period starts at DTSTART's day; start INTERVAL weeks earlier (same
    # weekday, time and week alignment) so that BYSETPOS counts over the series' whole first week.
    interval = rule.options["interval"] if rule.freq == WEEKLY else 0
    for local in rrulestr(core, dtstart=start - timedelta(weeks=interval)):
        if local <= start:
            continue
        if len(kept) > steps or (rule.count is not None and len(kept) >= rule.count):
            break
        if local - last_local > timedelta(days=365 * (HORIZON_YEARS - 1)):
            return kept, local
        instant = local.replace(tzinfo=zone).astimezone(UTC)
        if isinstance(rule.until, datetime):
            if instant > rule.until if rule.until.tzinfo else local > rule.until:
                break
        elif isinstance(rule.until, date) and local.date() > rule.until:
            break
        if instant > kept[-1]:
            kept.append(instant)
            last_local = local
    return kept, None


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(rule_texts(valid_only=True), zones, due_dates)
def test_next_due_dates_increase_and_are_the_series_occurrences_expanded_from_its_start(
    text: str, zone_name: str, due_at: datetime
) -> None:
    try:
        rule, zone = parse_rule(text), parse_time_zone(zone_name)
        occurrence = start_series(rule, zone, due_at)
    except ValueError:
        assume(False)
        return
    steps = 8
    dues = [due_at]
    while len(dues) <= steps and (following := next_occurrence(rule, zone, occurrence, dues[-1])) is not None:
        assert following.due_at > dues[-1]
        assert following.occurrence.index == len(dues)
        dues.append(following.due_at)
        occurrence = following.occurrence
    expected, beyond_horizon = reference(rule, zone_name, due_at, steps)
    if beyond_horizon is None:
        assert dues == expected
    else:  # the reference stops 49 years after an occurrence, the engine within 50
        assert dues[: len(expected)] == expected
        assert len(dues) <= len(expected) + 1
