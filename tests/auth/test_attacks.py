"""Hostile and malformed credentials: every one is a 401 with the same body and no hints.

Tokens are built for real: signed with real keys by PyJWT, or assembled by hand (header and
payload base64url, HMAC) where PyJWT refuses to produce the attack, e.g. HS256 keyed with the
server's public key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.auth.jwks_server import JwksServer
from tests.conftest import AppClientFactory, count_users
from tests.keys import (
    AUDIENCE,
    DROP,
    ISSUER,
    PrivateKey,
    Signer,
    b64url,
    new_key,
    public_jwk,
    public_pem,
    self_signed_certificate,
)
from todo_api.app import create_app
from todo_api.auth.verifier import TokenVerifier
from todo_api.config import Settings, load_settings
from todo_api.errors import NotAuthenticated

pytestmark = pytest.mark.usefixtures("db_engine")

ME = "/api/users/me"
NOT_AUTHENTICATED = b'{"detail":"Not authenticated","code":"unauthenticated"}'
METHODS = ("GET", "DELETE")

type Headers = list[tuple[bytes, bytes]]
type Case = Callable[["Keys"], Headers]


# --- building tokens by hand --------------------------------------------------------------


def segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def hmac_token(secret: bytes, claims: dict[str, Any], alg: str = "HS256", **header: Any) -> str:
    """An HMAC-signed JWT assembled by hand (PyJWT refuses PEM-looking HMAC secrets)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{segment({'alg': alg, 'typ': 'JWT', **header})}.{segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def resign(signer: Signer, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """Sign arbitrary claims (including ones `Signer.token` cannot express, like `sub: null`)."""
    return jwt.encode(claims, signer.key, algorithm=signer.algorithm, headers=headers)


def signed_raw(key: PrivateKey | str, header: str, payload: str) -> str:
    """Two segments exactly as given, with a genuine Ed25519 signature."""
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return f"{header}.{payload}.{b64url(key.sign(f'{header}.{payload}'.encode()))}"


def flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def authorization(value: str | bytes) -> Headers:
    return [(b"Authorization", value if isinstance(value, bytes) else value.encode("latin-1"))]


def bearer(token: str) -> Headers:
    return authorization(f"Bearer {token}")


class Keys:
    """The server's key (what the default app trusts) and an attacker's key."""

    def __init__(self, signer: Signer, attacker: Signer) -> None:
        self.signer = signer
        self.attacker = attacker
        assert isinstance(signer.key, ed25519.Ed25519PrivateKey)
        self.server_public_pem = public_pem(signer.key).encode()

    def valid(self, sub: str = "attack-target") -> str:
        return self.signer.token(sub)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        claims = self.signer.claims("attack-target")
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not DROP}

    def signed(self, **overrides: Any) -> str:
        return resign(self.signer, self.claims(**overrides))

    def raw(self, header: str, payload: str) -> str:
        """Two segments exactly as given, with a genuine signature by the server's key."""
        return signed_raw(self.signer.key, header, payload)


def now() -> int:
    return int(time.time())


def _tampered_payload(keys: Keys) -> str:
    header, _, signature = keys.valid("attacker").split(".")
    return f"{header}.{segment(keys.claims(sub='victim'))}.{signature}"


def _tampered_signature(keys: Keys) -> str:
    token = keys.valid()
    head, signature = token.rsplit(".", 1)
    return f"{head}.{flip(signature, len(signature) // 2)}"


def _non_ascii(keys: Keys) -> Headers:
    token = keys.valid()
    return authorization(f"Bearer {token[:20]}é{token[20:]}".encode())


def _alg_none(alg: str, signature: str | None) -> Case:
    def build(keys: Keys) -> Headers:
        head = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(keys.claims())}"
        return bearer(head if signature is None else f"{head}.{signature}")

    return build


def _jwk_header(keys: Keys) -> Headers:
    assert not isinstance(keys.attacker.key, str)
    return bearer(keys.attacker.token("attack-target", headers={"jwk": public_jwk(keys.attacker.key)}))


