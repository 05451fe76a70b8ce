"""Real key pairs and real signatures for the tests (no mocked JWT library)."""

from __future__ import annotations

import base64
import datetime
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://issuer.test"
AUDIENCE = "todo-api"
CURSOR_SECRET = "tests-cursor-secret-0123456789abcdefghij"  # CURSOR_SECRET of every app the tests run

type PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(kind: str) -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "es256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jwk(key: PrivateKey, kid: str | None = None, alg: str | None = None) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def self_signed_certificate(
    key: PrivateKey, common_name: str = "issuer.test", days: int = 1, san: x509.SubjectAlternativeName | None = None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Signer:
    """Signs tokens the way an identity provider would."""

    key: PrivateKey | str
    algorithm: str
    kid: str | None = None
    issuer: str | None = ISSUER
    audience: str | list[str] | None = AUDIENCE
    defaults: dict[str, Any] = field(default_factory=dict)

    def claims(self, sub: str | None = None, *, ttl: int = 300, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub or f"user-{uuid.uuid4().hex[:12]}", "iat": now, "exp": now + ttl}
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        claims.update(self.defaults)
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not DROP}

    def token(self, sub: str | None = None, *, headers: dict[str, Any] | None = None, **extra: Any) -> str:
        header = {"kid": self.kid} if self.kid else {}
        header.update(headers or {})
        return jwt.encode(self.claims(sub, **extra), self.key, algorithm=self.algorithm, headers=header or None)


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()  # pass as a claim value to leave the claim out
