"""Manual order (issue 15): `position`, `POST /api/todos/{id}/move`, `POST /api/lists/{id}/move` and
`sort=position`: new items last, moves that write one row, 10 000 moves into one gap with bounded
keys (and rare rebalances), and concurrent moves that never duplicate or lose a todo."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, col

from tests.api import Api
from tests.conftest import AppClientFactory
from tests.faults.servers import wait_for_lock_waiters
from todo_api.config import load_settings
from todo_api.models import Todo, User
from todo_api.planner import ordering
from todo_api.storage.database import create_engine, database
from todo_api.todos import positions
from todo_api.todos.positions import Group
from todo_api.todos.repository import TodoRepository


async def _order(api: Api, **group: Any) -> list[str]:
    return [item["id"] for item in await api.all_pages("/api/todos", sort="position", limit=2, **group)]


async def _versions(engine: AsyncEngine) -> dict[uuid.UUID, int]:
    async with engine.connect() as connection:
        return dict((await connection.execute(select(col(Todo.id), col(Todo.version)))).all())


async def test_new_todos_go_last_and_pages_follow_the_order(api: Api) -> None:
    created = [(await api.create_todo(title=f"t{n}"))["id"] for n in range(5)]
    assert await _order(api) == created
    positions_seen = [(await api.request("GET", f"/api/todos/{i}")).json()["position"] for i in created]
    assert positions_seen == sorted(positions_seen)  # byte order is the order
    assert all(ordering.is_key(key) for key in positions_seen)


async def test_a_move_puts_the_todo_after_its_new_neighbour_and_writes_only_it(
    api: Api, db_engine: AsyncEngine
) -> None:
    ids = [(await api.create_todo(title=f"t{n}"))["id"] for n in range(4)]
    before = await _versions(db_engine)
    response = await api.request("POST", f"/api/todos/{ids[3]}/move", json={"after_id": ids[0]})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == ids[3]
    assert response.headers["etag"] == f'"{before[uuid.UUID(ids[3])] + 1}"'
    assert await _order(api) == [ids[0], ids[3], ids[1], ids[2]]
    after = await _versions(db_engine)
    assert {key for key in after if after[key] != before[key]} == {uuid.UUID(ids[3])}  # O(1) writes
    # First (null or left out), and last (after the last one).
    await api.request("POST", f"/api/todos/{ids[2]}/move", json={"after_id": None})
    await api.request("POST", f"/api/todos/{ids[1]}/move", json={})
    await api.request("POST", f"/api/todos/{ids[0]}/move", json={"after_id": ids[3]})
    assert await _order(api) == [ids[1], ids[2], ids[3], ids[0]]


async def test_a_move_into_another_group(api: Api) -> None:
    work = await api.create_list("Work")
    loose = [(await api.create_todo(title=f"l{n}"))["id"] for n in range(2)]
    listed = [(await api.create_todo(title=f"w{n}", list_id=work["id"]))["id"] for n in range(2)]
    response = await api.request(
        "POST", f"/api/todos/{loose[0]}/move", json={"after_id": listed[0], "list_id": work["id"]}
    )
    assert response.status_code == 200
    assert response.json()["list_id"] == work["id"]
    assert await _order(api, list_id=work["id"]) == [listed[0], loose[0], listed[1]]
    assert await _order(api) == [loose[1]]
    # Under a parent (its list is taken), after one of the parent's children.
    child = await api.create_todo(title="child", parent_id=listed[1])
    body = {"after_id": child["id"], "parent_id": listed[1]}
    moved = await api.request("POST", f"/api/todos/{loose[1]}/move", json=body)
    assert (moved.json()["parent_id"], moved.json()["list_id"]) == (listed[1], work["id"])
    assert await _order(api, parent_id=listed[1]) == [child["id"], loose[1]]


@pytest.mark.parametrize("after", ["self", "missing", "other group"])
async def test_after_id_must_be_a_sibling_in_the_target_group(api: Api, after: str) -> None:
    ids = [(await api.create_todo(title=f"t{n}"))["id"] for n in range(2)]
    work = await api.create_list("Work")
    elsewhere = await api.create_todo(title="elsewhere", list_id=work["id"])
    after_id = {"self": ids[0], "missing": str(uuid.uuid4()), "other group": elsewhere["id"]}[after]
    response = await api.request("POST", f"/api/todos/{ids[0]}/move", json={"after_id": after_id})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body", "after_id"],
            "msg": "No such todo among the target siblings",
            "input": after_id,
        }
    ]
    assert await _order(api) == ids


@pytest.mark.parametrize(
    "body",
    [
        {"after_id": "not-a-uuid"},
        {"after_id": 1},
        {"parent_id": ["x"]},
        {"list_id": True},
        {"position": "a0"},
        [],
        "a0",
    ],
)
async def test_malformed_move_bodies_are_422(api: Api, body: Any) -> None:
    todo = await api.create_todo()
    response = await api.request("POST", f"/api/todos/{todo['id']}/move", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


BATCH = 250


async def test_ten_thousand_moves_into_one_gap_keep_keys_short(
    client: httpx.AsyncClient, api: Api, base_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two todos take turns moving right after the first one, 10 000 times, each into the gap the
    previous move left: keys would grow ~1 character per 6 moves; the group is renumbered instead,
    rarely. Runs the positions module directly, 250 moves per unit of work (the route is exercised
    by the next test and the concurrency test)."""
    ids = [uuid.UUID((await api.create_todo(title=f"t{n}"))["id"]) for n in range(100)]
    user_id = uuid.UUID((await api.request("GET", "/api/users/me")).json()["id"])
    rebalances: list[int] = []
    counted = ordering.rebalanced

    def counting(n: int) -> list[str]:
        rebalances.append(n)
        return counted(n)

    monkeypatch.setattr(positions, "rebalanced", counting)
    anchor, movers = ids[0], ids[-2:]
    group = Group(None, None)

    def moves(session: Session, first: int) -> int:
        repository = TodoRepository(session, user_id)
        longest = 0
        for n in range(first, first + BATCH):
            mover = movers[n % 2]
            key = positions.key_after(session, user_id, group, mover, anchor, same_group=True)
            longest = max(longest, len(key))
            repository.update(mover, {"position": key})
        return longest

    settings = load_settings(**base_settings)
    engine = create_engine(settings)
    try:
        db = database(settings, engine)  # units of work of BATCH moves (each within the transaction deadline)
        longest = max([await db.run(moves, first) for first in range(0, 10_000, BATCH)])
    finally:
        await engine.dispose()
    assert longest <= ordering.MAX_KEY_LENGTH
    assert 1 <= len(rebalances) <= 100  # rare: about once per 300-400 moves into one gap
    assert all(n == len(ids) for n in rebalances)
    expected = [anchor, movers[1], movers[0], *ids[1:-2]]  # the last move put movers[1] right after it
    assert [uuid.UUID(i) for i in await _order(api)] == expected


