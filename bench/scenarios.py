"""The scenarios: what each one requests, as whom, and a one-request preflight per action."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from bench.lua import CREATE_BODY, Action, Identity
from bench.seed import Seed

LIST_PATH = "/api/todos?limit=50"
FILTER_PATH = "/api/todos?completed=false&tag=work&sort=due_at&limit=50"
DEEP_PAGES = 100

# The two regular users share the load (wrk thread i acts as user i); the big and small users
# only serve the list-100k / list-1k pair.
MAIN_USERS = ("user-1", "user-2")
BIG_USER, SMALL_USER = "user-100k", "user-1k"

# name -> (description, action mix, users, list path key, floor implements it)
CATALOGUE: dict[str, tuple[str, tuple[tuple[Action, int], ...], tuple[str, ...], str, bool]] = {
    "me": ("GET /api/users/me (auth + user lookup only)", (("me", 1),), MAIN_USERS, "list", True),
    "list": ("GET /api/todos?limit=50 (first page)", (("list", 1),), MAIN_USERS, "list", True),
    "list-deep": (
        f"GET /api/todos, page {DEEP_PAGES + 1} of the cursor chain",
        (("list", 1),),
        MAIN_USERS,
        "deep",
        False,
    ),
    "filter": (
        "GET /api/todos?completed=false&tag=work&sort=due_at&limit=50",
        (("list", 1),),
        MAIN_USERS,
        "filter",
        True,
    ),
    "get": ("GET /api/todos/{id}, random own ids", (("get", 1),), MAIN_USERS, "list", True),
    "create": ("POST /api/todos", (("create", 1),), MAIN_USERS, "list", True),
    "patch": (
        'PATCH /api/todos/{id} {"completed": true|false}, random own ids',
        (("patch", 1),),
        MAIN_USERS,
        "list",
        True,
    ),
    "mixed": (
        "40% get, 40% list, 10% create, 10% patch",
        (("get", 40), ("list", 40), ("create", 10), ("patch", 10)),
        MAIN_USERS,
        "list",
        True,
    ),
    "list-100k": ("GET /api/todos?limit=50 for a user with 100 000 todos", (("list", 1),), (BIG_USER,), "list", False),
    "list-1k": ("GET /api/todos?limit=50 for a user with 1 000 todos", (("list", 1),), (SMALL_USER,), "list", False),
}
DEFAULT_SCENARIOS = tuple(CATALOGUE)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    mix: tuple[tuple[Action, int], ...]
    identities: tuple[Identity, ...]
    floor: bool


def page_path(cursor: str) -> str:
    return f"/api/todos?{urlencode({'limit': 50, 'cursor': cursor})}"


def walk_cursor(client: httpx.Client, token: str, pages: int = DEEP_PAGES) -> tuple[str, int]:
    """Follow `next_cursor` from the first page; the path of page `pages + 1` and the depth reached."""
    path = LIST_PATH
    for depth in range(pages):
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        cursor = response.json().get("next_cursor")
        if not cursor:
            return path, depth
        path = page_path(cursor)
    return path, pages


def build(names: Sequence[str], seed: Seed, tokens: dict[str, str], app: httpx.Client) -> list[Scenario]:
    """Scenarios in `names` order; `list-deep` walks the cursor chain on the app (`app` client) first."""
    deep: dict[str, str] = {}
    scenarios = []
    for name in names:
        description, mix, users, list_key, floor = CATALOGUE[name]
        identities = []
        for key in users:
            if list_key == "deep" and key not in deep:
                deep[key], depth = walk_cursor(app, tokens[key])
                if depth < DEEP_PAGES:
                    description += f" (only {depth} pages for {key})"
            path = {"list": LIST_PATH, "filter": FILTER_PATH, "deep": deep.get(key, "")}[list_key]
            ids = tuple(str(todo_id) for todo_id in seed.user(key).todo_ids)
            identities.append(Identity(tokens[key], ids, path))
        scenarios.append(Scenario(name, description, mix, tuple(identities), floor))
    return scenarios


def preflight(client: httpx.Client, scenario: Scenario) -> list[str]:
    """One request per action as the first identity; a line for each response that is not 2xx."""
    identity = scenario.identities[0]
    auth = {"Authorization": f"Bearer {identity.token}"}
    problems = []
    for action, _ in scenario.mix:
        some_id = identity.ids[len(identity.ids) // 2] if identity.ids else "none"
        request = {
            "me": ("GET", "/api/users/me", None),
            "list": ("GET", identity.list_path, None),
            "get": ("GET", f"/api/todos/{some_id}", None),
            "create": ("POST", "/api/todos", CREATE_BODY.replace("%d", "0")),
            "patch": ("PATCH", f"/api/todos/{some_id}", '{"completed":true}'),
        }[action]
        method, path, body = request
        headers = auth | ({"Content-Type": "application/json"} if body else {})
        response = client.request(method, path, headers=headers, content=body)
        if not response.is_success:
            problems.append(f"{action}: {method} {path[:80]} -> {response.status_code} {response.text[:200]}")
    return problems