def _x5c_header(keys: Keys) -> Headers:
    assert not isinstance(keys.attacker.key, str)
    der = self_signed_certificate(keys.attacker.key, "attacker.test").public_bytes(serialization.Encoding.DER)
    return bearer(keys.attacker.token("attack-target", headers={"x5c": [base64.b64encode(der).decode()]}))


CASES: dict[str, Case] = {
    # --- the Authorization header itself
    "no authorization header": lambda keys: [],
    "basic scheme": lambda keys: authorization("Basic " + base64.b64encode(b"alice:secret").decode()),
    "token scheme": lambda keys: authorization(f"Token {keys.valid()}"),
    "token without scheme": lambda keys: authorization(keys.valid()),
    "bearer with empty token": lambda keys: authorization("Bearer "),
    "bearer alone": lambda keys: authorization("Bearer"),
    "two authorization headers": lambda keys: [*bearer(keys.valid()), *bearer(keys.valid())],
    # --- alg=none and algorithm confusion
    "alg none with empty signature": _alg_none("none", ""),
    "alg none without signature part": _alg_none("none", None),
    "alg None": _alg_none("None", ""),
    "alg NONE": _alg_none("NONE", ""),
    "alg none keeping a real signature": lambda keys: bearer(
        f"{segment({'alg': 'none'})}.{segment(keys.claims())}.{keys.valid().rsplit('.', 1)[1]}"
    ),
    "hs256 keyed with the public key pem": lambda keys: bearer(hmac_token(keys.server_public_pem, keys.claims())),
    "hs512 keyed with the public key pem": lambda keys: bearer(
        hmac_token(keys.server_public_pem, keys.claims(), alg="HS512")
    ),
    "alg missing from header": lambda keys: bearer(keys.raw(segment({"typ": "JWT"}), segment(keys.claims()))),
    "crit header": lambda keys: bearer(keys.raw(segment({"alg": "EdDSA", "crit": ["exp"]}), segment(keys.claims()))),
    "crit header with b64": lambda keys: bearer(
        keys.raw(segment({"alg": "EdDSA", "b64": True, "crit": ["b64"]}), segment(keys.claims()))
    ),
    # --- keys smuggled in the header
    "jwk header with the attacker's key": _jwk_header,
    "x5c header with the attacker's certificate": _x5c_header,
    "signed by another key": lambda keys: bearer(keys.attacker.token("attack-target")),
    # --- time claims
    "expired beyond leeway": lambda keys: bearer(keys.signed(iat=now() - 600, exp=now() - 120)),
    "not before in the future": lambda keys: bearer(keys.signed(nbf=now() + 120)),
    "issued in the future": lambda keys: bearer(keys.signed(iat=now() + 120)),
    "missing exp": lambda keys: bearer(keys.signed(exp=DROP)),
    "exp not a number": lambda keys: bearer(keys.signed(exp="tomorrow")),
    # --- issuer and audience
    "wrong issuer": lambda keys: bearer(keys.signed(iss="https://evil.test")),
    "missing issuer": lambda keys: bearer(keys.signed(iss=DROP)),
    "issuer differing in case": lambda keys: bearer(keys.signed(iss=ISSUER.upper())),
    "wrong audience": lambda keys: bearer(keys.signed(aud="another-api")),
    "missing audience": lambda keys: bearer(keys.signed(aud=DROP)),
    "audience array without ours": lambda keys: bearer(keys.signed(aud=["another-api", "third-api"])),
    # --- subject
    "missing sub": lambda keys: bearer(keys.signed(sub=DROP)),
    "empty sub": lambda keys: bearer(keys.signed(sub="")),
    "whitespace sub": lambda keys: bearer(keys.signed(sub=" \t ")),
    "integer sub": lambda keys: bearer(keys.signed(sub=12345)),
    "list sub": lambda keys: bearer(keys.signed(sub=["alice"])),
    "null sub": lambda keys: bearer(keys.signed(sub=None)),
    "sub with NUL": lambda keys: bearer(keys.signed(sub="alice\x00admin")),
    "sub longer than 255 chars": lambda keys: bearer(keys.signed(sub="a" * 256)),
    # --- structure
    "tampered payload": lambda keys: bearer(_tampered_payload(keys)),
    "tampered signature": lambda keys: bearer(_tampered_signature(keys)),
    "truncated": lambda keys: bearer(keys.valid()[:-12]),
    "two segments": lambda keys: bearer(keys.valid().rsplit(".", 1)[0]),
    "four segments": lambda keys: bearer(f"{keys.valid()}.{segment({})}"),
    "non-json header": lambda keys: bearer(keys.raw(b64url(b"not json"), segment(keys.claims()))),
    "header is a json array": lambda keys: bearer(keys.raw(segment(["alg", "EdDSA"]), segment(keys.claims()))),
    "payload is a json array": lambda keys: bearer(keys.raw(segment({"alg": "EdDSA"}), segment(["attack-target"]))),
    "payload is not json": lambda keys: bearer(keys.raw(segment({"alg": "EdDSA"}), b64url(b"sub=attack-target"))),
    "padded segments": lambda keys: bearer(".".join(part + "==" for part in keys.valid().split("."))),
    "non-base64 garbage": lambda keys: bearer("!!!$$$.@@@###.%%%^^^"),
    "non-ascii characters": _non_ascii,
    # --- size
    "token over 8 KB with a valid signature": lambda keys: bearer(keys.signed(padding="x" * 9000)),
    "64 KB authorization header": lambda keys: bearer("a" * 65536),
}


