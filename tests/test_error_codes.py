"""Every error `code` (`todo_api.errors.ErrorCode`): a request that produces it, its status, its
body (`detail` kept, `code` added) and the headers that come with it. `test_every_code_has_a_test`
keeps the list complete: a new code needs a test here."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from starlette.requests import Request

from tests.api import Api
from tests.conftest import AppClientFactory
from tests.faults.servers import wait_for_lock_waiters
from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.errors import Conflict, ErrorCode
from todo_api.http.errors import app_error_response
from todo_api.http.routing import is_json
from todo_api.idempotency import _lock_id
from todo_api.models import SyncHorizon, User
from todo_api.models.user import DeletedAccount

TESTED: set[ErrorCode] = set()


def produces(code: ErrorCode) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    TESTED.add(code)
    return lambda test: test


def assert_error(response: httpx.Response, status: int, code: ErrorCode, *headers: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code.value
    assert isinstance(body["detail"], list if status == 422 else str)
    for header in (*headers, "X-Request-ID"):
        assert response.headers.get(header), f"{header} missing"
    return body


@produces(ErrorCode.BAD_REQUEST)
async def test_bad_request(api: Api) -> None:
    response = await api.request("POST", "/api/todos", content=b"{}", headers={"content-length": "2x"})
    assert_error(response, 400, ErrorCode.BAD_REQUEST)


@produces(ErrorCode.UNAUTHENTICATED)
async def test_unauthenticated(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/todos", headers={"Authorization": "Bearer not-a-token"})
    assert_error(response, 401, ErrorCode.UNAUTHENTICATED, "WWW-Authenticate")


@produces(ErrorCode.INSUFFICIENT_SCOPE)
async def test_insufficient_scope(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    response = await client.post("/api/lists", json={"name": "x"}, headers=auth(scope="todos:read"))
    assert_error(response, 403, ErrorCode.INSUFFICIENT_SCOPE, "WWW-Authenticate")


@produces(ErrorCode.NOT_FOUND)
async def test_not_found(api: Api) -> None:
    assert_error(await api.request("GET", f"/api/todos/{uuid.uuid4()}"), 404, ErrorCode.NOT_FOUND)
    assert_error(await api.request("GET", "/api/no-such-thing"), 404, ErrorCode.NOT_FOUND)


@produces(ErrorCode.METHOD_NOT_ALLOWED)
async def test_method_not_allowed(api: Api) -> None:
    response = await api.request("PATCH", "/api/todos")
    assert_error(response, 405, ErrorCode.METHOD_NOT_ALLOWED, "Allow")


@produces(ErrorCode.CONFLICT)
def test_conflict_is_the_code_of_a_409_without_a_more_specific_one() -> None:
    """No route raises a bare `Conflict` today; one that does still answers with a code."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}})
    response = app_error_response(request, Conflict())
    assert (response.status_code, response.body) == (409, b'{"detail":"Conflict","code":"conflict"}')


@produces(ErrorCode.DUPLICATE_NAME)
async def test_duplicate_name(api: Api) -> None:
    await api.create_list("Groceries")
    response = await api.request("POST", "/api/lists", json={"name": "groceries"})
    assert_error(response, 409, ErrorCode.DUPLICATE_NAME)


