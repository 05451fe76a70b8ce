"""RRULE text: what `parse_rule` accepts, builds and refuses (tests/planner/strategies.py makes rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile.strategies import UNICODE_DIGITS
from tests.planner.strategies import rule_texts
from todo_api.planner.rules import MAX_RULE_LENGTH, parse_rule


def test_issue_example_parses_with_count_apart_from_the_expansion() -> None:
    rule = parse_rule("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10")
    assert rule.freq == WEEKLY
    assert rule.count == 10
    assert rule.until is None
    assert rule.text == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"
    assert "count" not in rule.options


def test_names_and_values_are_case_insensitive_and_stored_upper_case() -> None:
    rule = parse_rule("freq=monthly;byday=-1fr;interval=2")
    assert (rule.freq, rule.text) == (MONTHLY, "FREQ=MONTHLY;BYDAY=-1FR;INTERVAL=2")
    assert rule.options["interval"] == 2


@pytest.mark.parametrize(
    ("value", "until"),
    [
        ("20301231T235959Z", datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("20301231T090000", datetime(2030, 12, 31, 9)),
        ("20301231", date(2030, 12, 31)),
    ],
)
def test_until_is_an_instant_a_local_time_or_a_date(value: str, until: date) -> None:
    assert parse_rule(f"FREQ=DAILY;UNTIL={value}").until == until


@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY", "HOURLY"])
def test_sub_daily_frequencies_are_refused(freq: str) -> None:
    with pytest.raises(ValueError, match=f"FREQ={freq} is not supported"):
        parse_rule(f"FREQ={freq};INTERVAL=2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("FREQ=DAILY\nFREQ=WEEKLY", "one line"),
        ("FREQ=DAILY\r\n", "one line"),
        ("FREQ=DAILY; COUNT=2", "without spaces"),
        ("RRULE:FREQ=DAILY", "only the rule's value"),
        ("DTSTART:20300101T090000Z\nRRULE:FREQ=DAILY", "one line"),
        ("DTSTART=20300101T090000Z;FREQ=DAILY", "unknown rule part DTSTART"),
        ("FREQ=DAILY;RDATE=20300101", "unknown rule part RDATE"),
        ("FREQ=DAILY;EXDATE=20300101", "unknown rule part EXDATE"),
        ("FREQ=YEARLY;BYEASTER=0", "unknown rule part BYEASTER"),
        ("FREQ=DAILY;X-NAME=1", "unknown rule part X-NAME"),
        ("FREQ=DAILY;;COUNT=2", "NAME=VALUE"),
        ("FREQ=DAILY;", "NAME=VALUE"),
        ("FREQ=DAILY;COUNT", "NAME=VALUE"),
        ("FREQ=DAILY;COUNT=", "NAME=VALUE"),
        ("=DAILY", "NAME=VALUE"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given more than once"),
        ("COUNT=3", "needs FREQ"),
        ("FREQ=FORTNIGHTLY", "FREQ must be"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20300101T000000Z", "COUNT and UNTIL"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 1000"),
        ("FREQ=DAILY;INTERVAL=1001", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=1.5", "INTERVAL"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number from 1"),
        ("FREQ=DAILY;COUNT=1000000000", "COUNT"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH must be a comma-separated list of whole numbers from 1 to 12"),
        ("FREQ=YEARLY;BYMONTH=0", "BYMONTH"),
        ("FREQ=YEARLY;BYMONTH=-1", "BYMONTH"),
        ("FREQ=YEARLY;BYMONTH=1,,2", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "BYMONTHDAY"),
        ("FREQ=YEARLY;BYYEARDAY=367", "BYYEARDAY"),
        ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR"),
        ("FREQ=DAILY;BYMINUTE=60", "BYMINUTE"),
        ("FREQ=DAILY;BYSECOND=60", "BYSECOND"),
        ("FREQ=MONTHLY;BYDAY=1MO;BYSETPOS=0", "BYSETPOS"),
        ("FREQ=WEEKLY;BYDAY=MONDAY", "BYDAY must list weekdays"),
        ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY must list weekdays"),
        ("FREQ=MONTHLY;BYDAY=54MO", "BYDAY must list weekdays"),
        ("FREQ=MONTHLY;BYDAY=MO(+1)", "BYDAY must list weekdays"),
        ("FREQ=WEEKLY;WKST=XX", "WKST must be one of"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must be a date"),
        ("FREQ=DAILY;UNTIL=20300231", "UNTIL is not a valid date"),
        ("FREQ=DAILY;UNTIL=20301231T250000Z", "UNTIL is not a valid date"),
        ("FREQ=DAILY;UNTIL=2030-12-31", "UNTIL must be a date"),
        ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO is only allowed with FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYYEARDAY=1", "BYYEARDAY is only allowed with FREQ=YEARLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY is not allowed with FREQ=WEEKLY"),
        ("FREQ=WEEKLY;BYDAY=1MO", "needs FREQ=MONTHLY or FREQ=YEARLY"),
        ("FREQ=DAILY;BYDAY=-1FR", "needs FREQ=MONTHLY or FREQ=YEARLY"),
        ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO", "cannot be combined with BYWEEKNO"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS needs another BYxxx part"),
        ("FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,30", "48 times"),
        ("FREQ=DAILY;BYMINUTE=" + ",".join(str(n) for n in range(25)), "25 times a day"),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0,10,20,30,40;BYSECOND=0,10,20,30,40", "25 times a day"),
        ("FREQ=DAILY;COUNT=" + "1" * MAX_RULE_LENGTH, "longer than"),
        ("FREQ=DAILY;COUNT=٣", "one line of ASCII"),
        ("FREQ=DAILY;COUNT=\x00", "one line of ASCII"),
    ],
)
def test_malformed_rules_are_refused_with_a_message_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(text)


def test_twenty_four_times_a_day_is_the_limit() -> None:
    parse_rule("FREQ=DAILY;BYHOUR=" + ",".join(str(h) for h in range(24)))
    parse_rule("FREQ=DAILY;BYHOUR=8,12,16,20;BYMINUTE=0,15,30,45;BYSECOND=0")
    with pytest.raises(ValueError, match="32 times a day"):
        parse_rule("FREQ=DAILY;BYHOUR=6,8,12,16,20,22,23,0;BYMINUTE=0,15,30,45")


@given(rule_texts(), st.datetimes(datetime(1990, 1, 1), datetime(2060, 12, 31)))
def test_accepted_rules_build_the_rrule_dateutils_own_parser_reads(text: str, start: datetime) -> None:
    """The strict grammar's keyword arguments make the rrule `rrulestr` makes of the same text
    (dateutil renders both from their normalised state; UNTIL is applied by recurrence.py)."""
    try:
        rule = parse_rule(text)
    except ValueError:
        return
    without_until = ";".join(part for part in rule.text.split(";") if not part.startswith("UNTIL="))
    theirs = rrulestr(without_until, dtstart=start)
    ours = rrule(rule.freq, dtstart=start, count=rule.count, **rule.options)
    assert str(ours) == str(theirs)


RULE_ALPHABET = st.sampled_from(
    [
        *"FREQ=DAILY;WEEKLYMONTHYR,+-0123456789TZ:\n ",
        "BYDAY",
        "BYMONTHDAY",
        "BYSETPOS",
        "COUNT",
        "UNTIL",
        "INTERVAL",
        "WKST",
        "BYHOUR",
        "RRULE:",
        *UNICODE_DIGITS,
        "\x00",
        "é",
    ]
)


@given(st.lists(RULE_ALPHABET, max_size=60).map("".join) | st.text(max_size=80))
def test_any_text_parses_or_is_refused_with_a_value_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except ValueError:
        return
    assert rule.text.isascii()
    assert rule.freq in (DAILY, WEEKLY, MONTHLY, YEARLY)
    assert parse_rule(rule.text) == rule  # the canonical form reads back the same
