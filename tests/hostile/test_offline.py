"""Generated sync tokens and batch bodies: a forged, tampered, truncated or foreign token is always
422 on `sync_token` (never changes, never a 5xx); any batch is 200 with one documented status per
command, or 422 for the whole body, never a 5xx and never a result that breaks the contract."""

from __future__ import annotations

import base64
import string
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api import Api
from tests.hostile.test_requests import HYPOTHESIS
from todo_api.batch.schemas import CommandType

B64 = string.ascii_letters + string.digits + "-_"
COMMAND_STATUSES = {200, 201, 204, 404, 409, 412, 422}
TYPES = [kind.value for kind in CommandType]  # every command type, the new ones too


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@st.composite
def forged_tokens(draw: st.DrawFn, token: str, foreign: str) -> str:
    raw = _unb64(token)
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "random", "splice", "foreign"]))
    if kind == "flip":
        position, bit = draw(st.integers(0, len(raw) - 1)), draw(st.integers(0, 7))
        return _b64(raw[:position] + bytes([raw[position] ^ (1 << bit)]) + raw[position + 1 :])
    if kind == "truncate":
        return token[: draw(st.integers(1, len(token) - 1))]
    if kind == "extend":
        return token + draw(st.text(B64, min_size=1, max_size=40))
    if kind == "random":
        return draw(st.text(B64, min_size=1, max_size=200))
    if kind == "splice":
        return _b64(raw[:13] + _unb64(foreign)[13:])
    return foreign


async def _tokens(api: Api, other_api: Api) -> tuple[str, str]:
    await api.create_todo(title="mine")
    await other_api.create_todo(title="theirs")
    own = (await api.request("GET", "/api/sync")).json()["sync_token"]
    foreign = (await other_api.request("GET", "/api/sync")).json()["sync_token"]
    return own, foreign


@settings(HYPOTHESIS, max_examples=60)
@given(data=st.data())
async def test_forged_sync_tokens_are_422(api: Api, other_api: Api, data: st.DataObject) -> None:
    if not hasattr(api, "tokens"):
        api.tokens = await _tokens(api, other_api)  # type: ignore[attr-defined]
    own, foreign = api.tokens  # type: ignore[attr-defined]
    forged = data.draw(forged_tokens(own, foreign), label="token")
    if forged == own:
        return
    for path, params, loc in (
        ("/api/sync", {"sync_token": forged}, ["query", "sync_token"]),
        ("/api/batch", None, ["body", "sync_token"]),
    ):
        if params is None:
            body = {"commands": [{"type": "todo_add", "uuid": str(uuid.uuid4()), "args": {"title": "x"}}]}
            response = await api.request("POST", path, json={**body, "sync_token": forged})
        else:
            response = await api.request("GET", path, params=params)
        assert response.status_code == 422, response.text
        assert response.json()["code"] in {"invalid_sync_token", "validation_failed"}
        assert response.json()["detail"][0]["loc"] == loc
    assert [todo["title"] for todo in await api.all_pages("/api/todos")] == ["mine"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
ARG_NAMES = st.sampled_from(
    [
        "id",
        "list_id",
        "parent_id",
        "after_id",
        "title",
        "name",
        "completed",
        "priority",
        "tags",
        "if_match",
        "if_version",
    ]
)
REFERENCES = st.sampled_from(["tmp-0", "tmp-1", "tmp-2", "nope"]) | st.uuids().map(str)


@st.composite
def commands(draw: st.DrawFn, index: int) -> dict[str, Any]:
    args = draw(st.dictionaries(ARG_NAMES, JSON | REFERENCES, max_size=4))
    sent: dict[str, Any] = {"type": draw(st.sampled_from(TYPES)), "uuid": str(draw(st.uuids())), "args": args}
    if sent["type"].endswith("_add") and draw(st.booleans()):
        sent["temp_id"] = f"tmp-{index}"
    return sent


@st.composite
def batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(1, 6))
    return [draw(commands(index)) for index in range(size)]


@settings(HYPOTHESIS, max_examples=60)
@given(queue=batches())
async def test_any_batch_gets_one_documented_result_per_command(api: Api, queue: list[dict[str, Any]]) -> None:
    response = await api.request("POST", "/api/batch", json={"commands": queue})
    assert response.status_code in {200, 422}, response.text
    if response.status_code == 422:
        return
    body = response.json()
    assert [result["uuid"] for result in body["results"]] == [command["uuid"] for command in queue]
    for result in body["results"]:
        assert result["status"] in COMMAND_STATUSES, result
        assert ("error" in result) == (result["status"] >= 400)
        assert ("resource" in result) == (result["status"] in {200, 201})
        if "error" in result:
            assert set(result["error"]) == {"detail", "code"}
    assert set(body["temp_id_mapping"]) <= {command.get("temp_id") for command in queue}
