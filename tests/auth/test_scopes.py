"""Scopes: reads need `todos:read`, writes `todos:write`; a token without any scope claim has
full access unless JWT_REQUIRE_SCOPES is on. Authentication (401) is decided before scopes (403)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import AppClientFactory, count_users
from tests.keys import Signer

pytestmark = pytest.mark.usefixtures("db_engine")

ME = "/api/users/me"
INSUFFICIENT_SCOPE = b'{"detail":"Insufficient scope","code":"insufficient_scope"}'

type Auth = Callable[..., dict[str, str]]


@pytest.fixture
async def strict_client(app_client: AppClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(jwt_require_scopes=True) as client:
        yield client


def assert_forbidden(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.content == INSUFFICIENT_SCOPE
    assert response.headers["www-authenticate"] == f'Bearer error="insufficient_scope", scope="{scope}"'


async def test_read_scope_reads_but_cannot_write(client: httpx.AsyncClient, auth: Auth, db_engine: AsyncEngine) -> None:
    headers = auth("reader", scope="todos:read")
    assert (await client.get(ME, headers=headers)).status_code == 200
    assert_forbidden(await client.delete(ME, headers=headers), "todos:write")
    assert await count_users(db_engine, subject="reader") == 1  # the refused delete changed nothing


async def test_write_scope_writes_but_cannot_read(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("writer", scope="todos:write")
    assert_forbidden(await client.get(ME, headers=headers), "todos:read")
    response = await client.delete(ME, headers=headers)
    assert response.status_code == 204


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "todos:read todos:write"},
        {"scope": "openid  profile\ttodos:write todos:read email"},
        {"scope": ["todos:read", "todos:write"]},
        {"scp": ["todos:read", "todos:write"]},
        {"scp": "todos:read todos:write"},
        {"permissions": ["todos:read", "todos:write"]},
        {"scope": "todos:read", "permissions": ["todos:write"]},
        {"scp": ["todos:read"], "permissions": ["todos:write"]},
    ],
    ids=repr,
)
async def test_scope_claim_forms_grant_access(client: httpx.AsyncClient, auth: Auth, claims: dict[str, Any]) -> None:
    headers = auth("scoped", **claims)
    assert (await client.get(ME, headers=headers)).status_code == 200
    assert (await client.delete(ME, headers=headers)).status_code == 204


@pytest.mark.parametrize(
    ("claims", "readable", "writable"),
    [
        ({"scp": ["todos:read"]}, True, False),
        ({"permissions": ["todos:write"]}, False, True),
        ({"scope": "todos:read:all todos:writer"}, False, False),
        ({"scope": "TODOS:READ TODOS:WRITE"}, False, False),
        ({"scope": "todos:read,todos:write"}, False, False),
        ({"scp": [["todos:read"], {"todos:write": True}]}, False, False),
    ],
    ids=repr,
)
async def test_scopes_match_exactly(
    client: httpx.AsyncClient, auth: Auth, claims: dict[str, Any], readable: bool, writable: bool
) -> None:
    headers = auth("exact", **claims)
    read = await client.get(ME, headers=headers)
    write = await client.delete(ME, headers=headers)
    assert read.status_code == (200 if readable else 403)
    assert write.status_code == (204 if writable else 403)


async def test_no_scope_claim_means_full_access(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("unscoped")
    assert (await client.get(ME, headers=headers)).status_code == 200
    assert (await client.delete(ME, headers=headers)).status_code == 204


async def test_require_scopes_refuses_a_token_without_scope_claim(strict_client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("unscoped-strict")
    assert_forbidden(await strict_client.get(ME, headers=headers), "todos:read")
    assert_forbidden(await strict_client.delete(ME, headers=headers), "todos:write")
    scoped = auth("scoped-strict", scope="todos:read todos:write")
    assert (await strict_client.get(ME, headers=scoped)).status_code == 200
    assert (await strict_client.delete(ME, headers=scoped)).status_code == 204


@pytest.mark.parametrize("claims", [{"scope": ""}, {"scp": []}, {"permissions": []}, {"scope": None}, {"scope": 7}])
async def test_an_empty_or_unusable_scope_claim_grants_nothing(
    client: httpx.AsyncClient, auth: Auth, claims: dict[str, Any]
) -> None:
    headers = auth("empty-scope", **claims)
    assert_forbidden(await client.get(ME, headers=headers), "todos:read")
    assert_forbidden(await client.delete(ME, headers=headers), "todos:write")


@pytest.mark.parametrize("scope", ["", "todos:read", "todos:write"])
async def test_401_wins_over_403(client: httpx.AsyncClient, signer: Signer, scope: str) -> None:
    expired = signer.token("late", scope=scope, iat=1, exp=2)
    wrong_audience = signer.token("elsewhere", scope=scope, aud="another-api")
    for token in (expired, wrong_audience, "not-a-token"):
        for method in ("GET", "DELETE"):
            response = await client.request(method, ME, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (method, token)
            assert response.json() == {"detail": "Not authenticated", "code": "unauthenticated"}
            assert response.headers["www-authenticate"] == "Bearer"


async def test_require_scopes_still_answers_401_first(strict_client: httpx.AsyncClient, signer: Signer) -> None:
    response = await strict_client.get(ME, headers={"Authorization": f"Bearer {signer.token(exp=1)}"})
    assert response.status_code == 401
