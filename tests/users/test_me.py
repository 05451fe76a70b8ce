from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import AppClientFactory, count_users
from tests.keys import ISSUER


async def test_me_provisions_the_user_on_first_request(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    response = await client.get("/api/users/me", headers=auth("auth0|abc123", email="a@example.com", name="Ann"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "issuer", "subject", "email", "name", "created_at"}
    assert body["issuer"] == ISSUER
    assert body["subject"] == "auth0|abc123"
    assert (body["email"], body["name"]) == ("a@example.com", "Ann")
    uuid.UUID(body["id"])
    assert await count_users(db_engine, subject="auth0|abc123") == 1


async def test_me_is_stable_and_refreshes_profile_claims(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    first = (await client.get("/api/users/me", headers=auth("bob", email="old@example.com"))).json()
    second = (await client.get("/api/users/me", headers=auth("bob", email="new@example.com", name="Bob"))).json()
    third = (await client.get("/api/users/me", headers=auth("bob"))).json()  # absent claims keep values
    assert first["id"] == second["id"] == third["id"]
    assert (second["email"], second["name"]) == ("new@example.com", "Bob")
    assert (third["email"], third["name"]) == ("new@example.com", "Bob")


async def test_subjects_are_arbitrary_strings_scoped_by_issuer(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    odd = "user with spaces/and|pipes ✓ 🚀"
    response = await client.get("/api/users/me", headers=auth(odd))
    assert response.status_code == 200
    assert response.json()["subject"] == odd


async def test_twenty_concurrent_first_requests_create_one_user(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    headers = auth("concurrent-newcomer", email="c@example.com")
    responses = await asyncio.gather(*(client.get("/api/users/me", headers=headers) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_users(db_engine, subject="concurrent-newcomer") == 1


async def test_delete_me_removes_the_account_and_a_new_request_starts_fresh(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    headers = auth("leaver")
    other = auth("stayer")
    before = (await client.get("/api/users/me", headers=headers)).json()
    other_before = (await client.get("/api/users/me", headers=other)).json()

    response = await client.delete("/api/users/me", headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert await count_users(db_engine, subject="leaver") == 0
    assert await count_users(db_engine, subject="stayer") == 1

    after = (await client.get("/api/users/me", headers=headers)).json()
    assert after["id"] != before["id"]
    assert (await client.get("/api/users/me", headers=other)).json() == other_before


async def test_responses_carry_request_id_and_safety_headers(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    response = await client.get("/api/users/me", headers={**auth(), "X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    generated = await client.get("/api/users/me", headers={**auth(), "X-Request-ID": "bad id\twith junk"})
    assert generated.headers["x-request-id"] != "bad id\twith junk"
    assert len(generated.headers["x-request-id"]) == 32
    anonymous = await client.get("/api/users/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["x-request-id"]


async def test_account_deleted_through_another_worker_starts_afresh_there_too(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """Two app instances (workers) cache the user id; one deletes the account. The other still
    holds the old id: reads see the empty account, and its first write (which finds no user row)
    lands in a fresh account, exactly as on the worker that deleted it; never a 5xx."""
    headers = auth("two-workers")
    async with app_client() as first, app_client() as second:
        old = (await first.post("/api/todos", json={"title": "t"}, headers=headers)).json()
        old_id = (await second.get("/api/users/me", headers=headers)).json()["id"]
        assert (await second.get("/api/todos", headers=headers)).json()["items"][0]["id"] == old["id"]
        assert (await first.delete("/api/users/me", headers=headers)).status_code == 204
        assert (await second.get("/api/todos", headers=headers)).json()["items"] == []  # empty, as it is
        for kind, body in (("todos", {"title": "t"}), ("lists", {"name": "l"})):
            created = await second.post(f"/api/{kind}", json=body, headers=headers)
            assert created.status_code == 201, created.text
        fresh = (await first.get("/api/users/me", headers=headers)).json()["id"]
        assert fresh != old_id
        assert [item["title"] for item in (await first.get("/api/todos", headers=headers)).json()["items"]] == ["t"]
        assert (await second.get("/api/users/me", headers=headers)).json()["id"] == fresh


async def test_me_shows_the_token_profile_after_another_worker_stored_other_claims(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """README, "Connecting your identity provider": `me` shows the claims of the token presented, on
    every worker. A claim that changes and changes back (two devices, or an edit undone at the
    identity provider) must not leave a worker that cached the first value showing the second one
    until its cache entry expires."""
    old = auth("flip", email="a@example.com", name="Ann")
    new = auth("flip", email="b@example.com", name="Bea")
    async with app_client() as first, app_client() as second:
        assert (await first.get("/api/users/me", headers=old)).json()["email"] == "a@example.com"
        assert (await first.get("/api/users/me", headers=old)).json()["email"] == "a@example.com"  # cached
        assert (await second.get("/api/users/me", headers=new)).json()["email"] == "b@example.com"
        again = (await first.get("/api/users/me", headers=old)).json()
        assert (again["email"], again["name"]) == ("a@example.com", "Ann")
        # and the stored profile follows, as any worker's next uncached request sees
        back = (await second.get("/api/users/me", headers=auth("flip"))).json()
        assert (back["email"], back["name"]) == ("a@example.com", "Ann")
        assert len({again["id"], back["id"]}) == 1


async def test_one_subject_from_two_issuers_is_two_users(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """README, "Connecting your identity provider": users are "keyed by (issuer, subject)". With
    `JWT_ISSUER` unset every issuer's tokens are accepted, so one `sub` from two issuers must be two
    accounts, each seeing only its own todos; on one worker, whose identity cache must tell them apart
    too (the second and later requests of each are answered from it)."""
    issuers = ("https://one.issuer.test", "https://two.issuer.test")
    one, two = (auth("same-subject", iss=issuer) for issuer in issuers)
    async with app_client(jwt_issuer=None) as client:
        first = (await client.get("/api/users/me", headers=one)).json()
        second = (await client.get("/api/users/me", headers=two)).json()
        assert first["id"] != second["id"]
        assert (first["issuer"], first["subject"]) == (issuers[0], "same-subject")
        assert (second["issuer"], second["subject"]) == (issuers[1], "same-subject")
        mine = await client.post("/api/todos", json={"title": "one's"}, headers=one)
        theirs = await client.post("/api/todos", json={"title": "two's"}, headers=two)
        assert mine.status_code == theirs.status_code == 201
        for headers, own, other, user in ((one, mine, theirs, first), (two, theirs, mine, second)):
            assert (await client.get("/api/users/me", headers=headers)).json() == user
            listed = (await client.get("/api/todos", headers=headers)).json()["items"]
            assert [todo["id"] for todo in listed] == [own.json()["id"]]
            assert (await client.get(other.headers["location"], headers=headers)).status_code == 404
    assert await count_users(db_engine, subject="same-subject") == 2


async def test_a_request_id_is_echoed_only_when_it_has_1_to_128_characters(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    """README, "Errors" (header grammar): "`X-Request-ID` is echoed only when it is 1–128 of `A–Z a–z
    0–9 . _ : -`"; otherwise the response carries a generated one (never a truncated copy)."""
    longest = "Az09._:-" * 16
    assert len(longest) == 128
    for headers in (auth(), {}):  # authenticated (200) and anonymous (401) alike
        echoed = await client.get("/api/users/me", headers={**headers, "X-Request-ID": longest})
        assert echoed.headers["x-request-id"] == longest
        for refused in (longest + "A", ""):
            replaced = await client.get("/api/users/me", headers={**headers, "X-Request-ID": refused})
            generated = replaced.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", generated), generated
            assert generated not in {refused, longest}
