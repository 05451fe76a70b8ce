"""Keys from a JWKS URL: a real HTTP server in a thread, counted requests, switchable failures.

The cache is driven by `time.monotonic()` in `todo_api.auth.keys`; tests that need the TTL or
the refetch cooldown to pass move that clock forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth.jwks_server import JwksServer, refused_url
from tests.conftest import AppClientFactory
from tests.keys import ISSUER, PrivateKey, Signer, b64url, new_key, public_jwk
from todo_api.auth import keys as keys_module
from todo_api.auth.keys import JwksKeySource
from todo_api.auth.verifier import TokenVerifier
from todo_api.config import Settings
from todo_api.errors import NotAuthenticated

pytestmark = pytest.mark.usefixtures("db_engine")

ME = "/api/users/me"
NOT_AUTHENTICATED = b'{"detail":"Not authenticated","code":"unauthenticated"}'
TIMEOUT = 0.5
COOLDOWN = 30
TTL = 600


class Clock:
    """Stands in for the `time` module inside `todo_api.auth.keys`: real time plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(keys_module, "time", fake)
    return fake


@pytest.fixture
def jwks(ed_key: PrivateKey, rsa_key: PrivateKey) -> Iterator[JwksServer]:
    with JwksServer([public_jwk(ed_key, kid="ed-1", alg="EdDSA"), public_jwk(rsa_key, kid="rsa-1", alg="RS256")]) as s:
        yield s


