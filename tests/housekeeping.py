"""The app's own housekeeping, run promptly, so tests can check what it does with the app's settings.

In production each worker runs a round every 5 minutes (after it served requests). Here the
rounds of apps created after `prompt_housekeeping` follow each other within milliseconds, and are
counted. Nothing else changes: each round is `maintenance.purge_once`, called by the app's own
`maintenance.run_forever` with the retention periods `create_app` derived from its settings
(`IDEMPOTENCY_RETENTION_HOURS`, `TRASH_RETENTION_DAYS`), on the app's own database pool.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

import pytest

from todo_api import maintenance

INTERVAL_SECONDS = 0.02
TIMEOUT_SECONDS = 60.0  # a failure guard, not a measurement


@dataclass
class Rounds:
    """Rounds by their start number: how many started, which completed, what failed."""

    started: int = 0
    finished: list[int] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set when a round ends

    async def after(self, mark: int) -> None:
        """Return once a round numbered `mark` or later (`mark`: a value of `started`) completed.

        Take `mark` after changing the database, then send the app a request: a round runs only
        after requests, and one that started before `mark` may have read the rows before the change.
        """
        async with asyncio.timeout(TIMEOUT_SECONDS):
            while True:
                self.changed.clear()
                assert not self.failures, f"a housekeeping round failed: {self.failures!r}"
                if any(number >= mark for number in self.finished):
                    return
                await self.changed.wait()


def prompt_housekeeping(monkeypatch: pytest.MonkeyPatch) -> Rounds:
    """Apps created from now on (in this test) run their housekeeping rounds promptly; counted."""
    rounds = Rounds()
    purge_once, run_forever = maintenance.purge_once, maintenance.run_forever

    async def counted_round(*args: Any, **kwargs: Any) -> None:
        number = rounds.started
        rounds.started += 1
        try:
            await purge_once(*args, **kwargs)
        except Exception as exc:
            rounds.failures.append(exc)
            rounds.changed.set()
            raise
        rounds.finished.append(number)
        rounds.changed.set()

    monkeypatch.setattr(maintenance, "purge_once", counted_round)
    monkeypatch.setattr(maintenance, "run_forever", functools.partial(run_forever, interval=INTERVAL_SECONDS))
    return rounds
