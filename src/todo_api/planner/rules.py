"""RFC 5545 recurrence rules (the value of one RRULE property), parsed by a strict grammar.

dateutil's own string parser is lenient where an API must not be: it reads BYEASTER, a "RRULE:"
name, DTSTART/RDATE/EXDATE lines, Unicode digits, UNTIL through its fuzzy date parser, and
`INTERVAL=0`, which makes its iterator loop forever (dateutil#1441). So the text is parsed here,
part by part, against the RFC 5545 grammar (§3.3.10, including its table of which BYxxx part goes
with which FREQ), and the result is the keyword arguments of dateutil's `rrule`, which expands it.

Refused: FREQ=SECONDLY|MINUTELY|HOURLY, anything but one rule (no property names, no lines), unknown
or repeated parts, out-of-range values, COUNT together with UNTIL (RFC 5545: MUST NOT), and rules
that fire more than `MAX_TIMES_PER_DAY` times a day. Rules that never (or only absurdly rarely)
occur depend on the series start and are refused by `recurrence.start_series`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, weekdays

MAX_RULE_LENGTH: Final = 500
MAX_INTERVAL: Final = 1000
MAX_TIMES_PER_DAY: Final = 24

type Frequency = Literal[0, 1, 2, 3]
FREQUENCIES: Final[dict[str, Frequency]] = {"YEARLY": YEARLY, "MONTHLY": MONTHLY, "WEEKLY": WEEKLY, "DAILY": DAILY}
SUB_DAILY: Final = frozenset({"HOURLY", "MINUTELY", "SECONDLY"})
WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

# Integer list parts: (smallest, largest, signed). A signed value v means 1 <= |v| <= largest.
_INT_PARTS: Final[dict[str, tuple[int, int, bool]]] = {
    "BYSECOND": (0, 59, False),  # RFC 5545 allows 60 (leap second); Python's datetime does not
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
}
_SIGNED_LIST = re.compile(r"[+-]?[0-9]{1,3}(?:,[+-]?[0-9]{1,3})*")
_UNSIGNED_LIST = re.compile(r"[0-9]{1,2}(?:,[0-9]{1,2})*")
_BYDAY_ITEM = re.compile(r"(?:([+-]?)([0-9]{1,2}))?(MO|TU|WE|TH|FR|SA|SU)")
_NUMBER = re.compile(r"[0-9]{1,9}")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")
_PART_NAMES: Final = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", *_INT_PARTS})

type Until = datetime | date
"""UNTIL as written: an aware UTC datetime (`...Z`, an instant), a naive datetime (wall-clock time
in the todo's time zone) or a date (every occurrence on that local date or before)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule. `text` is its canonical form (part names and values upper-case)."""

    text: str
    freq: Frequency
    options: dict[str, Any]  # dateutil `rrule` keyword arguments, without dtstart, count and until
    count: int | None
    until: Until | None


def parse_rule(text: str) -> Rule:
    """Parse one RRULE value such as `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`; ValueError says what is wrong."""
    parts = _split(text)
    if "FREQ" not in parts:
        raise ValueError("the rule needs FREQ (DAILY, WEEKLY, MONTHLY or YEARLY)")
    freq_name = parts["FREQ"]
    if freq_name in SUB_DAILY:
        raise ValueError(
            f"FREQ={freq_name} is not supported: a todo recurs at most daily (DAILY, WEEKLY, MONTHLY, YEARLY)"
        )
    if freq_name not in FREQUENCIES:
        raise ValueError("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    freq = FREQUENCIES[freq_name]
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL cannot both be given (RFC 5545)")
    options: dict[str, Any] = {"wkst": 0, "interval": 1}  # RFC 5545 default week start: Monday
    for name, value in parts.items():
        if name in _INT_PARTS:
            options[name.lower()] = _int_list(name, value)
        elif name == "BYDAY":
            options["byweekday"] = _weekdays(value)
        elif name == "WKST":
            options["wkst"] = _weekday(name, value)
        elif name == "INTERVAL":
            options["interval"] = _number(name, value, 1, MAX_INTERVAL)
    _check_combination(freq_name, parts, options)
    _check_times_per_day(options)
    count = _number("COUNT", parts["COUNT"], 1, 999_999_999) if "COUNT" in parts else None
    until = _until(parts["UNTIL"]) if "UNTIL" in parts else None
    canonical = ";".join(f"{name}={value}" for name, value in parts.items())
    return Rule(text=canonical, freq=freq, options=options, count=count, until=until)


def _split(text: str) -> dict[str, str]:
    if len(text) > MAX_RULE_LENGTH:
        raise ValueError(f"the rule is longer than {MAX_RULE_LENGTH} characters")
    if not text:
        raise ValueError("the rule is empty")
    if not text.isascii() or not text.isprintable() or " " in text:
        raise ValueError("the rule must be one line of ASCII without spaces, e.g. FREQ=WEEKLY;BYDAY=MO")
    if ":" in text:
        raise ValueError("give only the rule's value, e.g. FREQ=WEEKLY;BYDAY=MO (no RRULE:, DTSTART, RDATE or EXDATE)")
    parts: dict[str, str] = {}
    for part in text.upper().split(";"):
        name, equals, value = part.partition("=")
        if not equals or not name or not value:
            raise ValueError("every rule part must be NAME=VALUE, separated by ';'")
        if name not in _PART_NAMES:
            raise ValueError(f"unknown rule part {name}")
        if name in parts:
            raise ValueError(f"{name} is given more than once")
        parts[name] = value
    return parts


def _number(name: str, value: str, smallest: int, largest: int) -> int:
    if not _NUMBER.fullmatch(value) or not smallest <= int(value) <= largest:
        raise ValueError(f"{name} must be a whole number from {smallest} to {largest}")
    return int(value)


def _int_list(name: str, value: str) -> tuple[int, ...]:
    smallest, largest, signed = _INT_PARTS[name]
    pattern = _SIGNED_LIST if signed else _UNSIGNED_LIST
    numbers = tuple(int(item) for item in value.split(",")) if pattern.fullmatch(value) else ()
    if signed and numbers and all(1 <= abs(n) <= largest for n in numbers):
        return numbers
    if not signed and numbers and all(smallest <= n <= largest for n in numbers):
        return numbers
    allowed = f"1 to {largest} or -{largest} to -1" if signed else f"{smallest} to {largest}"
    raise ValueError(f"{name} must be a comma-separated list of whole numbers from {allowed}")


def _weekday(name: str, value: str) -> int:
    if value not in WEEKDAYS:
        raise ValueError(f"{name} must be one of MO, TU, WE, TH, FR, SA, SU")
    return WEEKDAYS.index(value)


def _weekdays(value: str) -> tuple[Any, ...]:
    days = []
    for item in value.split(","):
        match = _BYDAY_ITEM.fullmatch(item)
        if match is None or (match[2] is not None and not 1 <= int(match[2]) <= 53):
            raise ValueError(
                "BYDAY must list weekdays (MO..SU), each optionally preceded by a position such as 1 or -1"
            )
        day = weekdays[WEEKDAYS.index(match[3])]
        days.append(day if match[2] is None else day(int(match[1] + match[2])))
    return tuple(days)


def _check_combination(freq: str, parts: dict[str, str], options: dict[str, Any]) -> None:
    """RFC 5545 §3.3.10: which BYxxx parts go with which FREQ (dateutil accepts them all silently)."""
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise ValueError("BYWEEKNO is only allowed with FREQ=YEARLY")
    if "BYYEARDAY" in parts and freq != "YEARLY":
        raise ValueError("BYYEARDAY is only allowed with FREQ=YEARLY")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise ValueError("BYMONTHDAY is not allowed with FREQ=WEEKLY")
    if any(day.n is not None for day in options.get("byweekday", ())):
        if freq not in ("MONTHLY", "YEARLY"):
            raise ValueError("a BYDAY position (such as 1MO or -1FR) needs FREQ=MONTHLY or FREQ=YEARLY")
        if "BYWEEKNO" in parts:
            raise ValueError("a BYDAY position (such as 1MO) cannot be combined with BYWEEKNO")
    if "BYSETPOS" in parts and not any(name.startswith("BY") and name != "BYSETPOS" for name in parts):
        raise ValueError("BYSETPOS needs another BYxxx part to select from")


def _check_times_per_day(options: dict[str, Any]) -> None:
    times = 1
    for name in ("byhour", "byminute", "bysecond"):
        times *= len(set(options.get(name, (0,))))
    if times > MAX_TIMES_PER_DAY:
        raise ValueError(
            f"the rule fires {times} times a day (BYHOUR x BYMINUTE x BYSECOND); at most {MAX_TIMES_PER_DAY}"
        )


def _until(value: str) -> Until:
    match = _UNTIL.fullmatch(value)
    if match is None:
        raise ValueError(
            "UNTIL must be a date (20301231) or a date-time (20301231T235959Z, or without Z for local time)"
        )
    try:
        if match[2] is None:
            return datetime.strptime(match[1], "%Y%m%d").date()
        local = datetime.strptime(match[1] + match[2], "%Y%m%d%H%M%S")
    except ValueError:
        raise ValueError("UNTIL is not a valid date") from None
    return local.replace(tzinfo=UTC) if match[3] else local