def settings_for(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "jwt_public_key": None,
        "jwt_jwks_url": url,
        "jwks_timeout_seconds": TIMEOUT,
        "jwks_refresh_cooldown_seconds": COOLDOWN,
        "jwks_cache_ttl_seconds": TTL,
        **overrides,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_not_authenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.content == NOT_AUTHENTICATED
    assert response.headers["www-authenticate"] == "Bearer"


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert set(body) == {"detail", "code", "request_id"}
    assert body["detail"] == "Service temporarily unavailable"
    assert isinstance(body["request_id"], str)
    assert body["request_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1


# --- verifying with the published keys ---------------------------------------------------------


async def test_ed25519_and_rs256_keys_verify(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    async with app_client(**settings_for(jwks.url)) as client:
        ed = await client.get(ME, headers=bearer(Signer(ed_key, "EdDSA", kid="ed-1").token("ed-user")))
        rs = await client.get(ME, headers=bearer(Signer(rsa_key, "RS256", kid="rsa-1").token("rs-user")))
        assert (ed.status_code, rs.status_code) == (200, 200)
        assert (ed.json()["subject"], rs.json()["subject"]) == ("ed-user", "rs-user")
        assert ed.json()["issuer"] == ISSUER
        # A kid names one key: the Ed25519 signature does not verify under the RSA kid.
        swapped = Signer(ed_key, "EdDSA", kid="rsa-1").token()
        assert_not_authenticated(await client.get(ME, headers=bearer(swapped)))
    assert jwks.hits == 1  # one fetch served both keys


async def test_rsa_jwk_without_alg_serves_rs256_and_ps256(app_client: AppClientFactory, rsa_key: PrivateKey) -> None:
    with JwksServer([public_jwk(rsa_key, kid="rsa-any")]) as server:
        async with app_client(**settings_for(server.url)) as client:
            for alg in ("PS256", "RS256"):
                response = await client.get(ME, headers=bearer(Signer(rsa_key, alg, kid="rsa-any").token()))
                assert response.status_code == 200, alg


async def test_a_declared_jwk_alg_restricts_the_key(
    app_client: AppClientFactory, jwks: JwksServer, rsa_key: PrivateKey
) -> None:
    async with app_client(**settings_for(jwks.url)) as client:  # rsa-1 declares RS256
        assert_not_authenticated(await client.get(ME, headers=bearer(Signer(rsa_key, "PS256", kid="rsa-1").token())))
        assert (await client.get(ME, headers=bearer(Signer(rsa_key, "RS256", kid="rsa-1").token()))).status_code == 200


async def test_es256_key_verifies(app_client: AppClientFactory, ec_key: PrivateKey) -> None:
    with JwksServer([public_jwk(ec_key, kid="ec-1", alg="ES256")]) as server:
        async with app_client(**settings_for(server.url)) as client:
            response = await client.get(ME, headers=bearer(Signer(ec_key, "ES256", kid="ec-1").token()))
            assert response.status_code == 200
            other = new_key("es256")
            assert_not_authenticated(await client.get(ME, headers=bearer(Signer(other, "ES256", kid="ec-1").token())))


async def test_single_key_set_accepts_a_token_without_kid(app_client: AppClientFactory, ed_key: PrivateKey) -> None:
    with JwksServer([public_jwk(ed_key)]) as server:
        async with app_client(**settings_for(server.url)) as client:
            assert (await client.get(ME, headers=bearer(Signer(ed_key, "EdDSA").token()))).status_code == 200


async def test_token_without_kid_is_rejected_when_the_set_has_several_keys(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey
) -> None:
    async with app_client(**settings_for(jwks.url)) as client:
        assert_not_authenticated(await client.get(ME, headers=bearer(Signer(ed_key, "EdDSA").token())))


# --- rotation and caching ------------------------------------------------------------------------


async def test_key_rotation_is_picked_up_by_a_refetch(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey, clock: Clock
) -> None:
    new = new_key("ed25519")
    async with app_client(**settings_for(jwks.url)) as client:
        old_token = Signer(ed_key, "EdDSA", kid="ed-1").token()
        assert (await client.get(ME, headers=bearer(old_token))).status_code == 200
        assert jwks.hits == 1

        jwks.keys.append(public_jwk(new, kid="ed-2", alg="EdDSA"))
        clock.advance(COOLDOWN + 1)  # past the refetch cooldown, well inside the cache TTL
        new_token = Signer(new, "EdDSA", kid="ed-2").token()
        assert (await client.get(ME, headers=bearer(new_token))).status_code == 200
        assert jwks.hits == 2
        # The old key is still published and still works; known kids need no fetch.
        assert (await client.get(ME, headers=bearer(old_token))).status_code == 200
        assert (await client.delete(ME, headers=bearer(new_token))).status_code == 204
        assert jwks.hits == 2


async def test_a_removed_key_stops_working_after_refresh(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey, rsa_key: PrivateKey, clock: Clock
) -> None:
    async with app_client(**settings_for(jwks.url)) as client:
        rs_token = Signer(rsa_key, "RS256", kid="rsa-1").token()
        assert (await client.get(ME, headers=bearer(rs_token))).status_code == 200
        jwks.keys = [k for k in jwks.keys if k["kid"] != "rsa-1"]
        clock.advance(TTL + 1)
        # Stale: this request is served from the cache while a refresh runs in the background.
        ed_token = Signer(ed_key, "EdDSA", kid="ed-1").token()
        assert (await client.get(ME, headers=bearer(ed_token))).status_code == 200
        assert await asyncio.to_thread(jwks.wait_for_hits, 2)
        # Past the cooldown an unknown kid refetches in-line (after any background refresh).
        clock.advance(COOLDOWN + 1)
        unknown = Signer(ed_key, "EdDSA", kid="ed-unknown").token()
        assert_not_authenticated(await client.get(ME, headers=bearer(unknown)))
        assert jwks.hits == 3
        assert_not_authenticated(await client.get(ME, headers=bearer(rs_token)))
        assert (await client.get(ME, headers=bearer(ed_token))).status_code == 200
        assert jwks.hits == 3


async def test_warm_cache_survives_a_failing_endpoint(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey, clock: Clock
) -> None:
    token = Signer(ed_key, "EdDSA", kid="ed-1").token()
    async with app_client(**settings_for(jwks.url)) as client:
        assert (await client.get(ME, headers=bearer(token))).status_code == 200
        jwks.mode = "error"
        clock.advance(TTL + COOLDOWN)  # stale and past the cooldown: the next requests refetch
        assert (await client.get(ME, headers=bearer(token))).status_code == 200
        assert await asyncio.to_thread(jwks.wait_for_hits, 2)
        # An unknown kid refetches (and fails) in-line: still a 401, not a 503.
        clock.advance(COOLDOWN + 1)
        unknown = Signer(ed_key, "EdDSA", kid="ed-unknown").token()
        assert_not_authenticated(await client.get(ME, headers=bearer(unknown)))
        assert jwks.hits == 3
        assert (await client.get(ME, headers=bearer(token))).status_code == 200

        jwks.close()  # now the port refuses connections
        clock.advance(TTL + COOLDOWN)
        assert (await client.get(ME, headers=bearer(token))).status_code == 200
        assert (await client.delete(ME, headers=bearer(token))).status_code == 204


# --- cold cache, endpoint down: 503, never a hang, never a 500 --------------------------------


async def test_cold_cache_with_server_errors_is_503(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey
) -> None:
    jwks.mode = "error"
    token = Signer(ed_key, "EdDSA", kid="ed-1").token()
    async with app_client(**settings_for(jwks.url)) as client:
        assert_unavailable(await client.get(ME, headers=bearer(token)))
        assert_unavailable(await client.delete(ME, headers=bearer(token)))
        assert jwks.hits == 1  # within the cooldown the second request does not refetch
        # An invalid token still gets 401 first when it can be rejected without a key.
        assert_not_authenticated(await client.get(ME, headers=bearer("garbage")))


async def test_cold_cache_recovers_after_the_cooldown(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey, clock: Clock
) -> None:
    jwks.mode = "error"
    token = Signer(ed_key, "EdDSA", kid="ed-1").token()
    async with app_client(**settings_for(jwks.url)) as client:
        assert_unavailable(await client.get(ME, headers=bearer(token)))
        jwks.mode = "ok"
        clock.advance(COOLDOWN + 1)
        assert (await client.get(ME, headers=bearer(token))).status_code == 200
        assert jwks.hits == 2


async def test_cold_cache_with_a_hanging_endpoint_is_503_after_the_timeout(
    app_client: AppClientFactory, jwks: JwksServer, ed_key: PrivateKey
) -> None:
    jwks.mode = "hang"
    token = Signer(ed_key, "EdDSA", kid="ed-1").token()
    async with app_client(**settings_for(jwks.url)) as client:
        async with asyncio.timeout(TIMEOUT * 20):  # bounded: a hang fails the test instead of stalling it
            assert_unavailable(await client.get(ME, headers=bearer(token)))
    assert jwks.hits == 1


async def test_cold_cache_with_a_refused_connection_is_503(app_client: AppClientFactory, ed_key: PrivateKey) -> None:
    token = Signer(ed_key, "EdDSA", kid="ed-1").token()
    async with app_client(**settings_for(refused_url())) as client:
        async with asyncio.timeout(TIMEOUT * 20):
            assert_unavailable(await client.get(ME, headers=bearer(token)))
            assert_unavailable(await client.delete(ME, headers=bearer(token)))


@pytest.mark.parametrize(
    "document",
    [
        b"<html>not json</html>",
        b'{"keys": "nope"}',
        b'{"keys": []}',
        b"[]",
    ],
)
async def test_cold_cache_with_an_unusable_document_is_503(
    app_client: AppClientFactory, ed_key: PrivateKey, document: bytes
) -> None:
    with JwksServer() as server:
        server.raw_body = document
        token = Signer(ed_key, "EdDSA", kid="ed-1").token()
        async with app_client(**settings_for(server.url)) as client:
            assert_unavailable(await client.get(ME, headers=bearer(token)))
        assert server.hits == 1


# --- keys that must never verify ---------------------------------------------------------------


def hs256(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    def seg(value: Any) -> str:
        return b64url(json.dumps(value).encode())

    signing_input = f"{seg({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{seg(claims)}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


SECRET = b"a-shared-secret-that-is-long-enough-for-hs256"


def symmetric_jwks(ed_key: PrivateKey) -> list[dict[str, Any]]:
    return [
        public_jwk(ed_key, kid="ed-1", alg="EdDSA"),
        {"kty": "oct", "kid": "oct-1", "k": b64url(SECRET)},
        {"kty": "oct", "kid": "oct-hs", "alg": "HS256", "use": "sig", "k": b64url(SECRET)},
    ]


async def test_symmetric_keys_in_the_jwks_are_never_used(app_client: AppClientFactory, ed_key: PrivateKey) -> None:
    claims = Signer(ed_key, "EdDSA").claims()
    with JwksServer(symmetric_jwks(ed_key)) as server:
        async with app_client(**settings_for(server.url)) as client:
            for kid in ("oct-1", "oct-hs"):
                assert_not_authenticated(await client.get(ME, headers=bearer(hs256(SECRET, claims, kid))))
            control = Signer(ed_key, "EdDSA", kid="ed-1").token()
            assert (await client.get(ME, headers=bearer(control))).status_code == 200


async def test_symmetric_keys_are_ignored_even_if_the_allowlist_had_hs256(ed_key: PrivateKey) -> None:
    """Defence in depth below the config check (which refuses HS* with a JWKS URL)."""
    claims = Signer(ed_key, "EdDSA").claims()
    with JwksServer(symmetric_jwks(ed_key)) as server:
        settings = Settings(
            _env_file=None,
            jwt_jwks_url=server.url,
            jwt_algorithms=["HS256", "EdDSA"],
            jwt_issuer=ISSUER,
            jwt_audience=claims["aud"],
        )
        verifier = TokenVerifier(settings)
        assert isinstance(verifier.keys, JwksKeySource)
        async with httpx.AsyncClient() as http:
            verifier.keys.bind(http)
            assert (await verifier.verify(Signer(ed_key, "EdDSA", kid="ed-1").token("ok"))).subject == "ok"
            for kid in ("oct-1", "oct-hs"):
                with pytest.raises(NotAuthenticated):
                    await verifier.verify(hs256(SECRET, claims, kid))


async def test_hmac_alg_on_an_asymmetric_jwk_disables_it(app_client: AppClientFactory, rsa_key: PrivateKey) -> None:
    jwk = {**public_jwk(rsa_key, kid="rsa-hs"), "alg": "HS256"}
    with JwksServer([jwk, public_jwk(rsa_key, kid="rsa-ok", alg="RS256")]) as server:
        async with app_client(**settings_for(server.url)) as client:
            for alg in ("RS256", "PS256"):
                token = Signer(rsa_key, alg, kid="rsa-hs").token()
                assert_not_authenticated(await client.get(ME, headers=bearer(token)))
            token = Signer(rsa_key, "RS256", kid="rsa-ok").token()
            assert (await client.get(ME, headers=bearer(token))).status_code == 200


async def test_encryption_keys_are_ignored(app_client: AppClientFactory, rsa_key: PrivateKey) -> None:
    enc = {**public_jwk(rsa_key, kid="rsa-enc"), "use": "enc"}
    sig = {**public_jwk(rsa_key, kid="rsa-sig"), "use": "sig"}
    with JwksServer([enc, sig]) as server:
        async with app_client(**settings_for(server.url)) as client:
            assert_not_authenticated(
                await client.get(ME, headers=bearer(Signer(rsa_key, "RS256", kid="rsa-enc").token()))
            )
            ok = Signer(rsa_key, "RS256", kid="rsa-sig").token()
            assert (await client.get(ME, headers=bearer(ok))).status_code == 200


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_weak_rsa_keys_in_the_jwks_are_ignored(app_client: AppClientFactory, ed_key: PrivateKey) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - weak on purpose
    with JwksServer([public_jwk(weak, kid="weak"), public_jwk(ed_key, kid="ed-1")]) as server:
        async with app_client(**settings_for(server.url)) as client:
            assert_not_authenticated(await client.get(ME, headers=bearer(Signer(weak, "RS256", kid="weak").token())))
            assert (
                await client.get(ME, headers=bearer(Signer(ed_key, "EdDSA", kid="ed-1").token()))
            ).status_code == 200


async def test_jwks_url_is_fetched_with_get_and_no_redirects(app_client: AppClientFactory, ed_key: PrivateKey) -> None:
    with JwksServer([public_jwk(ed_key, kid="ed-1")]) as target, JwksServer() as redirector:
        redirector.redirect_to = target.url
        token = Signer(ed_key, "EdDSA", kid="ed-1").token()
        async with app_client(**settings_for(redirector.url)) as client:
            assert_unavailable(await client.get(ME, headers=bearer(token)))
        assert redirector.hits == 1
        assert target.hits == 0


async def test_oversized_jwks_is_refused(app_client: AppClientFactory, ed_key: PrivateKey) -> None:
    padding = [
        {"kty": "oct", "kid": f"pad-{i}", "k": base64.urlsafe_b64encode(b"x" * 64).decode()} for i in range(8000)
    ]
    with JwksServer([public_jwk(ed_key, kid="ed-1"), *padding]) as server:
        token = Signer(ed_key, "EdDSA", kid="ed-1").token()
        async with app_client(**settings_for(server.url)) as client:
            assert_unavailable(await client.get(ME, headers=bearer(token)))
