"""Fixtures: a real PostgreSQL database built by the migrations, real keys, real tokens.

`TEST_DATABASE_URL` points at a server (CI: the local PostgreSQL); without it an embedded
PostgreSQL is started in a temporary directory. Either way the suite creates its own database
and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _pytest.nodeid import NodeId  # pytest 9: a node's id is structured (see the hook below)
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.api import Api
from tests.keys import AUDIENCE, CURSOR_SECRET, ISSUER, Signer, new_key, public_pem
from todo_api.app import create_app
from todo_api.config import Settings, load_settings
from todo_api.models import User
from todo_api.storage import embedded, migrate
from todo_api.storage.database import driver_url

_SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Tests configure the app explicitly; a developer's shell or `.env` must not leak in."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.upper() in _SETTINGS_ENV}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="todo-api-test-pg-") as directory:
        yield embedded.start(Path(directory) / "pgdata", delete_on_exit=True)


def _admin_engine(server_url: str) -> AsyncEngine:
    return create_async_engine(driver_url(server_url), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database for this test session, built by the real migrations, dropped at the end."""
    name = f"todo_api_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(server_url)
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate.upgrade, url)  # Alembic runs its own event loop
        yield url
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(driver_url(database_url), connect_args={"prepare_threshold": None})
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean_database(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test starts with no users (and so no lists or todos: ON DELETE CASCADE)."""
    yield
    if "db_engine" in request.fixturenames:
        engine: AsyncEngine = request.getfixturevalue("db_engine")
        async with engine.begin() as connection:
            await connection.execute(delete(User))


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return new_key("ed25519")


@pytest.fixture(scope="session")
def signer(signing_key: Any) -> Signer:
    """Signs valid tokens for the default app (Ed25519, our issuer and audience)."""
    return Signer(signing_key, "EdDSA")


@pytest.fixture(scope="session")
def base_settings(database_url: str, signing_key: Any) -> dict[str, Any]:
    return {
        "_env_file": None,
        "database_url": database_url,
        "jwt_public_key": public_pem(signing_key),
        "jwt_issuer": ISSUER,
        "jwt_audience": [AUDIENCE],
        "cursor_secret": CURSOR_SECRET,
        "log_level": "warning",
        # Most tests send many requests as one user; the rate-limit tests turn it back on.
        "rate_limit_requests": 0,
        # Windows are fixed: a count restarts at each boundary. An hour-long one, entered away from
        # its end (`clear_of_window_edge`), never restarts during a rate-limit test.
        "rate_limit_window_seconds": 3600,
    }


async def clear_of_window_edge(settings: Settings, margin: float = 60.0) -> None:
    """Wait out the end of the current rate-limit window if it is less than `margin` seconds away,
    so a test that counts requests to the limit never straddles a boundary (where the count would
    restart and the expected 429 not come). At most `margin` seconds, in about 1 run of 60."""
    if settings.rate_limit_requests:
        left = settings.rate_limit_window_seconds - time.time() % settings.rate_limit_window_seconds
        if left < margin:
            await asyncio.sleep(left + 0.05)


type AppClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def app_client(base_settings: dict[str, Any]) -> AppClientFactory:
    """`async with app_client(**overrides) as client:` — a running app with its own settings."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = load_settings(**{**base_settings, **overrides})
        await clear_of_window_edge(settings)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client

    return factory


@pytest.fixture
async def client(app_client: AppClientFactory, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as client:
        yield client


@pytest.fixture
def auth(signer: Signer) -> Callable[..., dict[str, str]]:
    """`auth("alice")` → headers with a valid token for subject `alice`."""

    def headers(sub: str | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {signer.token(sub, **claims)}"}

    return headers


async def count_users(engine: AsyncEngine, **where: Any) -> int:
    statement = select(func.count()).select_from(User)
    for column, value in where.items():
        statement = statement.where(getattr(User, column) == value)
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


@pytest.fixture
def api(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> Api:
    """The API as one fresh user sees it."""
    return Api(client, auth())


@pytest.fixture
def other_api(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> Api:
    """The API as a second, unrelated user sees it."""
    return Api(client, auth())


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """A Redis for the Redis-backed rate limiter: REDIS_URL, else a local one if it answers."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    host, port = "127.0.0.1", 6379
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return url
    except OSError:
        return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis gives every operation's item of one test the same node id (its name carries the
    operation, its id does not); pytest-xdist tells items apart by id and would run only one of them.
    Give each its operation in the id too."""
    for item in items:
        original = getattr(item, "originalname", item.name)
        if item.name != original and not item.nodeid.endswith("]"):
            item._id = NodeId.parse(item.nodeid + item.name[len(original) :])
