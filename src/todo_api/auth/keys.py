"""Where verification keys come from: a shared secret, one public key, or a JWKS URL.

Each source answers `key_for(header)` with a key and the algorithms that key may verify, so an
algorithm is accepted only when both the configured allowlist and the key's own type allow it
(no HS256-with-a-public-key confusion). Header fields `jku`, `x5u`, `x5c` and `jwk` are never read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from jwt import PyJWK, PyJWTError

from todo_api.config import ConfigError, Settings

logger = logging.getLogger("todo_api.auth")

MAX_JWKS_BYTES = 512 * 1024
MIN_RSA_BITS = 2048
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384"}

type PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class KeySourceUnavailable(Exception):
    """No key can be obtained right now (cold JWKS cache and endpoint down)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("JWKS unavailable")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class VerificationKey:
    key: PublicKey | bytes
    algorithms: frozenset[str]


class KeySource(Protocol):
    async def key_for(self, header: Mapping[str, Any]) -> VerificationKey | None: ...


def algorithms_for(key: PublicKey) -> frozenset[str]:
    """Algorithms a public key of this type can verify (RSA below 2048 bits: none)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return frozenset({"EdDSA"})
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS if key.key_size >= MIN_RSA_BITS else frozenset()
    return frozenset()


def _as_public(key: Any) -> PublicKey | None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        key = key.public_key()
    if isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        return key
    return None


def key_from_jwk(jwk: Mapping[str, Any], allowlist: Iterable[str]) -> VerificationKey | None:
    """A verification key from one JWK, or None when it is unusable for signatures here."""
    if jwk.get("use", "sig") != "sig" or jwk.get("kty") not in {"RSA", "EC", "OKP"}:
        return None
    declared = jwk.get("alg")
    try:
        # The parse algorithm only selects the key family; RSA keys serve RS* and PS* alike.
        parse_as = "RS256" if jwk.get("kty") == "RSA" else None
        public = _as_public(PyJWK(dict(jwk), algorithm=parse_as).key)
    except (PyJWTError, ValueError, TypeError):
        return None
    if public is None:
        return None
    algorithms = algorithms_for(public) & frozenset(allowlist)
    if declared is not None:
        algorithms &= {declared}
    return VerificationKey(public, algorithms) if algorithms else None


def _parse_public_key(text: str) -> PublicKey:
    text = text.strip().replace("\\n", "\n")
    if text.startswith("{"):
        data = orjson.loads(text)
        if isinstance(data, dict) and isinstance(data.get("keys"), list) and len(data["keys"]) == 1:
            data = data["keys"][0]
        if not isinstance(data, dict):
            raise ValueError("not a JWK object")
        if "d" in data:
            raise ConfigError(["JWT_PUBLIC_KEY must be a public key, but a private JWK was given"])
        public = _as_public(PyJWK(data, algorithm="RS256" if data.get("kty") == "RSA" else None).key)
    elif "PRIVATE KEY-----" in text:
        load_pem_private_key(text.encode(), password=None)  # valid or not, refuse it below
        raise ConfigError(["JWT_PUBLIC_KEY must be a public key, but a private key was given"])
    elif "BEGIN CERTIFICATE" in text:
        public = _as_public(x509.load_pem_x509_certificate(text.encode()).public_key())
    else:
        public = _as_public(load_pem_public_key(text.encode()))
    if public is None:
        raise ValueError("unsupported key type")
    return public


class SecretKeySource:
    """HS256 (or HS384/512) with a shared secret of at least 32 bytes."""

    def __init__(self, secret: str, allowlist: Iterable[str]) -> None:
        self._key = VerificationKey(secret.encode(), frozenset(allowlist))

    async def key_for(self, header: Mapping[str, Any]) -> VerificationKey | None:
        return self._key


class StaticKeySource:
    """One configured public key (PEM public key, PEM certificate, or JWK)."""

    def __init__(self, text: str, allowlist: Iterable[str]) -> None:
        try:
            public = _parse_public_key(text)
        except ConfigError:
            raise
        except (ValueError, TypeError, PyJWTError, orjson.JSONDecodeError):
            raise ConfigError(["JWT_PUBLIC_KEY is not a valid PEM public key, certificate or JWK"]) from None
        algorithms = algorithms_for(public) & frozenset(allowlist)
        if not algorithms:
            raise ConfigError(
                ["JWT_PUBLIC_KEY: its key type matches none of JWT_ALGORITHMS (RSA keys need >= 2048 bits)"]
            )
        self._key = VerificationKey(public, algorithms)

    async def key_for(self, header: Mapping[str, Any]) -> VerificationKey | None:
        return self._key


class JwksKeySource:
    """Keys from a JWKS URL, cached.

    - Fresh for `ttl` seconds; afterwards refreshed on the next request.
    - An unknown `kid` triggers a refetch at most once per `cooldown` (a flood of random kids
      costs one fetch), single-flight across concurrent requests.
    - If a refresh fails the cached keys keep working; with nothing cached the caller gets
      `KeySourceUnavailable` at once (503) until the cooldown allows another attempt.
    - Every fetch is bounded by `timeout` seconds and `MAX_JWKS_BYTES`; redirects are not followed.
    """

    def __init__(
        self,
        url: str,
        allowlist: Iterable[str],
        *,
        ttl: float,
        cooldown: float,
        timeout: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._allowlist = frozenset(allowlist)
        self._ttl = ttl
        self._cooldown = cooldown
        self._timeout = timeout
        self._client = client
        self._keys: dict[str | None, VerificationKey] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self.fetch_count = 0

    def bind(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def key_for(self, header: Mapping[str, Any]) -> VerificationKey | None:
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            return None
        now = time.monotonic()
        if self._keys is None:
            await self._refresh(now)  # cold: nothing to verify with until a fetch succeeds
        elif now - self._fetched_at >= self._ttl:
            self._refresh_in_background(now)  # stale but usable: never make a request wait
        key = self._lookup(kid)
        if key is None and kid is not None:
            await self._refresh(now)  # unknown kid: maybe the provider rotated its keys
            key = self._lookup(kid)
        return key

    def _refresh_in_background(self, now: float) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._refresh(now))

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        keys = self._keys or {}
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    async def _refresh(self, requested_at: float) -> None:
        async with self._lock:
            if self._attempted_at >= requested_at or time.monotonic() - self._attempted_at < self._cooldown:
                self._raise_if_cold()
                return  # someone else just tried, or we tried too recently
            self._attempted_at = time.monotonic()
            try:
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
            except Exception as exc:  # any failure: keep the warm cache, report a cold one
                logger.warning("JWKS fetch failed: %s", type(exc).__name__)
                self._raise_if_cold()

    def _raise_if_cold(self) -> None:
        if self._keys is None:
            remaining = self._cooldown - (time.monotonic() - self._attempted_at)
            raise KeySourceUnavailable(max(1, math.ceil(remaining)))

    async def probe(self) -> int:
        """Fetch the key set now, past the cache (`todo-api healthcheck`): the number of usable
        keys; raises whatever the fetch raised."""
        return len(await self._fetch())

    async def _fetch(self) -> dict[str | None, VerificationKey]:
        if self._client is None:
            raise RuntimeError("JWKS client not bound")
        self.fetch_count += 1
        async with asyncio.timeout(self._timeout):
            async with self._client.stream(
                "GET", self._url, headers={"Accept": "application/json"}, follow_redirects=False
            ) as response:
                response.raise_for_status()
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise ValueError("JWKS too large")
        document = orjson.loads(body)
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("not a JWK Set")
        keys: dict[str | None, VerificationKey] = {}
        for entry in entries:
            if isinstance(entry, dict) and (key := key_from_jwk(entry, self._allowlist)) is not None:
                kid = entry.get("kid")
                keys[kid if isinstance(kid, str) else None] = key
        if not keys:
            raise ValueError("JWK Set has no usable signing keys")
        return keys


def build_key_source(settings: Settings) -> KeySource:
    """The configured key source; raises `ConfigError` for an unusable key."""
    allowlist = settings.algorithms
    if settings.jwt_secret is not None:
        return SecretKeySource(settings.jwt_secret.get_secret_value(), allowlist)
    if settings.jwt_public_key is not None:
        return StaticKeySource(settings.jwt_public_key.get_secret_value(), allowlist)
    if settings.jwt_jwks_url is not None:
        return JwksKeySource(
            str(settings.jwt_jwks_url),
            allowlist,
            ttl=settings.jwks_cache_ttl_seconds,
            cooldown=settings.jwks_refresh_cooldown_seconds,
            timeout=settings.jwks_timeout_seconds,
        )
    raise ConfigError(["set one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET"])
