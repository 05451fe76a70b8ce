"""Manual order: fractional keys whose byte order is the user's order among siblings.

A `position` is a string over the 62 ASCII characters 0-9, A-Z, a-z; their byte order is their
order (PostgreSQL `COLLATE "C"` compares bytes), and they are safe in JSON and URLs unescaped.
Keys come from the `fractional-indexing` package (David Greenspan's scheme, as in rocicorp's
fractional-indexing for JavaScript; CC0): an integer part of variable length ("a0", "a1", …, "az",
"b00", …) that makes appending and prepending grow keys only logarithmically, and a fractional
part for keys between two others. The package is small, complete and has not needed a release since
2023; it ships no type hints, so this module is its typed face (and turns its errors into
ValueError).

Moving an item writes only its own key. Inserting again and again into the same gap makes keys
longer (~1 character per 6 insertions), so when a new key `needs_rebalance`, the integration gives
the whole sibling group `rebalanced(n)` keys (short and evenly spaced) in one unit of work, rarely:
at most once per ~300 insertions into one gap (tests/planner/test_ordering.py measures it).
"""

from __future__ import annotations

import re
from typing import Final

import fractional_indexing

MAX_KEY_LENGTH: Final = 64
"""Keys longer than this are never stored: the group is rebalanced instead."""

_KEY: Final = re.compile(r"[0-9A-Za-z]{2,64}")


def is_key(value: str) -> bool:
    """Whether `value` is a key this module could have made (the database check mirrors it)."""
    if not _KEY.fullmatch(value):
        return False
    try:
        fractional_indexing.validate_order_key(value)
    except fractional_indexing.FIError:
        return False
    return True


def key_between(before: str | None, after: str | None) -> str:
    """A key strictly between `before` and `after`; None stands for the start or end of the group.

    `key_between(last, None)` puts an item last (new todos), `key_between(None, first)` first.
    """
    if any(neighbour is not None and not is_key(neighbour) for neighbour in (before, after)):
        raise ValueError("not a position key")
    if before is not None and after is not None and before >= after:
        raise ValueError("the first key must sort before the second")
    key: str = fractional_indexing.generate_key_between(before, after)
    return key


def needs_rebalance(key: str) -> bool:
    """Whether `key` is too long to store: rebalance its sibling group instead."""
    return len(key) > MAX_KEY_LENGTH


def rebalanced(n: int) -> list[str]:
    """`n` short, evenly spaced keys in order, to renumber a sibling group of `n` items."""
    if n < 0:
        raise ValueError("n must not be negative")
    keys: list[str] = fractional_indexing.generate_n_keys_between(None, None, n)
    return keys
