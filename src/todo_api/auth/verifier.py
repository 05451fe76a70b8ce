"""Token verification: signature with an explicit allowlist, then the registered claims."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWTError

from todo_api.auth.keys import KeySource, KeySourceUnavailable, VerificationKey, build_key_source
from todo_api.auth.principal import Principal, principal_from_claims
from todo_api.config import Settings
from todo_api.errors import NotAuthenticated, ServiceUnavailable

# Three base64url segments; the signature may be empty only to be rejected by the allowlist.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
VERIFIED_CACHE_SIZE = 10_000
# Bounds how long a verified token outlives a key the provider has since removed from its JWKS.
VERIFIED_TTL_SECONDS = 300.0
# JWS extensions we do not implement must not be silently ignored (RFC 7515 §4.1.11).
_UNSUPPORTED_HEADERS = frozenset({"crit", "b64"})


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    valid_until: float
    header: dict[str, Any]
    key: VerificationKey


class TokenVerifier:
    def __init__(self, settings: Settings, keys: KeySource | None = None) -> None:
        self.keys = keys if keys is not None else build_key_source(settings)
        self.require_scopes = settings.jwt_require_scopes
        self._allowlist = frozenset(settings.algorithms)
        self._max_bytes = settings.jwt_max_token_bytes
        self._issuer = settings.jwt_issuer
        self._audience = list(settings.jwt_audience) or None
        self._leeway = settings.jwt_leeway_seconds
        self._options: Any = {
            "require": ["exp", "sub"],
            "verify_aud": self._audience is not None,
            "verify_iss": self._issuer is not None,
        }
        self._verified: dict[str, _Verified] = {}

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; `NotAuthenticated` for anything else.

        A token that verified is remembered (by its exact bytes) until it expires, for at most
        `VERIFIED_TTL_SECONDS`: clients send the same token on every request, and the signature
        check is the largest fixed cost of a request. On every use the expiry is checked again and
        the key source must still hold the very key that verified it, so a key the provider drops
        from its JWKS stops working at the next refresh, exactly as without the cache.
        """
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            if now < cached.valid_until and await self.keys.key_for(cached.header) is cached.key:
                return cached.principal
            del self._verified[token]
        verified = await self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # oldest first (insertion order)
        self._verified[token] = verified
        return verified.principal

    async def _verify(self, token: str) -> _Verified:
        if len(token) > self._max_bytes or not _COMPACT_JWS.fullmatch(token):
            raise NotAuthenticated
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise NotAuthenticated from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._allowlist or _UNSUPPORTED_HEADERS & header.keys():
            raise NotAuthenticated
        try:
            key = await self.keys.key_for(header)
        except KeySourceUnavailable as exc:
            raise ServiceUnavailable(exc.retry_after) from None
        if key is None or alg not in key.algorithms:
            raise NotAuthenticated
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except PyJWTError:
            raise NotAuthenticated from None
        principal = principal_from_claims(claims)
        if principal is None:
            raise NotAuthenticated
        valid_until = min(float(claims["exp"]) + self._leeway, time.time() + VERIFIED_TTL_SECONDS)
        return _Verified(principal, valid_until, header, key)
