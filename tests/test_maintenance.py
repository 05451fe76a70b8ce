"""Housekeeping: expired idempotency keys are deleted, and an idle worker sends no statement at all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tests.api import Api
from tests.conftest import AppClientFactory
from tests.housekeeping import prompt_housekeeping
from todo_api import maintenance
from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.http.middleware import Activity
from todo_api.models.idempotency import IdempotencyKey
from todo_api.ratelimit import RateLimiter
from todo_api.storage.database import create_engine, database

RETENTION = timedelta(hours=24)


async def _stored_keys(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set((await connection.execute(select(col(IdempotencyKey.key)))).scalars())


async def test_a_round_deletes_keys_older_than_the_retention_and_keeps_the_rest(
    api: Api, db_engine: AsyncEngine, base_settings: dict[str, Any]
) -> None:
    for name in ("old", "fresh"):
        response = await api.request("POST", "/api/todos", json={"title": name}, headers={"Idempotency-Key": name})
        assert response.status_code == 201
    async with db_engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")  # type: ignore[arg-type]
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 25))
        )
    settings = load_settings(**base_settings)
    engine = create_engine(settings)
    try:
        await maintenance.purge_once(database(settings, engine), RateLimiter(None, 0, 60), RETENTION)
    finally:
        await engine.dispose()
    assert await _stored_keys(db_engine) == {"fresh"}


async def test_rounds_run_only_after_requests_so_an_idle_database_can_scale_to_zero(
    base_settings: dict[str, Any],
) -> None:
    settings = load_settings(**base_settings)
    engine = create_engine(settings)
    sent: list[str] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: sent.append("checkout"))
    event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _cur, statement, *_: sent.append(statement))
    activity = Activity()
    loop = asyncio.create_task(
        maintenance.run_forever(
            database(settings, engine), RateLimiter(None, 0, 60), RETENTION, activity, interval=0.02
        )
    )
    try:
        await asyncio.sleep(0.3)
        assert sent == []  # idle from the start: not even a connection
        activity.requests += 1
        await asyncio.sleep(0.3)
        assert any(statement.startswith("DELETE FROM idempotency_keys") for statement in sent)
        after_one_round = len(sent)
        await asyncio.sleep(0.3)
        assert len(sent) == after_one_round  # idle again
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await engine.dispose()


async def test_the_app_counts_every_request_for_housekeeping(
    base_settings: dict[str, Any], auth: Callable[..., dict[str, str]]
) -> None:
    app = create_app(load_settings(**base_settings))
    (activity,) = [m.kwargs["activity"] for m in app.user_middleware if "activity" in m.kwargs]
    assert isinstance(activity, Activity)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/api/users/me", headers=auth())).status_code == 200
            assert (await client.get("/api/users/me")).status_code == 401  # refused requests count too
    assert activity.requests == 2


async def test_the_apps_rounds_keep_keys_for_idempotency_retention_hours(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README, `IDEMPOTENCY_RETENTION_HOURS` ("how long `Idempotency-Key` outcomes and batch command
    results are kept") and "Safe retries" ("kept for 24 hours (`IDEMPOTENCY_RETENTION_HOURS`), then
    purged"): the app's own housekeeping purges by the setting. At 48, a key stored 25 hours ago (past
    the default 24) is kept and one stored 49 hours ago is purged."""
    rounds = prompt_housekeeping(monkeypatch)
    async with app_client(idempotency_retention_hours=48) as client:
        api = Api(client, auth())
        for name in ("fresh", "day-old", "two-days-old"):
            response = await api.request("POST", "/api/todos", json={"title": name}, headers={"Idempotency-Key": name})
            assert response.status_code == 201
        async with db_engine.begin() as connection:
            for name, hours in (("day-old", 25), ("two-days-old", 49)):
                await connection.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.key == name)  # type: ignore[arg-type]
                    .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, hours))
                )
        mark = rounds.started
        assert (await api.request("GET", "/api/users/me")).status_code == 200  # a round runs after requests
        await rounds.after(mark)
    assert await _stored_keys(db_engine) == {"fresh", "day-old"}
