"""The fair gate in front of the connection pool: first come, first served, bounded waiting."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc

from todo_api.storage.database import FairGate


async def test_waiters_get_slots_in_arrival_order_even_when_a_newcomer_races_a_release() -> None:
    gate = FairGate(1, timeout_seconds=5)
    order: list[str] = []
    go = asyncio.Event()

    async def waiter(name: str) -> None:
        async with gate:
            order.append(name)

    async def first_then_again() -> None:
        async with gate:
            order.append("first")
            await go.wait()
        # The slot was just released and waiter-0 woken, but it has not run yet: asking again
        # without yielding must not jump the queue (SQLAlchemy's pool queue would let it).
        async with gate:
            order.append("again")

    first = asyncio.create_task(first_then_again())
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(waiter(f"waiter-{n}")) for n in range(3)]
    await asyncio.sleep(0.01)  # all three are queued behind `first`
    go.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "waiter-0", "waiter-1", "waiter-2", "again"]


async def test_waiting_longer_than_the_timeout_is_a_pool_timeout_and_leaks_no_slot() -> None:
    gate = FairGate(1, timeout_seconds=0.05)
    held = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        async with gate:
            held.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    with pytest.raises(sa_exc.TimeoutError):  # mapped to 503 + Retry-After like an exhausted pool
        async with gate:
            pytest.fail("entered a full gate")
    done.set()
    await holder
    async with asyncio.timeout(1), gate:  # the slot came back, the timed-out waiter took none
        pass
