"""Manual order keys: strictly between their neighbours in byte order, bounded by rebalancing."""

from __future__ import annotations

import itertools
import random
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import ARRAY, Text, bindparam, collate, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_api.planner.ordering import MAX_KEY_LENGTH, is_key, key_between, needs_rebalance, rebalanced

SAFE = set(string.ascii_letters + string.digits)


def in_byte_order(keys: list[str]) -> bool:
    """Strictly increasing as PostgreSQL's C collation compares them: byte by byte (memcmp)."""
    encoded = [key.encode() for key in keys]
    return all(a < b for a, b in itertools.pairwise(encoded))


def place(keys: list[str], index: int) -> tuple[list[str], bool]:
    """The group's keys with an item put at `index`, as the integration does it: one key between its
    neighbours, or the whole group renumbered (True) when that key would be too long."""
    key = key_between(keys[index - 1] if index > 0 else None, keys[index] if index < len(keys) else None)
    if needs_rebalance(key):
        return rebalanced(len(keys) + 1), True
    return [*keys[:index], key, *keys[index:]], False


def test_keys_use_only_characters_safe_in_json_urls_and_any_collation_order() -> None:
    keys = rebalanced(5000)
    assert set("".join(keys)) <= SAFE
    assert in_byte_order(keys)
    assert all(is_key(key) for key in keys)
    assert max(map(len, keys)) == 4


def test_new_items_go_last_with_short_keys() -> None:
    keys = [key_between(None, None)]
    for _ in range(20_000):
        keys.append(key_between(keys[-1], None))
    assert in_byte_order(keys)
    assert max(map(len, keys)) <= 4


def test_prepending_again_and_again_keeps_keys_short() -> None:
    keys = [key_between(None, None)]
    for _ in range(20_000):
        keys.insert(0, key_between(None, keys[0]))
    assert in_byte_order(keys)
    assert max(map(len, keys)) <= 5


@pytest.mark.parametrize("pattern", ["same-gap", "alternating"])
def test_ten_thousand_moves_into_one_gap_keep_order_and_bounded_keys(pattern: str) -> None:
    """Move the 50th item right after the first, 10 000 times (or alternate around the newest one)."""
    keys: list[str] = rebalanced(100)
    names = list(range(100))
    rebalances, target = 0, 1
    for move in range(10_000):
        name = names.pop(50)
        keys.pop(50)
        if pattern == "alternating":
            target = 1 + move % 2  # before or after the item moved last
        names.insert(target, name)
        keys, renumbered = place(keys, target)
        rebalances += renumbered
        assert len(keys) == 100
        assert max(map(len, keys)) <= MAX_KEY_LENGTH
    assert in_byte_order(keys)
    assert names[target] == name
    assert 0 < rebalances <= 10_000 // 250  # rare: measured ~26 in 10 000 same-gap moves


def test_keys_between_refuse_wrong_order_and_foreign_keys() -> None:
    with pytest.raises(ValueError, match="sort before"):
        key_between("a1", "a0")
    with pytest.raises(ValueError, match="sort before"):
        key_between("a1", "a1")
    for bad in ["", "a", "a0 ", "a/", "a0é", "a00", "b0", "x" * (MAX_KEY_LENGTH + 1)]:
        assert not is_key(bad)
        with pytest.raises(ValueError, match="not a position key"):
            key_between(bad, None)
    with pytest.raises(ValueError, match="negative"):
        rebalanced(-1)
    assert rebalanced(0) == []


operations = st.lists(
    st.one_of(
        st.tuples(st.just("first"), st.just(0)),
        st.tuples(st.just("last"), st.just(0)),
        st.tuples(st.just("between"), st.integers(0, 10**6)),
        st.tuples(st.just("move"), st.tuples(st.integers(0, 10**6), st.integers(0, 10**6))),
    ),
    max_size=300,
)


@given(operations)
def test_any_sequence_of_inserts_and_moves_keeps_order_and_uniqueness(steps: list[tuple[str, Any]]) -> None:
    names: list[int] = []
    keys: list[str] = []
    for number, (kind, argument) in enumerate(steps):
        if kind == "move" and names:
            source = argument[0] % len(names)
            name = names.pop(source)
            keys.pop(source)
            target = argument[1] % (len(names) + 1)
        else:
            name = number
            target = argument % (len(names) + 1) if kind == "between" else 0 if kind == "first" else len(names)
        names.insert(target, name)
        keys, _ = place(keys, target)
        assert in_byte_order(keys)
        assert len(set(keys)) == len(keys) == len(names)
        assert all(is_key(key) and len(key) <= MAX_KEY_LENGTH for key in keys)


async def test_postgresql_c_collation_orders_keys_as_bytes(db_engine: AsyncEngine) -> None:
    """The column's COLLATE "C" sorts keys as this module orders them (a linguistic collation may not)."""
    keys = rebalanced(300)
    for _ in range(300):
        keys, _ = place(keys, random.randrange(len(keys) + 1))
    shuffled = random.sample(keys, len(keys))
    key = func.unnest(bindparam("keys", type_=ARRAY(Text))).column_valued("key")
    async with db_engine.connect() as connection:
        ordered = (await connection.execute(select(key).order_by(collate(key, "C")), {"keys": shuffled})).scalars()
        assert list(ordered) == keys
