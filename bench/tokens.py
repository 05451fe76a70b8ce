"""The bench's own identity provider: an Ed25519 key pair and long-lived tokens for seeded users."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ISSUER = "https://idp.bench.todo-api.invalid/"
AUDIENCE = "todo-api-bench"
SCOPE = "todos:read todos:write"
TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Signer:
    private_key: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Signer:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def token(self, subject: str, ttl_seconds: int = TTL_SECONDS) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "scope": SCOPE,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.private_key, algorithm="EdDSA")
