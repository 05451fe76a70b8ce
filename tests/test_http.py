"""HTTP edges: CORS for browser apps, headers on every response, safe 500s."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import AppClientFactory
from todo_api.app import create_app
from todo_api.config import load_settings

APP_ORIGIN = "http://localhost:3000"


async def test_cors_preflight_for_an_allowed_origin(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client(cors_origins=[APP_ORIGIN, "https://app.example.com"]) as client:
        preflight = await client.options(
            "/api/todos",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status_code == 200  # no token needed for a preflight
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "idempotency-key"} <= {h.strip() for h in allowed.split(",")}
        actual = await client.get("/api/users/me", headers={**auth(), "Origin": APP_ORIGIN})
        assert actual.headers["access-control-allow-origin"] == APP_ORIGIN
        anonymous = await client.get("/api/users/me", headers={"Origin": APP_ORIGIN})
        assert anonymous.status_code == 401
        assert anonymous.headers["access-control-allow-origin"] == APP_ORIGIN  # the browser can read the 401


async def test_cors_refuses_other_origins(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(cors_origins=[APP_ORIGIN]) as client:
        preflight = await client.options(
            "/api/todos", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}
        )
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        actual = await client.get("/api/users/me", headers={**auth(), "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in actual.headers


async def test_wildcard_origin_never_allows_credentials(app_client: AppClientFactory) -> None:
    async with app_client(cors_origins=["*"]) as client:
        preflight = await client.options(
            "/api/todos", headers={"Origin": "https://any.example", "Access-Control-Request-Method": "GET"}
        )
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in preflight.headers


async def test_without_cors_origins_no_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/todos", headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in response.headers


def check_headers(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store", response
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]
    assert "server" not in response.headers
    if response.status_code in {204, 304}:
        assert "content-type" not in response.headers
    else:
        assert response.headers["content-type"] == "application/json", response


async def test_every_response_carries_the_safety_headers(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client(rate_limit_requests=30) as client:
        headers = auth("headers-user")
        created = await client.post("/api/todos", json={"title": "t"}, headers=headers)
        url = created.headers["location"]
        responses = [
            created,
            await client.get(url, headers=headers),
            await client.get(url, headers={**headers, "If-None-Match": created.headers["etag"]}),
            await client.patch(url, json={"title": "u"}, headers={**headers, "If-Match": '"0"'}),
            await client.post("/api/todos", json={}, headers=headers),
            await client.post("/api/todos", json={"title": "x" * 70_000}, headers=headers),
            await client.get("/api/todos/00000000-0000-0000-0000-000000000000", headers=headers),
            await client.put("/api/users/me", headers=headers),
            await client.get("/api/users/me"),
            await client.get("/api/users/me", headers=auth(scope="todos:write")),
            await client.get("/not-an-api-path"),
            await client.delete(url, headers=headers),
        ]
        responses += [await client.get("/api/users/me", headers=headers) for _ in range(30)]
        statuses = {response.status_code for response in responses}
        assert {200, 201, 204, 304, 401, 403, 404, 405, 412, 413, 422, 429} <= statuses
        for response in responses:
            check_headers(response)


@pytest.fixture
def failing_app(base_settings: dict[str, Any], db_engine: Any) -> Any:
    app = create_app(load_settings(**base_settings))

    async def boom() -> None:
        raise RuntimeError("secret internal detail SELECT * FROM users")

    app.add_api_route("/api/boom", boom)
    return app


async def test_unhandled_errors_are_safe_500s_with_request_id(
    failing_app: Any, auth: Callable[..., dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with failing_app.router.lifespan_context(failing_app):
        transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token_headers = auth()
            response = await client.get("/api/boom", headers={**token_headers, "X-Request-ID": "trace-me-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "code": "internal_error", "request_id": "trace-me-1"}
    check_headers(response)
    assert "secret" not in response.text
    assert "RuntimeError: secret internal detail" in caplog.text  # the traceback is logged, not sent
    token = token_headers["Authorization"].removeprefix("Bearer ")
    assert token not in caplog.text
    access = [r for r in caplog.records if r.name == "todo_api.access"]
    assert access[-1].__dict__["status"] == 500
    assert access[-1].__dict__["route"] == "/api/boom"
    assert access[-1].__dict__["request_id"] == "trace-me-1"


async def test_access_log_line_has_route_template_and_user(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="todo_api.access")
    headers = auth(email="private@example.com")
    created = (await client.post("/api/todos", json={"title": "t"}, headers=headers)).json()
    await client.get(f"/api/todos/{created['id']}?x=1", headers=headers)
    line = caplog.records[-1].__dict__
    assert line["route"] == "/api/todos/{todo_id}"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["user_id"]
    assert isinstance(line["duration_ms"], float)
    assert "private@example.com" not in caplog.text
    assert headers["Authorization"].removeprefix("Bearer ") not in caplog.text


async def test_no_access_line_above_info(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="todo_api.access")
    response = await client.get("/api/users/me", headers=auth())
    assert response.status_code == 200
    assert [record for record in caplog.records if record.name == "todo_api.access"] == []
    caplog.set_level(logging.INFO, logger="todo_api.access")
    await client.get("/api/users/me", headers=auth())
    assert [vars(record)["route"] for record in caplog.records if record.name == "todo_api.access"] == ["/api/users/me"]


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/todos", "GET, POST"),
        ("/api/lists", "GET, POST"),
        ("/api/todos/00000000-0000-0000-0000-000000000000", "DELETE, GET, PATCH, PUT"),
        ("/api/lists/00000000-0000-0000-0000-000000000000", "DELETE, GET, PATCH, PUT"),
        ("/api/users/me", "DELETE, GET"),
    ],
)
async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], path: str, allow: str
) -> None:
    response = await client.request("TRACE", path, headers=auth())
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    check_headers(response)


async def test_undecodable_json_is_422_like_other_malformed_json(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    response = await client.post(
        "/api/todos", content=b'{"title": "\xff"}', headers={**auth(), "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_docs_are_off_by_default(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    """README, `DOCS_ENABLED` (default false: "serve `/docs` and `/openapi.json`"): without it
    neither path exists, for anyone."""
    for path in ("/docs", "/openapi.json"):
        for headers in ({}, auth()):
            response = await client.get(path, headers=headers)
            assert (response.status_code, response.json()["code"]) == (404, "not_found"), path
            assert "openapi" not in response.text.lower()


async def test_docs_enabled_serves_docs_and_the_openapi_document(app_client: AppClientFactory) -> None:
    """README, `DOCS_ENABLED`: "serve `/docs` and `/openapi.json`": the interactive docs, reading
    the same OpenAPI 3.1 document `todo-api openapi` prints. A browser opens them without a token."""
    async with app_client(docs_enabled=True) as client:
        document = await client.get("/openapi.json")
        assert document.status_code == 200
        assert document.headers["content-type"] == "application/json"
        printed = create_app(load_settings(_env_file=None, require_database=False, require_key_source=False)).openapi()
        assert document.json() == json.loads(json.dumps(printed))
        assert document.json()["openapi"].startswith("3.1")
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        assert "swagger-ui" in docs.text
        assert "/openapi.json" in docs.text
