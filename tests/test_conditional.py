"""ETags and conditional requests: 304, 412, 428, and no lost updates under races."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from tests.api import Api
from tests.conftest import AppClientFactory


async def test_single_resource_responses_carry_a_strong_etag_that_changes(api: Api) -> None:
    created = await api.request("POST", "/api/todos", json={"title": "t"})
    tag = created.headers["etag"]
    assert tag.startswith('"')  # strong: no W/ prefix
    url = created.headers["location"]
    fetched = await api.request("GET", url)
    assert fetched.headers["etag"] == tag
    patched = await api.request("PATCH", url, json={"title": "u"})
    assert patched.headers["etag"] != tag
    replaced = await api.request("PUT", url, json={"title": "v"})
    assert replaced.headers["etag"] not in {tag, patched.headers["etag"]}
    assert (await api.request("GET", url)).headers["etag"] == replaced.headers["etag"]


async def test_if_none_match_gives_304_without_body(api: Api) -> None:
    todo = await api.request("POST", "/api/todos", json={"title": "t"})
    url, tag = todo.headers["location"], todo.headers["etag"]
    cached = await api.request("GET", url, headers={"If-None-Match": tag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == tag
    assert "content-type" not in cached.headers
    assert (await api.request("GET", url, headers={"If-None-Match": f'"x", W/{tag}'})).status_code == 304
    assert (await api.request("GET", url, headers={"If-None-Match": '"stale"'})).status_code == 200
    await api.request("PATCH", url, json={"completed": True})
    assert (await api.request("GET", url, headers={"If-None-Match": tag})).status_code == 200


@pytest.mark.parametrize("resource", ["todo", "list"])
async def test_if_none_match_on_several_lines_is_one_list(api: Api, resource: str) -> None:
    """Several If-None-Match lines form one list (RFC 9110 §5.3): the current tag on any of them
    is a 304."""
    if resource == "todo":
        created = await api.request("POST", "/api/todos", json={"title": "t"})
    else:
        created = await api.request("POST", "/api/lists", json={"name": "l"})
    url, tag = created.headers["location"], created.headers["etag"]
    lines = [*api.headers.items(), ("If-None-Match", '"x"'), ("If-None-Match", f"W/{tag}")]
    assert (await api.client.request("GET", url, headers=lines)).status_code == 304
    stale = [*api.headers.items(), ("If-None-Match", '"x"'), ("If-None-Match", '"y"')]
    assert (await api.client.request("GET", url, headers=stale)).status_code == 200


@pytest.mark.parametrize("resource", ["todo", "list"])
async def test_if_match_on_several_lines_is_one_list(api: Api, resource: str) -> None:
    """README, "Errors" (header grammar): `If-Match` is `*` or a list of entity tags, "several lines
    of one forming one list". The current tag on the second line (or the first) lets the write
    through; lines none of which names the current tag are 412 and change nothing."""
    if resource == "todo":
        created = await api.request("POST", "/api/todos", json={"title": "t"})
        changes = [{"title": "u"}, {"title": "v"}, {"title": "w"}]
    else:
        created = await api.request("POST", "/api/lists", json={"name": "l"})
        changes = [{"name": "m"}, {"name": "n"}, {"name": "o"}]
    url, tag = created.headers["location"], created.headers["etag"]
    second_line = [*api.headers.items(), ("If-Match", '"x"'), ("If-Match", tag)]
    written = await api.client.request("PATCH", url, json=changes[0], headers=second_line)
    assert written.status_code == 200, written.text
    assert written.headers["etag"] != tag
    first_line = [*api.headers.items(), ("If-Match", written.headers["etag"]), ("If-Match", '"y"')]
    again = await api.client.request("PATCH", url, json=changes[1], headers=first_line)
    assert again.status_code == 200, again.text
    stale = [*api.headers.items(), ("If-Match", tag), ("If-Match", written.headers["etag"])]  # neither current
    refused = await api.client.request("PATCH", url, json=changes[2], headers=stale)
    assert (refused.status_code, refused.json()["code"]) == (412, "precondition_failed")
    assert (await api.request("GET", url)).json() == again.json()


def _stale_tags(resource: str, count: int) -> list[str]:
    """Well-formed ETags of the resource's shape that name no state it is in."""
    return [f'"{900 + n}"' if resource == "todo" else f'"{900 + n}.{n}.0"' for n in range(count)]


