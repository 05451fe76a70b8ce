"""The app in this process against a prepared benchmark database: one request per scenario.

Shared by `bench.explain` (which captures the SQL) and `bench.cpu` (which times the CPU).
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bench import scenarios
from bench.fixture import Prepared
from bench.lua import CREATE_BODY
from bench.tokens import AUDIENCE, ISSUER
from todo_api.app import create_app
from todo_api.config import Settings, load_settings

# `bench.cpu` and `bench.explain` measure the code, not the deployment: no rate limit, and user-1's
# 10 000 seeded todos must not hit the default quota when `create` runs thousands of times.
CURSOR_SECRET = base64.urlsafe_b64encode(os.urandom(32)).decode()
SERVER_OVERRIDES: dict[str, Any] = {"rate_limit_requests": 0, "max_todos_per_user": 1_000_000}


@dataclass(frozen=True, slots=True)
class Probe:
    scenario: str
    method: str
    path: str
    body: str | None
    user: str


def probes(
    names: Sequence[str], ready: Prepared, deep_path: str, sync_paths: dict[str, str] | None = None
) -> list[Probe]:
    sync_paths = sync_paths or {}
    some_id = str(ready.seed.user("user-1").todo_ids[1234 % len(ready.seed.user("user-1").todo_ids)])
    loose = [str(todo_id) for todo_id in ready.seed.user("user-1").loose_ids[100:102]]
    catalogue = {
        "me": Probe("me", "GET", "/api/users/me", None, "user-1"),
        "list": Probe("list", "GET", scenarios.LIST_PATH, None, "user-1"),
        "list-deep": Probe("list-deep", "GET", deep_path, None, "user-1"),
        "filter": Probe("filter", "GET", scenarios.FILTER_PATH, None, "user-1"),
        "get": Probe("get", "GET", f"/api/todos/{some_id}", None, "user-1"),
        "create": Probe("create", "POST", "/api/todos", CREATE_BODY.replace("%d", "0"), "user-1"),
        "patch": Probe("patch", "PATCH", f"/api/todos/{some_id}", '{"completed":true}', "user-1"),
        "list-100k": Probe("list-100k", "GET", scenarios.LIST_PATH, None, scenarios.BIG_USER),
        "list-1k": Probe("list-1k", "GET", scenarios.LIST_PATH, None, scenarios.SMALL_USER),
        "sync": Probe("sync", "GET", sync_paths.get("user-1", "/api/sync"), None, "user-1"),
        "sync-100k": Probe(
            "sync-100k", "GET", sync_paths.get(scenarios.BIG_USER, "/api/sync"), None, scenarios.BIG_USER
        ),
        "move": Probe("move", "POST", f"/api/todos/{loose[0]}/move", f'{{"after_id":"{loose[1]}"}}', "user-1"),
        "position": Probe("position", "GET", scenarios.POSITION_PATH, None, "user-1"),
    }
    return [catalogue[name] for name in names if name in catalogue]


def settings(ready: Prepared) -> Settings:
    for name in Settings.model_fields:  # this process only: the developer's settings must not leak in
        os.environ.pop(name.upper(), None)
    return load_settings(
        _env_file=None,
        database_url=ready.database_url,
        jwt_public_key=ready.signer.public_pem,
        jwt_issuer=ISSUER,
        jwt_audience=[AUDIENCE],
        # ignored until cursors need a server secret (settings ignore unknown names); then required
        cursor_secret=CURSOR_SECRET,
        log_level="warning",
        **SERVER_OVERRIDES,  # as `python -m bench` runs the server
    )


def sync_paths(ready: Prepared, users: Sequence[str]) -> dict[str, str]:
    """Per user, an incremental sync path after a few changes (`scenarios.sync_path`), made on the app."""
    return asyncio.run(make_sync_paths(ready, users))


async def make_sync_paths(ready: Prepared, users: Sequence[str]) -> dict[str, str]:
    app = create_app(settings(ready))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            paths = {}
            for user in users:
                ids = [str(todo_id) for todo_id in ready.seed.user(user).todo_ids[: scenarios.SYNC_CHANGES]]
                commands = [
                    {"type": "todo_update", "uuid": str(uuid.uuid4()), "args": {"id": i, "title": f"synced {n}"}}
                    for n, i in enumerate(ids)
                ]
                headers = {"Authorization": f"Bearer {ready.tokens[user]}"}
                response = await client.post("/api/batch", json={"commands": commands}, headers=headers)
                response.raise_for_status()
                paths[user] = f"/api/sync?{urlencode({'sync_token': response.json()['sync_token']})}"
            return paths


def deep_path(ready: Prepared) -> str:
    app = create_app(settings(ready))

    async def walk() -> str:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                path = scenarios.LIST_PATH
                for _ in range(scenarios.DEEP_PAGES):
                    response = await client.get(path, headers={"Authorization": f"Bearer {ready.tokens['user-1']}"})
                    cursor = response.json().get("next_cursor") if response.is_success else None
                    if not cursor:
                        break
                    path = scenarios.page_path(cursor)
                return path

    return asyncio.run(walk())
