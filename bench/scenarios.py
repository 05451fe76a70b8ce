"""The population and the scenarios: who is seeded, what each scenario requests, as whom, and a
one-request preflight per action.

Crowd scenarios spread their requests over every user (the wrk script picks a user per request),
so the default rate limit (600 requests per user per minute) is far away: 1 000 users at 3 000
requests per second make 180 per user per minute. The single-user scenarios (`list-deep`,
`list-100k`, `list-1k`) measure how a page's cost grows with an account's size; one user at
thousands of requests per second is exactly what a rate limit stops, so they run only in
configurations without one.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from bench.lua import CREATE_BODY, Action, Identity
from bench.seed import Seed
from todo_api.config import Settings

LIST_PATH = "/api/todos?limit=50"
FILTER_PATH = "/api/todos?completed=false&tag=work&sort=due_at&limit=50"
POSITION_PATH = "/api/todos?sort=position&limit=50"  # the todos in no list, in the user's order
DEEP_PAGES = 100
IDS_PER_IDENTITY = 20  # the todo ids `get` and `patch` pick from, per user

DEEP_USERS = ("user-1", "user-2")
SYNC_CHANGES = 3  # todos changed after the token the `sync` scenarios send
BIG_USER, SMALL_USER = "user-100k", "user-1k"
EVERYONE, WRITERS = "everyone", "writers"
# Users who create todos stay far below the default per-user quota (MAX_TODOS_PER_USER).
WRITER_MAX_TODOS = int(Settings.model_fields["max_todos_per_user"].default) // 2

type Population = str | tuple[str, ...]

# name -> (description, action mix, population, list path key, floor implements it)
CATALOGUE: dict[str, tuple[str, tuple[tuple[Action, int], ...], Population, str, bool]] = {
    "me": ("GET /api/users/me (auth + user lookup only)", (("me", 1),), EVERYONE, "list", True),
    "list": ("GET /api/todos?limit=50 (first page)", (("list", 1),), EVERYONE, "list", True),
    "filter": (f"GET {FILTER_PATH}", (("list", 1),), EVERYONE, "filter", True),
    "get": ("GET /api/todos/{id}, random own ids", (("get", 1),), EVERYONE, "list", True),
    "create": ("POST /api/todos", (("create", 1),), WRITERS, "list", True),
    "patch": (
        'PATCH /api/todos/{id} {"completed": true|false}, random own ids',
        (("patch", 1),),
        EVERYONE,
        "list",
        True,
    ),
    "move": (
        'POST /api/todos/{id}/move {"after_id": a sibling}, random own todos in no list',
        (("move", 1),),
        EVERYONE,
        "list",
        True,
    ),
    "position": (f"GET {POSITION_PATH} (first page)", (("list", 1),), EVERYONE, "position", True),
    "mixed": (
        "40% get, 40% list, 10% create, 10% patch",
        (("get", 40), ("list", 40), ("create", 10), ("patch", 10)),
        WRITERS,
        "list",
        True,
    ),
    "list-deep": (
        f"GET /api/todos, page {DEEP_PAGES + 1} of the cursor chain",
        (("list", 1),),
        DEEP_USERS,
        "deep",
        False,
    ),
    "list-100k": ("GET /api/todos?limit=50 for a user with 100 000 todos", (("list", 1),), (BIG_USER,), "list", False),
    "list-1k": ("GET /api/todos?limit=50 for a user with 1 000 todos", (("list", 1),), (SMALL_USER,), "list", False),
    # Every user (user-1 and user-2 with 10 000 todos, user-100k with 100 000 among them), so that the
    # production configuration's rate limit stays far away and the floors run beside it.
    "sync": (
        f"GET /api/sync?sync_token=… after {SYNC_CHANGES} changes (incremental), every user",
        (("list", 1),),
        EVERYONE,
        "sync",
        True,
    ),
    "sync-10k": (
        f"GET /api/sync?sync_token=… after {SYNC_CHANGES} changes, for users with 10 000 todos",
        (("list", 1),),
        DEEP_USERS,
        "sync",
        False,
    ),
}
DEFAULT_SCENARIOS = tuple(CATALOGUE)


def population(users: int, crowd_todos: int, todos: int, big_todos: int, small_todos: int) -> dict[str, int]:
    """User key -> todos to seed: four named users (10 000+ todos among them) and a crowd, `users` in all."""
    named = {DEEP_USERS[0]: todos, DEEP_USERS[1]: todos, BIG_USER: big_todos, SMALL_USER: small_todos}
    crowd = {f"crowd-{n:04d}": crowd_todos for n in range(1, max(0, users - len(named)) + 1)}
    return named | crowd


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    mix: tuple[tuple[Action, int], ...]
    identities: tuple[Identity, ...]
    floor: bool
    crowd: bool  # spread over many users: may run under the rate limit


def is_crowd(name: str) -> bool:
    return CATALOGUE[name][2] in {EVERYONE, WRITERS}


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


def sync_path(client: httpx.Client, token: str, ids: Sequence[str]) -> str:
    """The path of an incremental sync that finds `SYNC_CHANGES` changed todos: a batch of that
    many title changes answers with a token starting at the batch (the batch's own writes included);
    every request of the scenario then reads those changes (and any later ones of other scenarios)."""
    commands = [
        {"type": "todo_update", "uuid": str(uuid.uuid4()), "args": {"id": todo_id, "title": f"synced {n}"}}
        for n, todo_id in enumerate(ids[:SYNC_CHANGES])
    ] or [{"type": "list_add", "uuid": str(uuid.uuid4()), "args": {"name": f"synced {uuid.uuid4()}"}}]
    response = client.post("/api/batch", json={"commands": commands}, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return f"/api/sync?{urlencode({'sync_token': response.json()['sync_token']})}"


def _members(population: Population, seed: Seed) -> list[str]:
    if population == EVERYONE:
        return list(seed.users)
    if population == WRITERS:
        return [key for key, user in seed.users.items() if len(user.todo_ids) <= WRITER_MAX_TODOS]
    return list(population)


def _sample(seed: Seed, key: str, *, loose: bool = False) -> tuple[str, ...]:
    """Some of the user's todo ids (`loose`: only todos in no list, one sibling group)."""
    ids = seed.user(key).loose_ids if loose else seed.user(key).todo_ids
    picked = random.Random(key).sample(ids, min(IDS_PER_IDENTITY, len(ids)))
    return tuple(str(todo_id) for todo_id in picked)


def build(name: str, seed: Seed, tokens: Mapping[str, str], app: httpx.Client) -> Scenario:
    """One scenario; `list-deep` walks the cursor chain on the app (`app` client) first, the `sync`
    scenarios make their changes and take their tokens there."""
    description, mix, who, list_key, floor = CATALOGUE[name]
    identities = []
    moving = any(action == "move" for action, _ in mix)
    for key in _members(who, seed):
        if moving and len(seed.user(key).loose_ids) < 2:
            continue  # a move needs a sibling to follow
        path = {"list": LIST_PATH, "filter": FILTER_PATH, "position": POSITION_PATH}.get(list_key)
        if list_key == "sync":
            path = sync_path(app, tokens[key], _sample(seed, key))
        elif path is None:
            path, depth = walk_cursor(app, tokens[key])
            if depth < DEEP_PAGES:
                description += f" (only {depth} pages for {key})"
        identities.append(Identity(tokens[key], _sample(seed, key, loose=moving), path))
    return Scenario(name, description, mix, tuple(identities), floor, crowd=is_crowd(name))


type Request = tuple[str, str, str | None]  # method, path, JSON body


def request_for(action: Action, identity: Identity, n: int = 0) -> Request:
    """The request an action sends as `identity` (`n` varies the todo id and the created title)."""
    some_id = identity.ids[n % len(identity.ids)] if identity.ids else "none"
    sibling = identity.ids[(n + 1) % len(identity.ids)] if identity.ids else "none"
    return {
        "me": ("GET", "/api/users/me", None),
        "list": ("GET", identity.list_path, None),
        "get": ("GET", f"/api/todos/{some_id}", None),
        "create": ("POST", "/api/todos", CREATE_BODY.replace("%d", str(n))),
        "patch": ("PATCH", f"/api/todos/{some_id}", '{"completed":true}' if n % 2 else '{"completed":false}'),
        "move": ("POST", f"/api/todos/{some_id}/move", f'{{"after_id":"{sibling}"}}' if sibling != some_id else "{}"),
    }[action]


def send(client: httpx.Client, identity: Identity, request: Request) -> httpx.Response:
    method, path, body = request
    headers = {"Authorization": f"Bearer {identity.token}"} | ({"Content-Type": "application/json"} if body else {})
    return client.request(method, path, headers=headers, content=body)


def preflight(client: httpx.Client, scenario: Scenario) -> list[str]:
    """One request per action as the first identity; a line for each response that is not 2xx."""
    identity = scenario.identities[0]
    problems = []
    for action, _ in scenario.mix:
        request = request_for(action, identity, len(identity.ids) // 2)
        method, path = request[0], request[1]
        response = send(client, identity, request)
        if not response.is_success:
            problems.append(f"{action}: {method} {path[:80]} -> {response.status_code} {response.text[:200]}")
    return problems


def actions(scenario: Scenario, count: int) -> list[Action]:
    """`count` actions in the scenario's proportions (mixed, 20: 8 get, 8 list, 2 create, 2 patch)."""
    weighted = [action for action, weight in scenario.mix for _ in range(weight)]
    step = max(1, len(weighted) // count) if len(weighted) > count else 1
    return [weighted[(i * step) % len(weighted)] for i in range(count)]


def users_per_scenario(scenarios: Sequence[Scenario]) -> dict[str, int]:
    return {scenario.name: len(scenario.identities) for scenario in scenarios}
