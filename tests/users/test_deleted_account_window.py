"""README, "Deleting an account": a worker that cached a deleted account's id answers that user as
the empty old account until a `GET /api/users/me` or a create on it finds the account gone; from
then on it serves the new account. Two apps on one database stand for two workers (each has its own
identity cache), so which worker serves what is decided here, not by the kernel."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import AppClientFactory


async def _titles(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/todos", headers=headers)
    assert response.status_code == 200, response.text
    return [todo["title"] for todo in response.json()["items"]]


@pytest.mark.parametrize("correction", ["me", "create"])
async def test_a_worker_holding_a_deleted_accounts_id_moves_on_at_me_or_a_create(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], correction: str
) -> None:
    headers = auth(f"window-{uuid.uuid4()}")
    async with app_client() as first, app_client() as second:
        assert (await first.post("/api/todos", json={"title": "old"}, headers=headers)).status_code == 201
        assert await _titles(second, headers) == ["old"]  # the second worker caches the old id
        old_id = (await second.get("/api/users/me", headers=headers)).json()["id"]

        assert (await first.delete("/api/users/me", headers=headers)).status_code == 204
        new = await first.post("/api/todos", json={"title": "new"}, headers=headers)  # a new account
        assert new.status_code == 201, new.text

        # The window: the second worker still answers as the deleted account.
        assert await _titles(second, headers) == []
        assert (await second.get(f"/api/todos/{new.json()['id']}", headers=headers)).status_code == 404

        if correction == "me":
            me = await second.get("/api/users/me", headers=headers)
            assert me.status_code == 200, me.text
            assert me.json()["id"] not in {old_id, None}
            expected = ["new"]
        else:
            created = await second.post("/api/todos", json={"title": "newer"}, headers=headers)
            assert created.status_code == 201, created.text
            expected = ["new", "newer"]
        assert sorted(await _titles(second, headers)) == expected
        assert (await second.get(f"/api/todos/{new.json()['id']}", headers=headers)).status_code == 200
        assert sorted(await _titles(first, headers)) == expected