async def test_moves_through_the_api_rebalance_when_a_gap_is_used_up(api: Api) -> None:
    created = [await api.create_todo(title=f"t{n}") for n in range(4)]
    ids = [todo["id"] for todo in created]
    for n in range(420):
        response = await api.request("POST", f"/api/todos/{ids[2 + n % 2]}/move", json={"after_id": ids[0]})
        assert response.status_code == 200, response.text
        assert len(response.json()["position"]) <= ordering.MAX_KEY_LENGTH
    assert await _order(api) == [ids[0], ids[3], ids[2], ids[1]]
    # ~370 moves fill the gap: the group was renumbered (the todo that never moved has a new key).
    bystander = (await api.request("GET", f"/api/todos/{ids[1]}")).json()
    assert bystander["position"] != created[1]["position"]


async def test_concurrent_moves_by_two_clients_lose_nothing_and_never_share_a_position(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    headers = auth("movers")
    async with app_client() as first, app_client() as second:
        apis = [Api(first, headers), Api(second, headers)]
        ids = [(await apis[0].create_todo(title=f"t{n}"))["id"] for n in range(12)]

        async def shuffle(api: Api, offset: int) -> None:
            for n in range(60):
                mover, after = ids[(n * 5 + offset) % 12], ids[(n * 7 + 3 * offset) % 12]
                body = {"after_id": None if mover == after else after}
                response = await api.request("POST", f"/api/todos/{mover}/move", json=body)
                assert response.status_code == 200, response.text

        await asyncio.gather(shuffle(apis[0], 0), shuffle(apis[1], 1), shuffle(apis[0], 2), shuffle(apis[1], 3))
        order = await _order(apis[1])
    assert sorted(order) == sorted(ids)  # no todo lost, none twice
    async with db_engine.connect() as connection:
        keys = (await connection.execute(select(col(Todo.position)))).scalars().all()
    assert len(keys) == len(set(keys)) == 12


async def test_lists_have_an_order_too(api: Api, db_engine: AsyncEngine) -> None:
    names = ["A", "B", "C"]
    lists = [await api.create_list(name) for name in names]
    ordered = await api.all_pages("/api/lists", sort="position", limit=1)
    assert [item["name"] for item in ordered] == names
    moved = await api.request("POST", f"/api/lists/{lists[2]['id']}/move", json={"after_id": None})
    assert moved.status_code == 200
    assert moved.json()["position"] < lists[0]["position"]
    assert moved.headers["etag"].startswith('"2.')
    await api.request("POST", f"/api/lists/{lists[0]['id']}/move", json={"after_id": lists[1]["id"]})
    ordered = await api.all_pages("/api/lists", sort="position", limit=1)
    assert [item["name"] for item in ordered] == ["C", "B", "A"]
    for after_id in (lists[0]["id"], str(uuid.uuid4())):
        response = await api.request("POST", f"/api/lists/{lists[0]['id']}/move", json={"after_id": after_id})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "after_id"]
    missing = await api.request("POST", f"/api/lists/{uuid.uuid4()}/move", json={})
    assert missing.status_code == 404


