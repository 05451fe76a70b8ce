"""Per-process cache: verified identity → internal user id, so most requests skip the user lookup.

An entry is used only while the token's profile claims (email, name — when present) equal what
was stored, so changed claims still reach the database. Entries expire after `ttl` seconds. A miss
is resolved inside the request's own unit of work (`auth.current.CurrentUser`). This worker forgets
an identity when its account is deleted here; another worker may still hold the old id: a request
run as it finds nothing (the account's rows are gone), checks that the account exists, and then
forgets the entry and runs as the new account, or is refused (409) if the deletion came after the
request arrived (`auth.current.CurrentUser`).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from todo_api.auth.principal import Principal


@dataclass(frozen=True, slots=True)
class _Entry:
    user_id: uuid.UUID
    email: str | None
    name: str | None
    expires: float


class IdentityCache:
    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def get(self, principal: Principal) -> uuid.UUID | None:
        key = (principal.issuer, principal.subject)
        entry = self._entries.get(key)
        if entry is None:
            return None
        stale = entry.expires < time.monotonic()
        changed = (principal.email is not None and principal.email != entry.email) or (
            principal.name is not None and principal.name != entry.name
        )
        if stale or changed:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.user_id

    def put(self, user: Any) -> None:
        """Remember a user row (anything with id, issuer, subject, email, name)."""
        key = (user.issuer, user.subject)
        self._entries[key] = _Entry(user.id, user.email, user.name, time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, principal: Principal) -> None:
        self._entries.pop((principal.issuer, principal.subject), None)