@pytest.fixture(scope="module")
def attacker_key() -> PrivateKey:
    return new_key("ed25519")


@pytest.fixture
def keys(signer: Signer, attacker_key: PrivateKey) -> Keys:
    return Keys(signer, Signer(attacker_key, "EdDSA"))


@pytest.fixture(scope="module")
async def default_client(app_client: AppClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the whole table (Ed25519 public key, our issuer and audience)."""
    async with app_client() as client:
        yield client


def assert_not_authenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.content == NOT_AUTHENTICATED
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"


async def send(client: httpx.AsyncClient, method: str, headers: Headers, path: str = ME) -> httpx.Response:
    return await client.request(method, path, headers=headers)


# --- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
async def test_rejected_with_a_generic_401(
    default_client: httpx.AsyncClient, keys: Keys, case: str, method: str
) -> None:
    response = await send(default_client, method, CASES[case](keys))
    assert_not_authenticated(response)


async def test_the_401_is_byte_identical_for_every_failure(default_client: httpx.AsyncClient, keys: Keys) -> None:
    """Status, body and headers (request id aside) do not depend on why the token failed."""
    seen: set[tuple[int, bytes, tuple[tuple[str, str], ...]]] = set()
    for case in CASES.values():
        for method in METHODS:
            response = await send(default_client, method, case(keys))
            headers = tuple(sorted((k, v) for k, v in response.headers.items() if k != "x-request-id"))
            seen.add((response.status_code, response.content, headers))
    assert len(seen) == 1, seen
    (status, body, _), *_ = seen
    assert (status, body) == (401, NOT_AUTHENTICATED)


# --- controls: what the table varies is what makes it fail -------------------------------------


CONTROLS: dict[str, Callable[[Keys], str]] = {
    "valid token": lambda keys: keys.valid(),
    "hand-assembled token": lambda keys: keys.raw(segment({"alg": "EdDSA", "typ": "JWT"}), segment(keys.claims())),
    "expired within leeway": lambda keys: keys.signed(iat=now() - 600, exp=now() - 10),
    "not before within leeway": lambda keys: keys.signed(nbf=now() + 10),
    "issued within leeway of now": lambda keys: keys.signed(iat=now() + 10),
    "audience array containing ours": lambda keys: keys.signed(aud=["another-api", AUDIENCE]),
    "sub of exactly 255 chars": lambda keys: keys.signed(sub="b" * 255),
    "large token under 8 KB": lambda keys: keys.signed(padding="x" * 5000),
}


@pytest.mark.parametrize("control", list(CONTROLS))
async def test_controls_are_accepted(default_client: httpx.AsyncClient, keys: Keys, control: str) -> None:
    response = await default_client.get(ME, headers=bearer(CONTROLS[control](keys)))
    assert response.status_code == 200, response.text


async def test_bearer_scheme_is_case_insensitive(default_client: httpx.AsyncClient, keys: Keys) -> None:
    response = await default_client.get(ME, headers={"Authorization": f"bearer {keys.valid()}"})
    assert response.status_code == 200


async def test_forged_token_cannot_delete_another_account(
    default_client: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    victim = await default_client.get(ME, headers=bearer(keys.valid("victim")))
    assert victim.status_code == 200
    forgeries = [
        _tampered_payload(keys),
        keys.attacker.token("victim"),
        hmac_token(keys.server_public_pem, keys.claims(sub="victim")),
        f"{segment({'alg': 'none'})}.{segment(keys.claims(sub='victim'))}.",
    ]
    for token in forgeries:
        assert_not_authenticated(await default_client.delete(ME, headers=bearer(token)))
    assert await count_users(db_engine, subject="victim") == 1


async def test_anonymous_requests_to_unknown_api_paths_get_401_not_404(default_client: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/api/nope"), ("POST", "/api/users/me"), ("DELETE", "/api")]:
        assert_not_authenticated(await default_client.request(method, path, content=b"{not json"))


# --- the settings: JWT_LEEWAY_SECONDS and JWT_MAX_TOKEN_BYTES -----------------------------------


async def test_jwt_leeway_seconds_sets_the_clock_skew_for_exp_nbf_and_iat(
    app_client: AppClientFactory, keys: Keys
) -> None:
    """README, configuration: `JWT_LEEWAY_SECONDS` (default 30) is the "clock skew for `exp`, `nbf`,
    `iat`". At 60, a token expired 45 s ago, or valid (`nbf`) or issued (`iat`) 45 s from now, is
    accepted (the default 30 would refuse it); at 90 s it is refused. At 0, the same claims 20 s off
    are refused (the default 30 would accept them). Ages are set in the claims, not waited for."""
    async with app_client(jwt_leeway_seconds=60) as client:
        for skew in (45, 90):
            tokens = [
                keys.signed(iat=now() - 600, exp=now() - skew),
                keys.signed(nbf=now() + skew),
                keys.signed(iat=now() + skew),
            ]
            for token in tokens:
                response = await client.get(ME, headers=bearer(token))
                if skew == 45:
                    assert response.status_code == 200, (skew, response.text)
                else:
                    assert_not_authenticated(response)
    async with app_client(jwt_leeway_seconds=0) as client:
        assert (await client.get(ME, headers=bearer(keys.signed(exp=now() + 20)))).status_code == 200
        for token in (
            keys.signed(iat=now() - 600, exp=now() - 20),
            keys.signed(nbf=now() + 20),
            keys.signed(iat=now() + 20),
        ):
            assert_not_authenticated(await client.get(ME, headers=bearer(token)))


def tokens_around(keys: Keys, length: int) -> tuple[str, str]:
    """Two validly signed tokens of about `length` characters (= bytes: base64url), the second exactly
    one longer: one more character in a `padding` claim."""
    claims = keys.claims()
    empty = resign(keys.signer, {**claims, "padding": ""})
    start = (length - len(empty)) * 3 // 4  # base64url: 4 characters per 3 bytes
    for pad in range(start, start + 3):  # one in three payload lengths cannot grow by exactly 1 character
        at, over = (resign(keys.signer, {**claims, "padding": "x" * (pad + n)}) for n in (0, 1))
        if len(over) == len(at) + 1:
            return at, over
    raise AssertionError(length)


async def test_jwt_max_token_bytes_sets_the_longest_token_accepted(app_client: AppClientFactory, keys: Keys) -> None:
    """README, configuration: `JWT_MAX_TOKEN_BYTES` (default 8192): "longer tokens are refused".
    Lowered to a token's exact length, that token is accepted and one a byte longer (an equally
    valid signature) is a generic 401 with `WWW-Authenticate: Bearer`; raised to 16384, a 12,000-byte
    token the default refuses is accepted."""
    at_limit, over_limit = tokens_around(keys, 1000)
    limit = len(at_limit)
    assert (len(over_limit), 990 <= limit <= 1010) == (limit + 1, True)
    async with app_client(jwt_max_token_bytes=limit) as client:
        assert (await client.get(ME, headers=bearer(at_limit))).status_code == 200
        assert (await client.get(ME, headers=bearer(keys.valid()))).status_code == 200
        assert_not_authenticated(await client.get(ME, headers=bearer(over_limit)))
        assert_not_authenticated(await client.delete(ME, headers=bearer(over_limit)))
    long_token, _ = tokens_around(keys, 12_000)
    assert 11_990 <= len(long_token) <= 12_010
    async with app_client(jwt_max_token_bytes=16384) as client:
        assert (await client.get(ME, headers=bearer(long_token))).status_code == 200
    async with app_client() as client:
        assert_not_authenticated(await client.get(ME, headers=bearer(long_token)))


# --- algorithm confusion and allowlists -------------------------------------------------------


async def test_hs256_keyed_with_an_rsa_public_key_is_rejected(
    app_client: AppClientFactory, rsa_key: PrivateKey
) -> None:
    rs256 = Signer(rsa_key, "RS256")
    pem = public_pem(rsa_key)
    forged = [
        hmac_token(pem.encode(), rs256.claims()),
        hmac_token(pem.strip().encode(), rs256.claims()),
        hmac_token(pem.encode(), rs256.claims(), alg="HS384"),
    ]
    async with app_client(jwt_public_key=pem) as client:
        assert (await client.get(ME, headers=bearer(rs256.token()))).status_code == 200
        for token in forged:
            assert_not_authenticated(await client.get(ME, headers=bearer(token)))
            assert_not_authenticated(await client.delete(ME, headers=bearer(token)))


async def test_key_type_guards_hmac_even_if_the_allowlist_were_misconfigured(rsa_key: PrivateKey) -> None:
    """Defence in depth: `load_settings` refuses HS256 with a public key, but even a Settings built
    around that check cannot make an RSA public key verify an HMAC."""
    pem = public_pem(rsa_key)
    settings = Settings(
        _env_file=None,
        jwt_public_key=pem,
        jwt_algorithms=["HS256", "RS256"],
        jwt_issuer=ISSUER,
        jwt_audience=[AUDIENCE],
    )
    verifier = TokenVerifier(settings)
    rs256 = Signer(rsa_key, "RS256")
    assert (await verifier.verify(rs256.token("real"))).subject == "real"
    with pytest.raises(NotAuthenticated):
        await verifier.verify(hmac_token(pem.encode(), rs256.claims("forged")))


async def test_algorithms_outside_the_allowlist_are_rejected(app_client: AppClientFactory, rsa_key: PrivateKey) -> None:
    async with app_client(jwt_public_key=public_pem(rsa_key), jwt_algorithms=["RS256"]) as client:
        assert (await client.get(ME, headers=bearer(Signer(rsa_key, "RS256").token()))).status_code == 200
        for alg in ("PS256", "RS512", "RS384"):
            assert_not_authenticated(await client.get(ME, headers=bearer(Signer(rsa_key, alg).token())))
    async with app_client(jwt_public_key=public_pem(rsa_key)) as client:  # default allowlist
        assert_not_authenticated(await client.get(ME, headers=bearer(Signer(rsa_key, "RS512").token())))


async def test_hmac_variants_outside_the_allowlist_are_rejected(app_client: AppClientFactory) -> None:
    secret = "s" * 64
    async with app_client(jwt_public_key=None, jwt_secret=secret) as client:
        assert (await client.get(ME, headers=bearer(Signer(secret, "HS256").token()))).status_code == 200
        for alg in ("HS384", "HS512"):
            assert_not_authenticated(await client.get(ME, headers=bearer(Signer(secret, alg).token())))


# --- JWKS-backed attacks ------------------------------------------------------------------------


@pytest.fixture
def jwks(signing_key: PrivateKey, rsa_key: PrivateKey, ec_key: PrivateKey) -> Iterator[JwksServer]:
    keys = [
        public_jwk(signing_key, kid="ed-1", alg="EdDSA"),
        public_jwk(rsa_key, kid="rsa-1", alg="RS256"),
        public_jwk(ec_key, kid="ec-1", alg="ES256"),
    ]
    with JwksServer(keys) as server:
        yield server


@pytest.fixture
def attacker_jwks(attacker_key: PrivateKey) -> Iterator[JwksServer]:
    with JwksServer([public_jwk(attacker_key, kid="attacker-1", alg="EdDSA")]) as server:
        yield server


def jwks_settings(server: JwksServer, **overrides: Any) -> dict[str, Any]:
    return {
        "jwt_public_key": None,
        "jwt_jwks_url": server.url,
        "jwks_timeout_seconds": 2.0,
        "jwks_refresh_cooldown_seconds": 60,
        **overrides,
    }


async def test_jwks_algorithms_outside_the_allowlist_are_rejected(
    app_client: AppClientFactory,
    jwks: JwksServer,
    signing_key: PrivateKey,
    rsa_key: PrivateKey,
    ec_key: PrivateKey,
) -> None:
    async with app_client(**jwks_settings(jwks, jwt_algorithms=["EdDSA"])) as client:
        ok = Signer(signing_key, "EdDSA", kid="ed-1").token()
        assert (await client.get(ME, headers=bearer(ok))).status_code == 200
        for token in (Signer(rsa_key, "RS256", kid="rsa-1").token(), Signer(ec_key, "ES256", kid="ec-1").token()):
            assert_not_authenticated(await client.get(ME, headers=bearer(token)))
            assert_not_authenticated(await client.delete(ME, headers=bearer(token)))


async def test_unknown_kid_is_rejected(app_client: AppClientFactory, jwks: JwksServer, signing_key: PrivateKey) -> None:
    async with app_client(**jwks_settings(jwks)) as client:
        # The right key, the wrong kid: keys are looked up by kid, never tried one by one.
        token = Signer(signing_key, "EdDSA", kid="no-such-kid").token()
        assert_not_authenticated(await client.get(ME, headers=bearer(token)))
        assert_not_authenticated(await client.delete(ME, headers=bearer(token)))
        claims = segment(Signer(signing_key, "EdDSA").claims())
        for kid in (7, None, ["ed-1"]):
            token = signed_raw(signing_key, segment({"alg": "EdDSA", "kid": kid}), claims)
            assert_not_authenticated(await client.get(ME, headers=bearer(token)))
        control = signed_raw(signing_key, segment({"alg": "EdDSA", "kid": "ed-1"}), claims)
        assert (await client.get(ME, headers=bearer(control))).status_code == 200


async def test_a_flood_of_unknown_kids_costs_one_jwks_fetch(
    app_client: AppClientFactory, jwks: JwksServer, signing_key: PrivateKey
) -> None:
    tokens = [Signer(signing_key, "EdDSA", kid=f"random-{uuid.uuid4().hex}").token() for _ in range(50)]
    async with app_client(**jwks_settings(jwks)) as client:
        # Cold cache: fifty concurrent requests, fifty different unknown kids.
        responses = await asyncio.gather(*(client.get(ME, headers=bearer(t)) for t in tokens))
        for response in responses:
            assert_not_authenticated(response)
        assert jwks.hits == 1
        # Warm cache, still within the cooldown: another flood fetches nothing.
        again = [Signer(signing_key, "EdDSA", kid=f"random-{uuid.uuid4().hex}").token() for _ in range(50)]
        responses = await asyncio.gather(*(client.delete(ME, headers=bearer(t)) for t in again))
        for response in responses:
            assert_not_authenticated(response)
        assert jwks.hits == 1
        known = Signer(signing_key, "EdDSA", kid="ed-1").token()
        assert (await client.get(ME, headers=bearer(known))).status_code == 200


@pytest.mark.parametrize("header", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["attacker-1", "ed-1"])
async def test_key_urls_in_the_header_are_never_fetched(
    app_client: AppClientFactory,
    jwks: JwksServer,
    attacker_jwks: JwksServer,
    attacker_key: PrivateKey,
    header: str,
    kid: str,
) -> None:
    token = Signer(attacker_key, "EdDSA", kid=kid).token(headers={header: attacker_jwks.url})
    async with app_client(**jwks_settings(jwks)) as client:
        assert_not_authenticated(await client.get(ME, headers=bearer(token)))
        assert_not_authenticated(await client.delete(ME, headers=bearer(token)))
    async with app_client() as client:  # static public key
        assert_not_authenticated(await client.get(ME, headers=bearer(token)))
    assert attacker_jwks.hits == 0
    assert all(path == jwks.path for path in jwks.paths)


async def test_embedded_keys_are_ignored_with_a_jwks_source(
    app_client: AppClientFactory, jwks: JwksServer, attacker_key: PrivateKey
) -> None:
    attacker = Signer(attacker_key, "EdDSA", kid="ed-1")
    der = self_signed_certificate(attacker_key, "attacker.test").public_bytes(serialization.Encoding.DER)
    tokens = [
        attacker.token(headers={"jwk": public_jwk(attacker_key, kid="ed-1")}),
        attacker.token(headers={"x5c": [base64.b64encode(der).decode()]}),
    ]
    async with app_client(**jwks_settings(jwks)) as client:
        for token in tokens:
            assert_not_authenticated(await client.get(ME, headers=bearer(token)))
            assert_not_authenticated(await client.delete(ME, headers=bearer(token)))


async def test_rsa_and_ec_keys_are_not_confused_with_hmac_in_jwks(
    app_client: AppClientFactory, jwks: JwksServer, rsa_key: PrivateKey, ec_key: PrivateKey
) -> None:
    async with app_client(**jwks_settings(jwks)) as client:
        for kid, key in (("rsa-1", rsa_key), ("ec-1", ec_key)):
            assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
            claims = Signer(key, "RS256").claims()
            jwk_text = json.dumps(public_jwk(key, kid=kid)).encode()
            for secret in (public_pem(key).encode(), jwk_text):
                forged = hmac_token(secret, claims, kid=kid)
                assert_not_authenticated(await client.get(ME, headers=bearer(forged)))


# --- over a real HTTP server ---------------------------------------------------------------------


@pytest.fixture
def served_app(base_settings: dict[str, Any]) -> Iterator[str]:
    """The default app behind a real uvicorn on 127.0.0.1 (its own thread and event loop)."""
    app = create_app(load_settings(**base_settings))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()  # connections queue on the bound socket until the server accepts them
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def test_huge_authorization_headers_over_real_http_never_500(served_app: str, keys: Keys) -> None:
    with httpx.Client(base_url=served_app, timeout=10) as client:
        assert client.get(ME, headers=bearer(keys.valid())).status_code == 200
        for size in (9000, 65536):
            for method in METHODS:
                response = client.request(method, ME, headers={"Authorization": "Bearer " + "a" * size})
                assert response.status_code in {401, 431}, (size, response.status_code)
                if response.status_code == 401:
                    assert_not_authenticated(response)
        oversized = keys.signed(padding="x" * 60000)  # validly signed, far over the limit
        assert_not_authenticated(client.get(ME, headers=bearer(oversized)))