@pytest.mark.parametrize("resource", ["todo", "list"])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("count", [2, 3, 6])
@pytest.mark.parametrize("current", [True, False])
async def test_if_match_naming_several_tags_writes_or_is_412(
    api: Api, resource: str, method: str, count: int, current: bool
) -> None:
    """An If-Match that lists several well-formed entity tags (one line, comma-separated) lets the
    write through when one of them is current, and is 412 otherwise, whatever their number: every
    write of a todo or a list, each tag a bind parameter of the conditional statement (two or more
    list tags were a 500 once: their parameter names collided with SQLAlchemy's own)."""
    if resource == "todo":
        created = await api.request("POST", "/api/todos", json={"title": "t"})
        body: dict[str, Any] | None = {"title": "u"}
    else:
        created = await api.request("POST", "/api/lists", json={"name": f"l-{method}-{count}-{current}"})
        body = {"name": f"m-{method}-{count}-{current}"}
    url, tag = created.headers["location"], created.headers["etag"]
    tags = _stale_tags(resource, count - 1 if current else count)
    if current:
        tags.insert(count // 2, tag)
    headers = {**api.headers, "If-Match": ", ".join(tags)}
    response = await api.client.request(method, url, json=None if method == "DELETE" else body, headers=headers)
    if current:
        assert response.status_code == (204 if method == "DELETE" else 200), response.text
    else:
        assert (response.status_code, response.json()["code"]) == (412, "precondition_failed")
        assert (await api.request("GET", url)).headers["etag"] == tag


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_stale_if_match_is_412_and_changes_nothing(api: Api, method: str) -> None:
    created = await api.request("POST", "/api/todos", json={"title": "t"})
    url, old_tag = created.headers["location"], created.headers["etag"]
    await api.request("PATCH", url, json={"title": "changed elsewhere"})
    current = await api.request("GET", url)
    before = current.json()
    body = {"title": "mine"} if method != "DELETE" else None
    # An old tag, the current tag marked weak (never matches strongly), and nonsense.
    for stale in (old_tag, f"W/{current.headers['etag']}", '"garbage"', "not-a-tag"):
        response = await api.request(method, url, json=body, headers={"If-Match": stale})
        assert response.status_code == 412, stale
        assert response.json() == {
            "detail": "Precondition failed: the resource has changed (If-Match)",
            "code": "precondition_failed",
        }
    assert (await api.request("GET", url)).json() == before


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_matching_if_match_writes(api: Api, method: str) -> None:
    created = await api.request("POST", "/api/todos", json={"title": "t"})
    url, tag = created.headers["location"], created.headers["etag"]
    body = {"title": "mine"} if method != "DELETE" else None
    response = await api.request(method, url, json=body, headers={"If-Match": f'"nope", {tag}'})
    assert response.status_code == (204 if method == "DELETE" else 200)


async def test_if_match_star_needs_an_existing_resource_and_404_beats_412(api: Api) -> None:
    created = await api.request("POST", "/api/todos", json={"title": "t"})
    url = created.headers["location"]
    assert (await api.request("PATCH", url, json={"title": "x"}, headers={"If-Match": "*"})).status_code == 200
    await api.request("DELETE", url)
    assert (await api.request("PATCH", url, json={"title": "x"}, headers={"If-Match": "*"})).status_code == 404
    assert (await api.request("PATCH", url, json={"title": "x"}, headers={"If-Match": '"1"'})).status_code == 404


async def test_empty_patch_still_checks_if_match(api: Api) -> None:
    created = await api.request("POST", "/api/todos", json={"title": "t"})
    url = created.headers["location"]
    assert (await api.request("PATCH", url, json={}, headers={"If-Match": '"999"'})).status_code == 412
    ok = await api.request("PATCH", url, json={}, headers={"If-Match": created.headers["etag"]})
    assert (ok.status_code, ok.headers["etag"]) == (200, created.headers["etag"])


async def test_list_etag_follows_its_counts(api: Api) -> None:
    created = await api.request("POST", "/api/lists", json={"name": "Work"})
    url, tag = created.headers["location"], created.headers["etag"]
    todo = await api.create_todo(title="t", list_id=created.json()["id"])
    after_insert = await api.request("GET", url, headers={"If-None-Match": tag})
    assert after_insert.status_code == 200  # the representation (todo_count) changed
    await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True})
    stale = after_insert.headers["etag"]
    assert (await api.request("PATCH", url, json={"name": "Job"}, headers={"If-Match": stale})).status_code == 412
    current = (await api.request("GET", url)).headers["etag"]
    renamed = await api.request("PATCH", url, json={"name": "Job"}, headers={"If-Match": current})
    assert renamed.status_code == 200
    assert (await api.request("DELETE", url, headers={"If-Match": current})).status_code == 412
    assert (await api.request("DELETE", url, headers={"If-Match": renamed.headers["etag"]})).status_code == 204


