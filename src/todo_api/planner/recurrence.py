"""Recurring todos: the next due date of a series, on wall-clock time in the todo's time zone.

A series is (rule, time zone, current occurrence). The rule is expanded on naive wall-clock time, so
"09:00 Europe/Berlin" stays 09:00 local across daylight-saving changes; each local time is then
read in the time zone as RFC 5545 §3.3.5 reads a DATE-TIME with a TZID:
- a time that occurs twice (autumn fold) is its first occurrence (summer time);
- a time skipped by a spring gap is read with the offset before the gap, so 02:30 becomes 03:30;
- the next due date is strictly after the current one: an occurrence that lands on or before it
  (02:30 and 03:30 both read as 03:30 on the spring day) is skipped and not counted.

State the integration stores (`Occurrence`): the current occurrence's wall-clock time as the rule
produced it (`local`, before the gap shift: 02:30, not 03:30; otherwise 03:30 would become the
series' time) and its `index` (0 for the todo's first due date, +1 per due date). The rule is
expanded from `local`: a genuine occurrence yields exactly the continuation of the original series
(RFC 5545 fills missing BYxxx parts from DTSTART, and every occurrence shares those values; INTERVAL
counts from an occurrence's own period), so nothing is iterated from the series start.
COUNT=n means the todo is due n times: indexes 0..n-1; the first due date counts even when it does
not match the rule (RFC 5545: DTSTART is always the first instance). UNTIL is inclusive.

The search for the next occurrence is bounded: dateutil searches up to year 9999 for a rule that
never occurs again (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30 takes ~10 s; dateutil#1393), checking UNTIL
only when it finds one. Here it gives up after `HORIZON_YEARS` of calendar: `start_series` refuses
such a rule (ValueError → 422); `next_occurrence` treats it as ended (None).
"""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, time, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule

from todo_api.planner.rules import Rule, Until

DEFAULT_TIME_ZONE: Final = "UTC"
HORIZON_YEARS: Final = 50
MAX_TIME_ZONE_LENGTH: Final = 64


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Where a series stands: the current due date's wall-clock time (as the rule made it) and index."""

    local: datetime  # naive: wall-clock time in the series' time zone
    index: int


class Next(NamedTuple):
    due_at: datetime  # aware, UTC
    occurrence: Occurrence


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_time_zone(name: str) -> ZoneInfo:
    """An IANA time zone by its exact name (Europe/Berlin); ValueError for anything else."""
    if len(name) > MAX_TIME_ZONE_LENGTH or name not in _zone_names():
        raise ValueError("unknown time zone: use an IANA name such as Europe/Berlin or UTC")
    return ZoneInfo(name)


def start_series(rule: Rule, zone: ZoneInfo, due_at: datetime) -> Occurrence:
    """The state of a series whose first due date is `due_at`; ValueError if the rule never recurs.

    Call it when a recurring todo is created and whenever its rule, time zone or due date is set.
    The rule is checked without COUNT/UNTIL: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30" is refused even
    with COUNT=1, while a rule that ends right away (COUNT=1, UNTIL in the past) is accepted.
    """
    try:
        local = due_at.astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("due date is out of range for a recurring todo") from None
    if next(_occurrences_after(rule, local), None) is None:
        raise ValueError(f"the rule has no occurrence within {HORIZON_YEARS} years of the due date")
    return Occurrence(local=local, index=0)


def next_occurrence(rule: Rule, zone: ZoneInfo, current: Occurrence, due_at: datetime) -> Next | None:
    """The series' next due date strictly after `due_at` (the current one), or None when it has ended."""
    index = current.index + 1
    if rule.count is not None and index >= rule.count:
        return None
    for local in _occurrences_after(rule, current.local):
        instant = _instant(local, zone)
        if instant is None or (rule.until is not None and not _within(rule.until, local, instant)):
            return None
        if instant > due_at:
            return Next(instant, Occurrence(local=local, index=index))
    return None


def _instant(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant a wall-clock time names: fold=0 is RFC 5545's reading of folds and gaps."""
    try:
        return local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    except OverflowError:  # the last hours of year 9999
        return None


def _within(until: Until, local: datetime, instant: datetime) -> bool:
    if isinstance(until, datetime):
        return instant <= until if until.tzinfo is not None else local <= until
    return local.date() <= until


def _occurrences_after(rule: Rule, anchor: datetime) -> Iterator[datetime]:
    """The rule's wall-clock occurrences strictly after `anchor`, within the horizon."""
    horizon = anchor + timedelta(days=366 * HORIZON_YEARS) if anchor.year < MAXYEAR - HORIZON_YEARS else None
    dtstart, options = _expansion_start(rule, anchor)
    expansion = _BoundedRule(rule.freq, dtstart=dtstart, budget=_budget(rule), **options)
    try:
        for local in expansion:
            if horizon is not None and local > horizon:
                return
            if local > anchor:
                yield local
    except _SearchExhausted:
        return


def _expansion_start(rule: Rule, anchor: datetime) -> tuple[datetime, dict[str, Any]]:
    """Where dateutil starts expanding. It builds a WEEKLY rule's first week from DTSTART's day on,
    so BYSETPOS would count from the anchor instead of over the whole week (RFC 5545). With BYSETPOS
    the expansion starts at the week's first day, and what DTSTART supplies is made explicit."""
    if rule.freq != WEEKLY or "bysetpos" not in rule.options:
        return anchor, rule.options
    options = {"byweekday": anchor.weekday(), "byhour": anchor.hour, "byminute": anchor.minute} | rule.options
    options.setdefault("bysecond", anchor.second)
    week_start = anchor - timedelta(days=(anchor.weekday() - options["wkst"]) % 7)
    return datetime.combine(week_start.date(), time()), options


def _budget(rule: Rule) -> int:
    """Calendar rebuilds in `HORIZON_YEARS`: dateutil rebuilds once per year (YEARLY), otherwise
    once per month, or once per period when INTERVAL makes a period longer than a month."""
    interval: int = rule.options["interval"]
    periods_per_year = _PERIODS_PER_YEAR[rule.freq] / interval
    rebuilds_per_year = periods_per_year if rule.freq == YEARLY else min(12, periods_per_year)
    return math.ceil(HORIZON_YEARS * rebuilds_per_year) + 2


_PERIODS_PER_YEAR: Final = {YEARLY: 1, MONTHLY: 12, WEEKLY: 52, DAILY: 365}


class _SearchExhausted(Exception):
    pass


class _BoundedRule(rrule):
    """dateutil's rrule with a budget of calendar periods for one search.

    dateutil's iterator loops over periods without yielding while none matches, so a search cannot
    be stopped from outside. It re-reads the rule's (here always empty) BYEASTER filter once per
    year (FREQ=YEARLY) or month (otherwise) when it rebuilds its calendar masks: that read spends
    the budget. tests/planner/test_recurrence.py proves the bound on every frequency.
    """

    def __init__(self, *args: Any, budget: int, **kwargs: Any) -> None:
        self.budget = budget
        super().__init__(*args, **kwargs)

    @property
    def _byeaster(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _SearchExhausted
        return None

    @_byeaster.setter
    def _byeaster(self, value: object) -> None:
        if value is not None:  # rrule.__init__ stores None: BYEASTER is not part of the grammar
            raise TypeError("BYEASTER is not supported")
