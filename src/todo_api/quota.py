"""Per-user row caps (MAX_TODOS_PER_USER, MAX_LISTS_PER_USER) without a COUNT on every create.

Each worker keeps an estimate of each user's row count: the last exact count plus the rows it
has created since. Far below the cap (under 90 %) the estimate decides; near the cap, or after
`RECOUNT_SECONDS`, the database counts exactly. Deletes only make the estimate high (which
triggers an exact count sooner), never low, so the cap holds — except that creates in other
workers since the last count are unseen: concurrent bursts can overshoot a cap by that much.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

RECOUNT_SECONDS = 30.0
HEADROOM = 0.9
MAX_ENTRIES = 10_000


@dataclass(slots=True)
class _Estimate:
    rows: int
    counted_at: float


class RowGauge:
    def __init__(self) -> None:
        self._estimates: OrderedDict[tuple[str, uuid.UUID], _Estimate] = OrderedDict()

    def admits(self, kind: str, user_id: uuid.UUID, limit: int, count: Callable[[], int]) -> bool:
        """True if one more row of `kind` keeps the user within `limit` (0: unlimited)."""
        if limit == 0:
            return True
        key = (kind, user_id)
        now = time.monotonic()
        estimate = self._estimates.get(key)
        if estimate is None or now - estimate.counted_at > RECOUNT_SECONDS or estimate.rows >= limit * HEADROOM:
            estimate = _Estimate(count(), now)
            self._estimates[key] = estimate
            while len(self._estimates) > MAX_ENTRIES:
                self._estimates.popitem(last=False)
        self._estimates.move_to_end(key)
        if estimate.rows >= limit:
            return False
        estimate.rows += 1
        return True


@dataclass(frozen=True, slots=True)
class Quota:
    """A cap and the worker's gauge, handed from the router to a service."""

    limit: int
    gauge: RowGauge
