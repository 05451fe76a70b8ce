"""The verified identity behind a request, and its scopes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

READ_SCOPE = "todos:read"
WRITE_SCOPE = "todos:write"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

MAX_SUBJECT_CHARS = 255
MAX_ISSUER_CHARS = 1024
MAX_EMAIL_CHARS = 320
MAX_NAME_CHARS = 500


# Where the request scope's state keeps the verified principal (set by `auth.http.authenticate`).
PRINCIPAL_KEY = "principal"


@dataclass(frozen=True, slots=True)
class Principal:
    issuer: str
    subject: str
    email: str | None
    name: str | None
    scopes: frozenset[str] | None  # None: the token carries no scope claim at all

    def allows(self, scope: str, *, require_scopes: bool) -> bool:
        if self.scopes is None:
            return not require_scopes
        return scope in self.scopes


def required_scope(method: str) -> str:
    return READ_SCOPE if method.upper() in SAFE_METHODS else WRITE_SCOPE


def clean_text(value: Any, max_chars: int) -> str | None:
    """A string PostgreSQL can store as text: non-empty, no NUL, valid UTF-8, bounded."""
    if not isinstance(value, str) or not value or len(value) > max_chars or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes
        return None
    return value


def _scope_items(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return None if value is None else []


def parse_scopes(claims: Mapping[str, Any]) -> frozenset[str] | None:
    """`scope` (space-separated, OAuth 2), `scp` (Okta/Azure) and `permissions` (Auth0 RBAC)."""
    found: list[str] | None = None
    for claim in ("scope", "scp", "permissions"):
        if claim in claims:
            items = _scope_items(claims[claim])
            found = (found or []) + (items or [])
    return None if found is None else frozenset(found)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal | None:
    """Build the principal from verified claims; None when `sub`/`iss` are unusable."""
    subject = clean_text(claims.get("sub"), MAX_SUBJECT_CHARS)
    if subject is None or not subject.strip():
        return None
    raw_issuer = claims.get("iss", "")
    issuer = "" if raw_issuer == "" else clean_text(raw_issuer, MAX_ISSUER_CHARS)
    if issuer is None:
        return None
    return Principal(
        issuer=issuer,
        subject=subject,
        email=clean_text(claims.get("email"), MAX_EMAIL_CHARS),
        name=clean_text(claims.get("name"), MAX_NAME_CHARS),
        scopes=parse_scopes(claims),
    )
