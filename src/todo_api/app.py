"""Application factory: `create_app()` wires settings, lifespan resources, routes and handlers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from todo_api import __version__, maintenance
from todo_api.api import api_router
from todo_api.auth.http import AuthenticationMiddleware, bearer_scheme
from todo_api.auth.identities import IdentityCache
from todo_api.auth.keys import JwksKeySource
from todo_api.auth.verifier import TokenVerifier
from todo_api.batch.schemas import BATCH_MAX_BODY_BYTES
from todo_api.config import ConfigError, Settings, get_settings
from todo_api.context import AppContext
from todo_api.http import errors as http_errors
from todo_api.http import openapi
from todo_api.http.middleware import Activity, BodyLimitMiddleware, RequestContextMiddleware
from todo_api.log import configure_logging
from todo_api.pagination import cursor_sealer
from todo_api.ratelimit import build_rate_limiter
from todo_api.storage.database import create_engine, database

DESCRIPTION = """A multi-user Todo REST API. Every route needs a JWT from your identity provider
(`Authorization: Bearer <token>`); every resource belongs to the token's subject.

- **Errors**: `{"detail": …, "code": …}`; branch on `code` (the `ErrorCode` schema), show `detail`.
  A 422's `detail` is a list of `{type, loc, msg, input}`.
- **Safe retries**: send `Idempotency-Key` with `POST`; back off on 429 and 503 for `Retry-After`
  seconds.
- **No lost updates**: send a response's `ETag` back as `If-Match` on `PUT`, `PATCH` and `DELETE`
  (412 when someone changed the resource meanwhile).
- **Pages**: follow `next_cursor` (opaque, bound to the query) until it is null.
- Bodies are JSON (`Content-Type: application/json`, else 415)."""
TAGS = [
    {"name": "todos", "description": "The user's todos: filters, sorting, keyset pages."},
    {"name": "lists", "description": "The user's lists; deleting one moves it and its todos to the trash."},
    {"name": "users", "description": "The account behind the token."},
    {"name": "trash", "description": "Deleted todos and lists: restore them or delete them for good."},
    {"name": "sync", "description": "Offline clients: what changed since a sync token, deletions included."},
    {"name": "batch", "description": "Offline clients: a queue of commands in one request, each applied once."},
    {"name": "reminders", "description": "Reminders firing in a time window, for notification workers."},
]
# "/": wherever this document is served (`/docs` of `todo-api dev` on any port); else a deployment.
SERVERS: list[dict[str, Any]] = [
    {"url": "/", "description": "The server this document is served by"},
    {
        "url": "{origin}",
        "description": "A deployment",
        "variables": {"origin": {"default": "http://127.0.0.1:8000", "description": "Scheme, host and port."}},
    },
]
LICENSE = {"name": "MIT", "identifier": "MIT"}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Parse the configured key now, so a bad key fails before serving. Without any key source the
    # app can still describe itself (`todo-api openapi`) but refuses to start serving.
    verifier = TokenVerifier(settings) if settings.has_key_source else None
    activity = Activity()  # requests served, so idle workers skip housekeeping

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if verifier is None:
            raise ConfigError(["set one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET"])
        cursors = cursor_sealer(settings)  # fails before anything starts when CURSOR_SECRET is missing
        engine = create_engine(settings)
        db = database(settings, engine)
        context = AppContext(
            settings=settings,
            engine=engine,
            database=db,
            verifier=verifier,
            identities=IdentityCache(),
            rate_limiter=build_rate_limiter(settings, db),
            cursors=cursors,
        )
        app.state.context = context
        retention = timedelta(hours=settings.idempotency_retention_hours)
        trash_retention = timedelta(days=settings.trash_retention_days)
        housekeeping = asyncio.create_task(
            maintenance.run_forever(db, context.rate_limiter, retention, activity, trash_retention=trash_retention)
        )
        counting = asyncio.create_task(context.rate_limiter.run())
        async with httpx.AsyncClient(timeout=settings.jwks_timeout_seconds) as http:
            if isinstance(verifier.keys, JwksKeySource):
                verifier.keys.bind(http)
            # Everything built so far (modules, routes, validators, table metadata, the pool) lives
            # as long as the process. Frozen, it is left out of garbage collection: otherwise every
            # full collection walks all of it — ~100 ms, every 1-2 s under load, stalling every
            # in-flight request (p99 at 4-5x the median; bench/README.md, "Garbage collection").
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()
                housekeeping.cancel()
                counting.cancel()
                await context.rate_limiter.aclose()
                await engine.dispose()

    app = FastAPI(
        title="todo-api",
        version=__version__,
        description=DESCRIPTION,
        license_info=LICENSE,
        servers=SERVERS,
        openapi_tags=TAGS,
        generate_unique_id_function=openapi.operation_id,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.include_router(api_router)
    openapi.install(app, bearer_scheme, api_router.prefix)
    http_errors.register(app)
    # Added innermost first; requests pass (CORS →) request context → authentication → body limit.
    batch_cap = {"/api/batch": max(settings.max_body_bytes, BATCH_MAX_BODY_BYTES)}
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, overrides=batch_cap)
    app.add_middleware(AuthenticationMiddleware)
    app.add_middleware(RequestContextMiddleware, activity=activity)
    if settings.cors_origins:
        add_cors(app, settings.cors_origins)
    return app


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Outermost, so preflights need no token and every response (errors too) carries CORS headers.

    Credentials are allowed only with an explicit allowlist, never with `*`.
    """
    wildcard = "*" in origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if wildcard else origins,
        allow_credentials=not wildcard,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed"],
        max_age=600,
    )


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` worker processes.

    With `--workers N` each worker is a freshly spawned interpreter: the logging set up by
    `todo-api serve` in the parent does not reach it, so the worker sets up its own (otherwise
    access lines are dropped and errors come out as plain text).
    """
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