@produces(ErrorCode.QUOTA_EXCEEDED)
async def test_quota_exceeded(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(max_lists_per_user=1) as client:
        api = Api(client, auth())
        await api.create_list("one")
        response = await api.request("POST", "/api/lists", json={"name": "two"})
        assert_error(response, 409, ErrorCode.QUOTA_EXCEEDED)
        assert "Retry-After" not in response.headers


@produces(ErrorCode.IDEMPOTENCY_IN_FLIGHT)
async def test_idempotency_in_flight_says_when_to_retry(api: Api, db_engine: AsyncEngine) -> None:
    """The first request's lock on (user, key) is held here, as if it were still running."""
    user_id = uuid.UUID((await api.request("GET", "/api/users/me")).json()["id"])
    async with db_engine.connect() as holder:
        await holder.execute(select(func.pg_advisory_lock(_lock_id(user_id, "busy"))))
        response = await api.request("POST", "/api/todos", json={"title": "t"}, headers={"Idempotency-Key": "busy"})
        await holder.execute(select(func.pg_advisory_unlock(_lock_id(user_id, "busy"))))
    assert_error(response, 409, ErrorCode.IDEMPOTENCY_IN_FLIGHT, "Retry-After")
    assert int(response.headers["Retry-After"]) >= 1


@produces(ErrorCode.ACCOUNT_DELETED)
async def test_account_deleted_while_the_request_was_in_flight(api: Api, db_engine: AsyncEngine) -> None:
    """A create waits for the user row (locked here); meanwhile the account is deleted."""
    user_id = uuid.UUID((await api.request("GET", "/api/users/me")).json()["id"])
    async with db_engine.connect() as locker:
        transaction = await locker.begin()
        await locker.execute(select(col(User.id)).where(col(User.id) == user_id).with_for_update())
        create = asyncio.create_task(api.request("POST", "/api/todos", json={"title": "t"}))
        await wait_for_lock_waiters(db_engine)  # the create is stuck behind the lock: it has arrived
        await locker.execute(delete(User).where(col(User.id) == user_id))
        await locker.execute(insert(DeletedAccount).values(user_id=user_id, deleted_at=datetime.now(UTC)))
        await transaction.commit()
    assert_error(await create, 409, ErrorCode.ACCOUNT_DELETED)


@produces(ErrorCode.PRECONDITION_FAILED)
async def test_precondition_failed(api: Api) -> None:
    todo = await api.create_todo()
    response = await api.request(
        "PATCH", f"/api/todos/{todo['id']}", json={"completed": True}, headers={"If-Match": '"99"'}
    )
    assert_error(response, 412, ErrorCode.PRECONDITION_FAILED)


@produces(ErrorCode.PAYLOAD_TOO_LARGE)
async def test_payload_too_large(api: Api) -> None:
    response = await api.request("POST", "/api/todos", json={"title": "t", "description": "x" * 70_000})
    assert_error(response, 413, ErrorCode.PAYLOAD_TOO_LARGE)


@produces(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/todos"), ("PUT", "/api/todos/{id}"), ("PATCH", "/api/todos/{id}"), ("POST", "/api/lists")],
)
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "json"])
async def test_a_body_not_sent_as_json_is_415(api: Api, method: str, path: str, content_type: str | None) -> None:
    todo = await api.create_todo()
    headers = {} if content_type is None else {"content-type": content_type}
    url = path.format(id=todo["id"])
    response = await api.request(method, url, content=b'{"title": "t", "name": "n"}', headers=headers)
    body = assert_error(response, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    assert "Content-Type: application/json" in body["detail"]
    assert (await api.request("GET", f"/api/todos/{todo['id']}")).json() == todo  # nothing changed


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_media_types_with_parameters_or_suffixes_are_accepted(api: Api, content_type: str) -> None:
    response = await api.request(
        "POST", "/api/todos", content=b'{"title": "t"}', headers={"content-type": content_type}
    )
    assert response.status_code == 201, response.text


async def test_without_a_token_a_wrong_content_type_is_still_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/todos", content=b"title=t", headers={"content-type": "text/plain"})
    assert_error(response, 401, ErrorCode.UNAUTHENTICATED)


async def test_a_bodiless_request_needs_no_content_type(api: Api) -> None:
    todo = await api.create_todo()
    response = await api.request("DELETE", f"/api/todos/{todo['id']}", headers={"content-type": "text/plain"})
    assert response.status_code == 204


@given(st.text())
def test_reading_any_content_type_never_fails(value: str) -> None:
    assert isinstance(is_json(value), bool)


@produces(ErrorCode.VALIDATION_FAILED)
async def test_validation_failed_keeps_fastapis_detail_list(api: Api) -> None:
    response = await api.request("POST", "/api/todos", json={"title": "   "})
    body = assert_error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert body["detail"][0]["loc"] == ["body", "title"]
    malformed = await api.request("POST", "/api/todos", content=b"{", headers={"content-type": "application/json"})
    assert assert_error(malformed, 422, ErrorCode.VALIDATION_FAILED)["detail"][0]["type"] == "json_invalid"


@produces(ErrorCode.INVALID_CURSOR)
async def test_invalid_cursor(api: Api) -> None:
    response = await api.request("GET", "/api/todos", params={"cursor": "AAAA" * 10})
    body = assert_error(response, 422, ErrorCode.INVALID_CURSOR)
    assert body["detail"][0]["loc"] == ["query", "cursor"]


@produces(ErrorCode.IDEMPOTENCY_KEY_REUSED)
async def test_idempotency_key_reused(api: Api) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert (await api.request("POST", "/api/todos", json={"title": "a"}, headers=key)).status_code == 201
    response = await api.request("POST", "/api/todos", json={"title": "b"}, headers=key)
    assert_error(response, 422, ErrorCode.IDEMPOTENCY_KEY_REUSED)


@produces(ErrorCode.PRECONDITION_REQUIRED)
async def test_precondition_required(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(require_if_match=True) as client:
        api = Api(client, auth())
        todo = await api.create_todo()
        response = await api.request("DELETE", f"/api/todos/{todo['id']}")
        assert_error(response, 428, ErrorCode.PRECONDITION_REQUIRED)


@produces(ErrorCode.RATE_LIMITED)
async def test_rate_limited(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(rate_limit_requests=1) as client:
        api = Api(client, auth())
        assert (await api.request("GET", "/api/users/me")).status_code == 200
        assert_error(await api.request("GET", "/api/users/me"), 429, ErrorCode.RATE_LIMITED, "Retry-After")


@produces(ErrorCode.LIST_IN_TRASH)
async def test_list_in_trash(api: Api) -> None:
    work = await api.create_list("Work")
    todo = await api.create_todo(title="t", list_id=work["id"])
    await api.request("DELETE", f"/api/todos/{todo['id']}")
    await api.request("DELETE", f"/api/lists/{work['id']}")
    assert_error(await api.request("POST", f"/api/trash/{todo['id']}/restore"), 409, ErrorCode.LIST_IN_TRASH)


@produces(ErrorCode.PARENT_IN_TRASH)
async def test_parent_in_trash(api: Api) -> None:
    parent = await api.create_todo(title="parent")
    child = await api.create_todo(title="child", parent_id=parent["id"])
    await api.request("DELETE", f"/api/todos/{child['id']}")
    await api.request("DELETE", f"/api/todos/{parent['id']}")
    assert_error(await api.request("POST", f"/api/trash/{child['id']}/restore"), 409, ErrorCode.PARENT_IN_TRASH)


@produces(ErrorCode.INVALID_SYNC_TOKEN)
async def test_invalid_sync_token(api: Api) -> None:
    response = await api.request("GET", "/api/sync", params={"sync_token": "AXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gU"})
    body = assert_error(response, 422, ErrorCode.INVALID_SYNC_TOKEN)
    assert body["detail"][0]["loc"] == ["query", "sync_token"]


@produces(ErrorCode.SYNC_TOKEN_EXPIRED)
async def test_sync_token_expired(api: Api, db_engine: AsyncEngine) -> None:
    token = (await api.request("GET", "/api/sync")).json()["sync_token"]
    user_id = uuid.UUID((await api.request("GET", "/api/users/me")).json()["id"])
    async with db_engine.begin() as connection:  # housekeeping forgot a tombstone newer than the token
        horizon = select(col(User.id), func.pg_current_xact_id()).where(col(User.id) == user_id)
        await connection.execute(insert(SyncHorizon).from_select(["user_id", "purged_xid"], horizon))
    assert_error(await api.request("GET", "/api/sync", params={"sync_token": token}), 410, ErrorCode.SYNC_TOKEN_EXPIRED)


@pytest.fixture
def failing_app(base_settings: dict[str, Any], db_engine: AsyncEngine) -> Any:
    app = create_app(load_settings(**base_settings))

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/boom", boom)
    return app


@produces(ErrorCode.INTERNAL_ERROR)
async def test_internal_error(failing_app: Any, auth: Callable[..., dict[str, str]]) -> None:
    async with failing_app.router.lifespan_context(failing_app):
        transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/api/boom", headers=auth())
    assert assert_error(response, 500, ErrorCode.INTERNAL_ERROR)["request_id"] == response.headers["X-Request-ID"]


@produces(ErrorCode.DATABASE_UNAVAILABLE)
async def test_database_unavailable_and_the_log_says_why(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    async with app_client(database_url="postgresql://postgres@127.0.0.1:1/none") as client:
        response = await client.get("/api/users/me", headers=auth())
    assert_error(response, 503, ErrorCode.DATABASE_UNAVAILABLE, "Retry-After")
    logged = [record.getMessage() for record in caplog.records if record.name == "todo_api.errors"]
    assert logged == ["database unavailable: cannot connect: connection refused"]


@produces(ErrorCode.SERVICE_UNAVAILABLE)
async def test_service_unavailable_when_the_identity_providers_keys_cannot_be_fetched(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    jwks = {"jwt_public_key": None, "jwt_jwks_url": "http://127.0.0.1:1/jwks.json", "jwks_timeout_seconds": 1}
    async with app_client(**jwks) as client:
        response = await client.get("/api/users/me", headers=auth())
    assert_error(response, 503, ErrorCode.SERVICE_UNAVAILABLE, "Retry-After")


def test_every_code_has_a_test() -> None:
    assert set(ErrorCode) == TESTED
