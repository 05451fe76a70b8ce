"""Query models validated in one call (`todo_api.http.query_models`) give exactly what FastAPI's own
reading gives, and a query that fails is answered by FastAPI's own handler: authentication first,
FastAPI's 422 (with path errors alongside), nothing of the fast path left in the request."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator
from typing import Any, get_args

import httpx
import pytest
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams

from tests.api import Api
from tests.hostile.strategies import UNICODE_DIGITS
from todo_api.api import api_router
from todo_api.http.query_models import QueryModel

QUERY_MODEL_ROUTES = {
    "/api/todos",
    "/api/lists",
    "/api/trash",
    "/api/sync",
    "/api/reminders",
    "/api/todos/{todo_id}/completions",
}


def _routes() -> Iterator[tuple[APIRoute, QueryModel]]:
    for route in api_router.routes:
        assert isinstance(route, APIRoute)
        plan = QueryModel.of(route.dependant)
        if plan is not None:
            yield route, plan


ROUTES = {(route.path, "GET" in route.methods): (route, plan) for route, plan in _routes()}


def test_every_route_with_a_query_model_is_read_in_one_call() -> None:
    assert {path for path, _ in ROUTES} == QUERY_MODEL_ROUTES
    assert all(is_get for _, is_get in ROUTES)


def _enum_values(annotation: Any) -> Iterator[str]:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        yield from (str(member.value) for member in annotation)
    for argument in get_args(annotation):
        yield from _enum_values(argument)


def _keys(model: type[BaseModel]) -> list[str]:
    """Each field's alias and name, in other cases and with spaces, and keys that name nothing."""
    names = set(model.model_fields) | {field.alias for field in model.model_fields.values() if field.alias}
    return sorted(names | {name.upper() for name in names} | {f"{name} " for name in names} | {"junk", "", "limit[]"})


def _values(model: type[BaseModel]) -> list[str]:
    enums = {value for field in model.model_fields.values() for value in _enum_values(field.annotation)}
    return sorted(
        enums
        | {f"-{value}" for value in enums}
        | {"", "true", "false", "1", "0", "yes", "10", "50", "200", "201", "-1", "1.5", "1e3", "none", "None"}
        | {str(uuid.UUID(int=7)), "work", "home", "a" * 65, "x" * 3000, "%", "\x00", UNICODE_DIGITS[:2]}
        | {"2030-01-31T00:00:00Z", "2030-02-01T00:00:00Z", "2030-03-01T00:00:00Z", "2030-01-31", "2030-01-31T00:00"}
    )


def _fastapi_reads(route: APIRoute, params: QueryParams) -> tuple[BaseModel | None, list[Any]]:
    values, errors = request_params_to_args(route.dependant.query_params, params)
    model = values.get(route.dependant.query_params[0].name)
    return (model if not errors else None), errors


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda key: key[0])
@settings(max_examples=300)
@given(data=st.data())
def test_one_call_accepts_what_fastapi_accepts_and_builds_the_same_model(
    key: tuple[str, bool], data: st.DataObject
) -> None:
    route, plan = ROUTES[key]
    keys = st.sampled_from(_keys(plan.model))
    values = st.sampled_from(_values(plan.model)) | st.text(max_size=8)
    pairs = data.draw(st.lists(st.tuples(keys, values), max_size=6), label="query")
    params = QueryParams(pairs)
    expected, errors = _fastapi_reads(route, params)
    try:
        model: BaseModel | None = plan.model.model_validate(plan.values(params))
    except ValidationError:
        model = None
    if expected is None:
        assert model is None, (pairs, errors)
    else:
        assert model is not None, pairs
        assert model == expected
        assert model.model_dump() == expected.model_dump()
        assert model.model_fields_set == expected.model_fields_set


VALID = {
    "/api/todos": [
        [],
        [("tag", "a"), ("tag", "b"), ("sort", "-due_at"), ("limit", "5")],
        [("limit", "0"), ("limit", "3")],
    ],
    "/api/lists": [[("sort", "position"), ("limit", "1")]],
    "/api/trash": [[("limit", "2")]],
    "/api/sync": [[("limit", "7")]],
    "/api/reminders": [[("from", "2030-01-31T00:00:00Z"), ("to", "2030-02-01T00:00:00Z")]],
    "/api/todos/{todo_id}/completions": [[("limit", "200")]],
}


@pytest.mark.parametrize(("path", "pairs"), [(path, pairs) for path, cases in VALID.items() for pairs in cases])
def test_valid_queries_take_the_one_call_path(path: str, pairs: list[tuple[str, str]]) -> None:
    route, plan = ROUTES[path, True]
    params = QueryParams(pairs)
    expected, errors = _fastapi_reads(route, params)
    assert not errors
    assert plan.model.model_validate(plan.values(params)) == expected


def _url(path: str, todo_id: str) -> str:
    return path.replace("{todo_id}", todo_id)


@pytest.mark.parametrize("path", sorted(QUERY_MODEL_ROUTES))
async def test_a_bad_query_without_a_token_is_401_not_422(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(_url(path, str(uuid.uuid4())), params={"limit": "0", "junk": "1"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", sorted(QUERY_MODEL_ROUTES))
async def test_a_bad_query_is_fastapis_422(api: Api, path: str) -> None:
    todo = await api.create_todo()
    required = VALID[path][-1] if path == "/api/reminders" else []
    params = [*required, ("limit", "3"), ("limit", "0"), ("junk", "1")]
    response = await api.request("GET", _url(path, todo["id"]), params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(error["type"], error["loc"]) for error in detail] == [
        ("greater_than_equal", ["query", "limit"]),  # the last of a repeated value counts
        ("extra_forbidden", ["query", "junk"]),
    ]
    assert "todo_api.query_model" not in str(response.json())


async def test_path_and_query_errors_come_together(api: Api) -> None:
    response = await api.request("GET", "/api/todos/not-a-uuid/completions", params={"limit": "0"})
    assert response.status_code == 422
    assert sorted(tuple(error["loc"]) for error in response.json()["detail"]) == [
        ("path", "todo_id"),
        ("query", "limit"),
    ]


async def test_a_valid_query_reaches_the_handler_as_the_model(
    api: Api, auth: Callable[..., dict[str, str]], client: httpx.AsyncClient
) -> None:
    first = await api.create_todo(tags=["a", "b"])
    await api.create_todo(tags=["a"])
    params = [("tag", "a"), ("tag", "b"), ("limit", "9"), ("limit", "1")]
    response = await api.request("GET", "/api/todos", params=params)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [first["id"]]
    other = await client.get("/api/todos", params={"tag": "a"}, headers=auth(sub="someone-else"))
    assert other.status_code == 200
    assert other.json()["items"] == []