async def test_require_if_match_answers_428(app_client: AppClientFactory, auth: Any) -> None:
    """REQUIRE_IF_MATCH=true: PUT, PATCH and DELETE of a todo or a list need If-Match (README)."""
    async with app_client(require_if_match=True) as client:
        api = Api(client, auth())
        for collection, body in (("/api/todos", {"title": "t"}), ("/api/lists", {"name": "n"})):
            created = await api.request("POST", collection, json=body)
            url = created.headers["location"]
            for method, change in (("PUT", body), ("PATCH", body), ("DELETE", None)):
                response = await api.request(method, url, json=change)
                assert response.status_code == 428, (method, url)
                assert response.json()["code"] == "precondition_required"
                assert "If-Match" in response.json()["detail"]
            assert (await api.request("GET", url)).status_code == 200  # reads need no precondition
            ok = await api.request("PATCH", url, json=body, headers={"If-Match": created.headers["etag"]})
            assert ok.status_code == 200


async def test_require_if_match_leaves_the_trash_and_the_account_alone(app_client: AppClientFactory, auth: Any) -> None:
    """What the README says REQUIRE_IF_MATCH does not cover: a trashed resource has no ETag to send
    (the trash page carries none), emptying the trash and deleting the account name no resource
    version, and a move is ordered by its neighbours, not by a version."""
    async with app_client(require_if_match=True) as client:
        api = Api(client, auth())
        first, second, third = [await api.create_todo(title=f"t{n}") for n in range(3)]
        moved = await api.request("POST", f"/api/todos/{first['id']}/move", json={"after_id": second["id"]})
        assert moved.status_code == 200
        for todo in (first, second):
            tag = (await api.request("GET", f"/api/todos/{todo['id']}")).headers["etag"]
            deleted = await api.request("DELETE", f"/api/todos/{todo['id']}", headers={"If-Match": tag})
            assert deleted.status_code == 204
        assert (await api.request("POST", f"/api/trash/{first['id']}/restore")).status_code == 200
        assert (await api.request("DELETE", f"/api/trash/{second['id']}")).status_code == 204
        assert (await api.request("DELETE", "/api/trash")).status_code == 204
        assert (await api.request("DELETE", "/api/users/me")).status_code == 204
        assert third["id"] not in {item["id"] for item in (await api.request("GET", "/api/todos")).json()["items"]}


async def test_two_concurrent_patches_with_one_etag_one_wins(api: Api) -> None:
    """100 rounds: exactly one 200 and one 412 per round — the check and the write are atomic."""
    created = await api.request("POST", "/api/todos", json={"title": "race"})
    url = created.headers["location"]
    outcomes: Counter[tuple[int, ...]] = Counter()
    for round_ in range(100):
        tag = (await api.request("GET", url)).headers["etag"]
        first, second = await asyncio.gather(
            api.request("PATCH", url, json={"title": f"a{round_}"}, headers={"If-Match": tag}),
            api.request("PATCH", url, json={"title": f"b{round_}"}, headers={"If-Match": tag}),
        )
        outcomes[tuple(sorted((first.status_code, second.status_code)))] += 1
    print(f"ETag race: {dict(outcomes)}")
    assert outcomes == Counter({(200, 412): 100})


async def test_etag_is_exposed_to_browsers(app_client: AppClientFactory, auth: Any) -> None:
    async with app_client(cors_origins=["https://app.example.com"]) as client:
        response = await client.post(
            "/api/todos", json={"title": "t"}, headers={**auth(), "Origin": "https://app.example.com"}
        )
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"etag", "location"} <= exposed
