"""The app's shared objects, built once per worker process in the lifespan (`app.create_app`) and
reached in one way: `app_context(request)` (the `ContextDep` dependency in handlers)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from todo_api.auth.identities import IdentityCache
from todo_api.auth.verifier import TokenVerifier
from todo_api.config import Settings
from todo_api.ratelimit import RateLimiter
from todo_api.sealed import Sealer
from todo_api.storage.database import Database


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    database: Database
    verifier: TokenVerifier
    identities: IdentityCache  # verified identity → user id, per worker
    rate_limiter: RateLimiter
    cursors: Sealer  # seals and opens pagination cursors (CURSOR_SECRET)


def app_context(connection: HTTPConnection) -> AppContext:
    """The context of the app serving this request (set by the lifespan before any request)."""
    context: AppContext = connection.app.state.context
    return context
