"""A tiny typed client for the tests: one user's view of the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Api:
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def create_todo(self, **body: Any) -> dict[str, Any]:
        body.setdefault("title", "a todo")
        response = await self.request("POST", "/api/todos", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def create_list(self, name: str) -> dict[str, Any]:
        response = await self.request("POST", "/api/lists", json={"name": name})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def all_pages(self, url: str, **params: Any) -> list[dict[str, Any]]:
        """Follow `next_cursor` to the end; returns every item in order."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await self.request("GET", url, params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
