"""Local development secrets and tokens: a generated Ed25519 key and a cursor secret kept under the
data directory, and minting.

Only for `todo-api dev` and `todo-api token`. Production verifies tokens from the identity provider
and never holds a private key; its CURSOR_SECRET is configured.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import SecretStr

from todo_api.config import ConfigError, Settings

DEV_ISSUER = "todo-api-dev"
DEV_AUDIENCE = "todo-api"
DEV_KEY_FILE = "dev-signing-key.pem"
DEV_CURSOR_SECRET_FILE = "dev-cursor-secret"  # noqa: S105 - a file name, not a secret


def dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / DEV_KEY_FILE


def load_or_create_dev_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """Read the dev key, creating it (mode 0600) on first use so tokens survive restarts."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError([f"{path} is not an Ed25519 private key; delete it to regenerate"])
        return key
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _create_private_file(path, pem)
    return key


def _create_private_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def load_or_create_cursor_secret(path: Path) -> str:
    """Read the dev cursor secret, creating it (mode 0600) on first use so cursors survive restarts."""
    if not path.exists():
        _create_private_file(path, secrets.token_urlsafe(48).encode())
    return path.read_text().strip()


def with_dev_cursor_secret(settings: Settings) -> Settings:
    """Settings for local development: without CURSOR_SECRET, the one kept in the data directory."""
    if settings.cursor_secret is not None:
        return settings
    secret = load_or_create_cursor_secret(settings.data_dir / DEV_CURSOR_SECRET_FILE)
    return settings.model_copy(update={"cursor_secret": SecretStr(secret)})


def public_pem(key: ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def with_dev_key(settings: Settings) -> Settings:
    """Settings for local development: when no key source is configured, verify with the dev key
    and expect the dev issuer and audience (unless configured otherwise)."""
    if settings.has_key_source:
        return settings
    key = load_or_create_dev_key(dev_key_path(settings))
    return settings.model_copy(
        update={
            "jwt_public_key": SecretStr(public_pem(key)),
            "jwt_issuer": settings.jwt_issuer or DEV_ISSUER,
            "jwt_audience": settings.jwt_audience or [DEV_AUDIENCE],
        }
    )


def signing_key(settings: Settings) -> tuple[Any, str]:
    """The key `todo-api token` signs with, and its algorithm.

    JWT_SECRET → HS256. No key source, or JWT_PUBLIC_KEY matching the dev key → the dev key.
    A JWKS URL or someone else's public key → refuse: the identity provider holds that private key.
    """
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value(), "HS256"
    path = dev_key_path(settings)
    if settings.jwt_jwks_url is not None:
        raise ConfigError(["token: JWT_JWKS_URL is configured; tokens come from your identity provider"])
    if settings.jwt_public_key is None:
        return load_or_create_dev_key(path), "EdDSA"
    if path.exists():
        key = load_or_create_dev_key(path)
        if public_pem(key).strip() == settings.jwt_public_key.get_secret_value().strip().replace("\\n", "\n"):
            return key, "EdDSA"
    raise ConfigError(["token: JWT_PUBLIC_KEY is not the local dev key, so there is no private key to sign with"])


def mint_token(
    settings: Settings,
    *,
    subject: str,
    email: str | None = None,
    name: str | None = None,
    scope: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    key, algorithm = signing_key(settings)
    dev = with_dev_key(settings) if not settings.has_key_source else settings
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + ttl_seconds, "jti": uuid.uuid4().hex}
    if dev.jwt_issuer:
        claims["iss"] = dev.jwt_issuer
    if dev.jwt_audience:
        claims["aud"] = dev.jwt_audience[0]
    optional = {"email": email, "name": name, "scope": scope}
    claims.update({claim: value for claim, value in optional.items() if value is not None})
    return jwt.encode(claims, key, algorithm=algorithm)
