"""The three key sources and the key formats JWT_PUBLIC_KEY accepts; unusable keys stop startup."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from tests.conftest import AppClientFactory
from tests.keys import PrivateKey, Signer, new_key, public_jwk, public_pem, self_signed_certificate
from todo_api.app import create_app
from todo_api.config import ConfigError, load_settings

pytestmark = pytest.mark.usefixtures("db_engine")

ME = "/api/users/me"
SECRET = "0123456789abcdef0123456789abcdef-hs256"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def certificate_pem(key: PrivateKey) -> str:
    return self_signed_certificate(key, days=365).public_bytes(serialization.Encoding.PEM).decode()


def private_pem(key: PrivateKey, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


# --- JWT_SECRET ----------------------------------------------------------------------------------


async def test_shared_secret_verifies_hs256(app_client: AppClientFactory) -> None:
    async with app_client(jwt_public_key=None, jwt_secret=SECRET) as client:
        response = await client.get(ME, headers=bearer(Signer(SECRET, "HS256").token("hs-user")))
        assert response.status_code == 200
        assert response.json()["subject"] == "hs-user"
        wrong = Signer("another-secret-of-at-least-32-bytes!!", "HS256").token("hs-user")
        assert (await client.get(ME, headers=bearer(wrong))).status_code == 401
        assert (await client.delete(ME, headers=bearer(wrong))).status_code == 401


async def test_shared_secret_refuses_asymmetric_tokens(app_client: AppClientFactory, rsa_key: PrivateKey) -> None:
    async with app_client(jwt_public_key=None, jwt_secret=SECRET) as client:
        token = Signer(rsa_key, "RS256").token()
        assert (await client.get(ME, headers=bearer(token))).status_code == 401


def test_shared_secret_length_is_counted_in_bytes() -> None:
    load_settings(_env_file=None, require_database=False, jwt_secret="x" * 32)
    load_settings(_env_file=None, require_database=False, jwt_secret="é" * 16)  # 32 bytes in UTF-8
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None, require_database=False, jwt_secret="x" * 31)
    assert error.value.problems == ["JWT_SECRET must be at least 32 bytes"]


def test_hmac_algorithms_cannot_be_allowed_with_a_public_key(rsa_key: PrivateKey) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            _env_file=None, require_database=False, jwt_public_key=public_pem(rsa_key), jwt_algorithms="RS256,HS256"
        )
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith("JWT_ALGORITHMS contains HS256, not usable with")


# --- JWT_PUBLIC_KEY formats --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
async def test_rsa_public_key_pem(app_client: AppClientFactory, rsa_key: PrivateKey, alg: str) -> None:
    async with app_client(jwt_public_key=public_pem(rsa_key)) as client:
        assert (await client.get(ME, headers=bearer(Signer(rsa_key, alg).token()))).status_code == 200
        other = Signer(new_key("rsa"), alg).token()
        assert (await client.get(ME, headers=bearer(other))).status_code == 401


async def test_ec_p256_public_key_pem(app_client: AppClientFactory, ec_key: PrivateKey) -> None:
    async with app_client(jwt_public_key=public_pem(ec_key)) as client:
        assert (await client.get(ME, headers=bearer(Signer(ec_key, "ES256").token()))).status_code == 200
        other = Signer(new_key("es256"), "ES256").token()
        assert (await client.get(ME, headers=bearer(other))).status_code == 401


async def test_ec_p384_public_key_with_es384(app_client: AppClientFactory) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    async with app_client(jwt_public_key=public_pem(key), jwt_algorithms="ES384") as client:
        assert (await client.get(ME, headers=bearer(Signer(key, "ES384").token()))).status_code == 200


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "es256"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["jwk", "jwk-set"])
async def test_jwk_json_as_public_key(app_client: AppClientFactory, kind: str, wrapped: bool) -> None:
    key = new_key(kind) if kind != "rsa" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alg = {"ed25519": "EdDSA", "rsa": "RS256", "es256": "ES256"}[kind]
    jwk: dict[str, Any] = public_jwk(key, kid="k1")
    document = {"keys": [jwk]} if wrapped else jwk
    async with app_client(jwt_public_key=json.dumps(document)) as client:
        assert (await client.get(ME, headers=bearer(Signer(key, alg).token()))).status_code == 200
        other = Signer(new_key(kind), alg).token()
        assert (await client.get(ME, headers=bearer(other))).status_code == 401


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "RS256"), ("es256", "ES256"), ("ed25519", "EdDSA")])
async def test_x509_certificate_pem(app_client: AppClientFactory, kind: str, alg: str) -> None:
    key = new_key(kind)
    async with app_client(jwt_public_key=certificate_pem(key)) as client:
        assert (await client.get(ME, headers=bearer(Signer(key, alg).token()))).status_code == 200
        other = Signer(new_key(kind), alg).token()
        assert (await client.get(ME, headers=bearer(other))).status_code == 401


@pytest.mark.parametrize("source", ["public key", "certificate"])
async def test_newline_escaped_pem_on_one_line(app_client: AppClientFactory, ec_key: PrivateKey, source: str) -> None:
    pem = public_pem(ec_key) if source == "public key" else certificate_pem(ec_key)
    one_line = pem.strip().replace("\n", "\\n")
    assert "\n" not in one_line
    async with app_client(jwt_public_key=one_line) as client:
        assert (await client.get(ME, headers=bearer(Signer(ec_key, "ES256").token()))).status_code == 200


# --- keys that must stop startup ----------------------------------------------------------------


def _refused(base_settings: dict[str, Any], jwt_public_key: str) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        create_app(load_settings(**{**base_settings, "jwt_public_key": jwt_public_key}))
    return error.value


def _material(text: str) -> list[str]:
    """Fragments of key material that must never appear in a message (base64 runs, JWK values)."""
    return [run for run in re.findall(r"[A-Za-z0-9+/_-]{16,}", text) if not run.isalpha()]


PRIVATE_FORMS = {
    "rsa pkcs8": lambda: private_pem(new_key("rsa")),
    "rsa traditional": lambda: private_pem(new_key("rsa"), serialization.PrivateFormat.TraditionalOpenSSL),
    "ec traditional": lambda: private_pem(new_key("es256"), serialization.PrivateFormat.TraditionalOpenSSL),
    "ed25519 pkcs8": lambda: private_pem(new_key("ed25519")),
    "ed25519 pkcs8 escaped": lambda: private_pem(new_key("ed25519")).replace("\n", "\\n"),
    "encrypted pkcs8": lambda: (
        new_key("es256")
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        .decode()
    ),
    "private jwk": lambda: json.dumps(_private_jwk()),
}


def _private_jwk() -> dict[str, Any]:
    key = new_key("es256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return ECAlgorithm.to_jwk(key, as_dict=True)


@pytest.mark.parametrize("form", list(PRIVATE_FORMS))
def test_private_key_as_public_key_is_refused_without_echoing_it(base_settings: dict[str, Any], form: str) -> None:
    text = PRIVATE_FORMS[form]()
    error = _refused(base_settings, text)
    message = "\n".join(error.problems)
    assert message.startswith("JWT_PUBLIC_KEY")
    assert "private" in message or "not a valid" in message
    for fragment in _material(text):
        assert fragment not in message
        assert fragment not in str(error)
        assert fragment not in repr(error)


def test_private_key_refusal_says_why(base_settings: dict[str, Any]) -> None:
    error = _refused(base_settings, private_pem(new_key("rsa")))
    assert error.problems == ["JWT_PUBLIC_KEY must be a public key, but a private key was given"]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("form", ["pem", "certificate", "jwk"])
def test_rsa_1024_is_refused(base_settings: dict[str, Any], form: str) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - weak on purpose
    text = {
        "pem": lambda: public_pem(weak),
        "certificate": lambda: certificate_pem(weak),
        "jwk": lambda: json.dumps(public_jwk(weak)),
    }[form]()
    error = _refused(base_settings, text)
    assert len(error.problems) == 1
    assert error.problems[0].startswith("JWT_PUBLIC_KEY")
    assert "2048" in error.problems[0]


@pytest.mark.parametrize(
    "text",
    [
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        '{"kty": "RSA"}',
        '{"kty": "oct", "k": "c2VjcmV0"}',
        "[1, 2]",
        "{not json",
    ],
)
def test_malformed_public_key_is_refused(base_settings: dict[str, Any], text: str) -> None:
    error = _refused(base_settings, text)
    assert error.problems == ["JWT_PUBLIC_KEY is not a valid PEM public key, certificate or JWK"]


def test_key_type_outside_the_allowlist_is_refused(base_settings: dict[str, Any]) -> None:
    key = new_key("ed25519")
    with pytest.raises(ConfigError) as error:
        create_app(load_settings(**{**base_settings, "jwt_public_key": public_pem(key), "jwt_algorithms": "RS256"}))
    assert error.value.problems[0].startswith("JWT_PUBLIC_KEY: its key type matches none of JWT_ALGORITHMS")
