"""Fixtures for the fault tests: the app together with its engine, the environment for a
`todo-api serve` subprocess, and dedicated PostgreSQL servers that are always torn down."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.servers import PostgresInstance, embedded_binaries, reap_orphans
from tests.keys import AUDIENCE, CURSOR_SECRET, ISSUER, public_pem
from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.storage import migrate


@pytest.fixture(scope="session", autouse=True)
def _reap_orphans() -> None:
    """Servers left running by an earlier run that was killed (finalizers never ran) are stopped."""
    reaped = reap_orphans()
    if reaped:
        print(f"\n[faults] cleaned up after an earlier killed run: {', '.join(reaped)}")


@dataclass
class RunningApp:
    """An app inside its lifespan, an HTTP client for it, and (for instrumenting) its engine."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.app.state.context.engine
        return engine


type RunningAppFactory = Callable[..., AbstractAsyncContextManager[RunningApp]]


@pytest.fixture(scope="session")
def running_app(base_settings: dict[str, Any]) -> RunningAppFactory:
    """Like `app_client`, but also hands out the app: `async with running_app(**overrides) as running:`."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[RunningApp]:
        settings = load_settings(**{**base_settings, **overrides})
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
                yield RunningApp(app, client)

    return factory


@pytest.fixture(scope="session")
def service_env(signing_key: Any) -> dict[str, str]:
    """Environment for a `todo-api` subprocess that trusts the tests' signing key (add DATABASE_URL)."""
    return {
        "JWT_PUBLIC_KEY": public_pem(signing_key),
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "CURSOR_SECRET": CURSOR_SECRET,
        "RATE_LIMIT_REQUESTS": "0",
        "LOG_LEVEL": "warning",
    }


@pytest.fixture
def new_postgres() -> Iterator[Callable[..., PostgresInstance]]:
    """`new_postgres(**create_kwargs)` → a started dedicated PostgreSQL, destroyed after the test."""
    created: list[PostgresInstance] = []

    def factory(bin_dir: Path | None = None, **kwargs: Any) -> PostgresInstance:
        started = time.monotonic()
        instance = PostgresInstance.create(bin_dir or embedded_binaries(), **kwargs)
        created.append(instance)
        instance.start()
        elapsed = time.monotonic() - started
        print(f"\n[faults] PostgreSQL {instance.major} on 127.0.0.1:{instance.port}, ready in {elapsed:.1f} s")
        return instance

    yield factory
    for instance in created:
        instance.destroy()


@contextmanager
def todo_database(
    prefix: str, settings: Mapping[str, str] | None = None, setup: str | None = None
) -> Iterator[PostgresInstance]:
    """A started dedicated PostgreSQL whose database `todo` the migrations built (then `setup` ran
    in it, as superuser), destroyed on exit: for module-scoped fixtures."""
    instance = PostgresInstance.create(embedded_binaries(), settings=settings, prefix=prefix)
    try:
        instance.start()
        instance.admin("CREATE DATABASE todo")
        migrate.upgrade(instance.tcp_url("todo"))
        if setup is not None:
            instance.admin(setup, database="todo")
        yield instance
    finally:
        instance.destroy()
