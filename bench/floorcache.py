"""What the like-for-like floor shares with todo-api: its two per-worker caches and its access line.

- `TokenCache` mirrors `todo_api.auth.verifier.TokenVerifier`'s verified-token cache: a token that
  verified is reused, by its exact bytes, until it expires (plus the leeway) and for at most
  `VERIFIED_TTL_SECONDS`; 10 000 entries, oldest dropped first. (todo-api also checks on each use
  that the key source still holds the key; with one static PEM key that is an identity check.)
- `IdentityCache` mirrors `todo_api.users.cache.IdentityCache`: (issuer, subject) → user id for 60 s,
  10 000 entries, least recently used dropped first.
- `log_access` writes the line `todo_api.http.middleware._log_access` writes, through the same
  `todo_api.log.JsonFormatter` (configured by `configure_logging`, as `todo-api serve` does).

The numbers are copied, not imported, so a change in todo-api's caching shows up in the ratio
instead of silently moving the floor too.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

VERIFIED_CACHE_SIZE = 10_000
VERIFIED_TTL_SECONDS = 300.0
IDENTITY_TTL_SECONDS = 60.0
IDENTITY_CACHE_SIZE = 10_000

access_logger = logging.getLogger("floor.access")

type Identity = tuple[str, str]  # (issuer, subject)


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    valid_until: float


class TokenCache:
    def __init__(self, leeway_seconds: float) -> None:
        self.leeway = leeway_seconds
        self._verified: dict[str, _Verified] = {}

    def get(self, token: str) -> Identity | None:
        cached = self._verified.get(token)
        if cached is None:
            return None
        if time.time() < cached.valid_until:
            return cached.identity
        del self._verified[token]
        return None

    def put(self, token: str, identity: Identity, expires_at: float) -> None:
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        valid_until = min(expires_at + self.leeway, time.time() + VERIFIED_TTL_SECONDS)
        self._verified[token] = _Verified(identity, valid_until)


class IdentityCache:
    def __init__(self, ttl_seconds: float = IDENTITY_TTL_SECONDS) -> None:
        self.ttl = ttl_seconds
        self._entries: OrderedDict[Identity, tuple[uuid.UUID, float]] = OrderedDict()

    def get(self, identity: Identity) -> uuid.UUID | None:
        entry = self._entries.get(identity)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._entries[identity]
            return None
        self._entries.move_to_end(identity)
        return entry[0]

    def put(self, identity: Identity, user_id: uuid.UUID) -> None:
        self._entries[identity] = (user_id, time.monotonic() + self.ttl)
        self._entries.move_to_end(identity)
        while len(self._entries) > IDENTITY_CACHE_SIZE:
            self._entries.popitem(last=False)


def log_access(
    method: str, route: str, status: int, started: float, request_id: str, user_id: uuid.UUID | None
) -> None:
    """The access line of todo-api's middleware: the same fields, built only when INFO is on."""
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "request_id": request_id,
                "user_id": None if user_id is None else str(user_id),
            },
        )