async def test_a_list_move_takes_no_if_match_even_when_it_is_required(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """README, "Retries and concurrency": with `REQUIRE_IF_MATCH=true` PUT, PATCH and DELETE of a
    list need If-Match (428 without), "nor do moves (ordered by their neighbours)" take one; the
    configuration table: "(the trash, moves and `DELETE /api/users/me` take none)". A list move
    without If-Match is 200 and moves the list, through its route and as a batch `list_move` (README,
    "Batch": "moves take neither, like their routes"), while a PATCH of the same list is 428."""
    async with app_client(require_if_match=True) as client:
        api = Api(client, auth())
        lists = [await api.create_list(name) for name in ("A", "B", "C")]
        refused = await api.request("PATCH", f"/api/lists/{lists[2]['id']}", json={"name": "Z"})
        assert (refused.status_code, refused.json()["code"]) == (428, "precondition_required")
        moved = await api.request("POST", f"/api/lists/{lists[2]['id']}/move", json={"after_id": None})
        assert moved.status_code == 200, moved.text
        assert moved.headers["etag"].startswith('"2.')
        ordered = await api.all_pages("/api/lists", sort="position")
        assert [item["name"] for item in ordered] == ["C", "A", "B"]
        command = {"type": "list_move", "uuid": str(uuid.uuid4()), "args": {"id": lists[0]["id"], "after_id": None}}
        batch = await api.request("POST", "/api/batch", json={"commands": [command]})
        assert batch.status_code == 200, batch.text
        assert [result["status"] for result in batch.json()["results"]] == [200]
        ordered = await api.all_pages("/api/lists", sort="position")
        assert [item["name"] for item in ordered] == ["A", "C", "B"]


MOVES = st.lists(st.tuples(st.integers(0, 4), st.none() | st.integers(0, 4)), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(moves=MOVES)
async def test_any_sequence_of_moves_gives_the_order_a_list_would(
    api: Api, moves: list[tuple[int, int | None]]
) -> None:
    """A model: the same moves on a Python list (remove the todo, insert it after `after`)."""
    work = await api.create_list(f"w{uuid.uuid4().hex[:8]}")
    ids = [(await api.create_todo(title=f"t{n}", list_id=work["id"]))["id"] for n in range(5)]
    model = list(ids)
    for mover, after in moves:
        if after == mover:
            after = None
        body = {"after_id": None if after is None else ids[after]}
        response = await api.request("POST", f"/api/todos/{ids[mover]}/move", json=body)
        assert response.status_code == 200, response.text
        model.remove(ids[mover])
        model.insert(0 if after is None else model.index(ids[after]) + 1, ids[mover])
    assert await _order(api, list_id=work["id"]) == model


async def test_a_create_that_waited_for_its_users_turn_still_goes_last(api: Api, db_engine: AsyncEngine) -> None:
    """A create takes the user's write turn and reads the last position in one statement, whose
    snapshot may predate the turn: a create that held the turn and committed meanwhile is caught by
    the unique position and the unit of work runs again (`positions.last_key_in_turn`)."""
    first = await api.create_todo(title="first")
    user_id = (await api.request("GET", "/api/users/me")).json()["id"]
    async with db_engine.connect() as other:  # another create of this user, holding the turn
        await other.execute(select(col(User.id)).where(col(User.id) == user_id).with_for_update())
        waiting = asyncio.create_task(api.request("POST", "/api/todos", json={"title": "waited"}))
        await wait_for_lock_waiters(db_engine)
        last = (await other.execute(select(col(Todo.position)).where(col(Todo.id) == first["id"]))).scalar_one()
        meanwhile = uuid.uuid4()
        row = {"id": meanwhile, "user_id": user_id, "title": "meanwhile", "position": ordering.key_between(last, None)}
        await other.execute(insert(Todo).values(**row))
        await other.commit()
        response = await waiting
    assert response.status_code == 201, response.text
    assert await _order(api) == [first["id"], str(meanwhile), response.json()["id"]]


async def test_editing_and_completing_a_todo_do_not_wait_for_the_users_turn(api: Api, db_engine: AsyncEngine) -> None:
    """README ("A user's writes that lock several todos or lists ..."): editing and completing a todo
    do not wait for the user's write turn. With another transaction holding it (the user row's
    lock), both answer at once; a create, which takes the turn, is still waiting."""
    todo = await api.create_todo(title="mine")
    user_id = (await api.request("GET", "/api/users/me")).json()["id"]
    async with db_engine.connect() as other:  # a move or a trashing of this user, holding the turn
        await other.execute(select(col(User.id)).where(col(User.id) == user_id).with_for_update())
        waiting = asyncio.create_task(api.request("POST", "/api/todos", json={"title": "waits"}))
        await wait_for_lock_waiters(db_engine)
        for body in ({"title": "edited"}, {"completed": True}, {"completed": False, "priority": "high"}):
            # a guard, not a timing assertion: a PATCH that waited for the turn would hang until the
            # turn is released, after this block
            response = await asyncio.wait_for(api.request("PATCH", f"/api/todos/{todo['id']}", json=body), 30)
            assert response.status_code == 200, response.text
        assert not waiting.done()
        await other.rollback()
    assert (await waiting).status_code == 201
    final = (await api.request("GET", f"/api/todos/{todo['id']}")).json()
    assert (final["title"], final["completed"], final["priority"]) == ("edited", False, "high")


async def test_concurrent_creates_of_one_user_lose_nothing_and_never_share_a_position(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    headers = auth("creators")
    async with app_client() as first, app_client() as second:
        apis = [Api(first, headers), Api(second, headers)]
        await apis[0].create_todo(title="provisioned")

        async def create(api: Api, prefix: str) -> list[str]:
            return [(await api.create_todo(title=f"{prefix}{n}"))["id"] for n in range(15)]

        created = await asyncio.gather(*(create(apis[n % 2], f"c{n}-") for n in range(4)))
        order = await _order(apis[1])
    assert sorted(order[1:]) == sorted(id_ for ids in created for id_ in ids)
    for ids in created:  # each client's creates in the order it sent them
        assert [id_ for id_ in order if id_ in ids] == ids
    async with db_engine.connect() as connection:
        keys = (await connection.execute(select(col(Todo.position)))).scalars().all()
    assert len(keys) == len(set(keys)) == 61
