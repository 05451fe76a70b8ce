"""Idempotency-Key: at most one execution per user and key; replays; conflicts; retention."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import AppClientFactory
from todo_api.models import IdempotencyKey, Todo, TodoList


async def count_rows(engine: AsyncEngine, model: Any, **where: Any) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


@pytest.mark.parametrize(("url", "body"), [("/api/todos", {"title": "pay rent"}), ("/api/lists", {"name": "Bills"})])
async def test_retry_with_same_key_replays_the_first_response(
    api: Api, db_engine: AsyncEngine, url: str, body: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await api.request("POST", url, json=body, headers=key)
    again = await api.request("POST", url, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    model = Todo if url.endswith("todos") else TodoList
    assert await count_rows(db_engine, model, id=uuid.UUID(first.json()["id"])) == 1
    assert len(await api.all_pages(url)) == 1


async def test_same_key_different_body_is_422(api: Api) -> None:
    key = {"Idempotency-Key": "k1"}
    assert (await api.request("POST", "/api/todos", json={"title": "a"}, headers=key)).status_code == 201
    other = await api.request("POST", "/api/todos", json={"title": "b"}, headers=key)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    same_meaning = await api.request("POST", "/api/todos", json={"description": "", "title": "a"}, headers=key)
    assert same_meaning.status_code == 201  # the same request, fields in another order / defaults spelled out
    assert len(await api.all_pages("/api/todos")) == 1


async def test_same_key_on_another_route_is_a_different_request(api: Api) -> None:
    key = {"Idempotency-Key": "shared"}
    assert (await api.request("POST", "/api/lists", json={"name": "x"}, headers=key)).status_code == 201
    assert (await api.request("POST", "/api/todos", json={"title": "x"}, headers=key)).status_code == 422


async def test_keys_are_scoped_per_user(api: Api, other_api: Api) -> None:
    key = {"Idempotency-Key": "same-key"}
    mine = await api.request("POST", "/api/todos", json={"title": "t"}, headers=key)
    theirs = await other_api.request("POST", "/api/todos", json={"title": "t"}, headers=key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


@pytest.mark.parametrize("key", [b"", b"a b", b"tab\there", "é".encode(), b"x" * 256])
async def test_invalid_keys_are_422(api: Api, key: bytes) -> None:
    response = await api.request("POST", "/api/todos", json={"title": "t"}, headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert (await api.request("GET", "/api/todos")).json()["items"] == []


async def test_failed_requests_are_not_remembered(api: Api) -> None:
    key = {"Idempotency-Key": "retry-after-fix"}
    bad = await api.request("POST", "/api/todos", json={"title": "t", "list_id": str(uuid.uuid4())}, headers=key)
    assert bad.status_code == 422
    work = await api.create_list("Work")
    # A 4xx rolls back with the effect; the key is free for the corrected request.
    good = await api.request("POST", "/api/todos", json={"title": "t", "list_id": work["id"]}, headers=key)
    assert good.status_code == 201


async def test_fifty_concurrent_identical_posts_create_exactly_one_row(
    api: Api, other_api: Api, db_engine: AsyncEngine
) -> None:
    await api.request("GET", "/api/users/me")
    key = {"Idempotency-Key": "fifty"}
    responses = await asyncio.gather(
        *(api.request("POST", "/api/todos", json={"title": "once"}, headers=key) for _ in range(50))
    )
    statuses = Counter(response.status_code for response in responses)
    print(f"50 concurrent POSTs with one key: {dict(statuses)}")
    assert set(statuses) <= {201, 409}
    created = {response.json()["id"] for response in responses if response.status_code == 201}
    assert len(created) == 1
    for response in responses:
        if response.status_code == 409:
            assert "in progress" in response.json()["detail"]
    assert len(await api.all_pages("/api/todos")) == 1
    replay = await api.request("POST", "/api/todos", json={"title": "once"}, headers=key)
    assert replay.json()["id"] in created
    independent = await other_api.request("POST", "/api/todos", json={"title": "once"}, headers=key)
    assert independent.status_code == 201
    assert independent.json()["id"] not in created


async def test_expired_keys_are_forgotten(api: Api, db_engine: AsyncEngine) -> None:
    key = {"Idempotency-Key": "old"}
    first = await api.request("POST", "/api/todos", json={"title": "t"}, headers=key)
    async with db_engine.begin() as connection:  # age the record past the 24 h retention
        await connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")  # type: ignore[arg-type]
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 25))
        )
    second = await api.request("POST", "/api/todos", json={"title": "t"}, headers=key)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in second.headers
    third = await api.request("POST", "/api/todos", json={"title": "t"}, headers=key)  # the record was replaced
    assert (third.json()["id"], third.headers["location"]) == (second.json()["id"], second.headers["location"])
    assert third.headers["idempotent-replayed"] == "true"


async def _age_key(engine: AsyncEngine, key: str, hours: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)  # type: ignore[arg-type]
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, hours))
        )


@pytest.mark.parametrize(("retention_hours", "replayed"), [(48, True), (24, False)])
async def test_keys_are_kept_for_idempotency_retention_hours(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    retention_hours: int,
    replayed: bool,
) -> None:
    """README, "Safe retries": keys are "kept for 24 hours (`IDEMPOTENCY_RETENTION_HOURS`)". A key
    stored 25 hours ago still replays the first 201 when the setting is 48, and is forgotten (the
    retry creates again) when it is 24."""
    async with app_client(idempotency_retention_hours=retention_hours) as client:
        api = Api(client, auth())
        key = {"Idempotency-Key": "a-day-and-an-hour"}
        first = await api.request("POST", "/api/todos", json={"title": "t"}, headers=key)
        assert first.status_code == 201
        await _age_key(db_engine, "a-day-and-an-hour", 25)
        retry = await api.request("POST", "/api/todos", json={"title": "t"}, headers=key)
        assert retry.status_code == 201
        todos = await api.all_pages("/api/todos")
        if replayed:
            assert retry.headers["idempotent-replayed"] == "true"
            assert (retry.content, retry.headers["location"]) == (first.content, first.headers["location"])
            assert [todo["id"] for todo in todos] == [first.json()["id"]]
        else:
            assert "idempotent-replayed" not in retry.headers
            assert retry.json()["id"] != first.json()["id"]
            assert {todo["id"] for todo in todos} == {first.json()["id"], retry.json()["id"]}


@pytest.mark.parametrize(("retention_hours", "replayed"), [(48, True), (24, False)])
async def test_batch_command_results_are_kept_for_idempotency_retention_hours(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    retention_hours: int,
    replayed: bool,
) -> None:
    """README, "Batch" (a command's stored result is "kept `IDEMPOTENCY_RETENTION_HOURS`") and the
    configuration table ("how long `Idempotency-Key` outcomes and batch command results are kept"):
    a command applied 25 hours ago is not applied again when resent with the setting at 48 (its
    stored result comes back); at 24 it is forgotten and the resent command runs again."""
    async with app_client(idempotency_retention_hours=retention_hours) as client:
        api = Api(client, auth())
        command = {"type": "todo_add", "uuid": str(uuid.uuid4()), "args": {"title": "t"}}
        first = await api.request("POST", "/api/batch", json={"commands": [command]})
        assert first.status_code == 200, first.text
        (applied,) = first.json()["results"]
        assert applied["status"] == 201
        await _age_key(db_engine, f"batch {command['uuid']}", 25)
        again = await api.request("POST", "/api/batch", json={"commands": [command]})
        assert again.status_code == 200, again.text
        (resent,) = again.json()["results"]
        assert resent["status"] == 201
        todos = await api.all_pages("/api/todos")
        if replayed:
            assert resent == applied
            assert [todo["id"] for todo in todos] == [applied["resource"]["id"]]
        else:
            assert resent["resource"]["id"] != applied["resource"]["id"]
            assert {todo["id"] for todo in todos} == {applied["resource"]["id"], resent["resource"]["id"]}
