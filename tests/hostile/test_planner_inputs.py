"""Classes of input for the planner's parsers, through the API (issue 15): recurrence rules, time
zones, reminders, reminder windows and move bodies. Never a 5xx; a 422 names the field; what is
accepted reads back as the parser's canonical form, and a refused write changes nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api import Api
from tests.planner.strategies import ZONES, rule_texts
from todo_api.planner.recurrence import parse_time_zone
from todo_api.planner.rules import parse_rule

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DUE = "2030-01-31T09:00:00Z"
TEXT = st.text(max_size=80)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,  # what JSON can carry
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["at", "before_due", "x"]), inner),
    max_leaves=6,
)


def _parses(parse: Any, value: Any) -> bool:
    try:
        parse(value)
    except (ValueError, TypeError):
        return False
    return True


async def _count(api: Api) -> int:
    return len(await api.all_pages("/api/todos", limit=200))


@HYPOTHESIS
@given(rule=st.one_of(rule_texts(), TEXT))
async def test_recurrence_rules(api: Api, rule: str) -> None:
    before = await _count(api)
    response = await api.request("POST", "/api/todos", json={"title": "r", "recurrence": rule, "due_at": DUE})
    assert response.status_code in {201, 422}, response.text
    if response.status_code == 201:
        assert response.json()["recurrence"] == parse_rule(rule).text
    else:
        assert response.json()["detail"][0]["loc"][:2] == ["body", "recurrence"]
        assert await _count(api) == before


@HYPOTHESIS
@given(zone=st.one_of(st.sampled_from(ZONES), TEXT, st.sampled_from(["utc", "Europe/", "../etc/passwd", "EST5EDT"])))
async def test_time_zones(api: Api, zone: str) -> None:
    body = {"title": "z", "recurrence": "FREQ=DAILY", "due_at": DUE, "time_zone": zone}
    response = await api.request("POST", "/api/todos", json=body)
    assert response.status_code == (201 if _parses(parse_time_zone, zone) else 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"][:2] == ["body", "time_zone"]


REMINDER = st.one_of(
    st.fixed_dictionaries({"at": st.one_of(st.just(DUE), TEXT, st.integers())}),
    st.fixed_dictionaries(
        {"before_due": st.one_of(st.sampled_from(["PT15M", "P1W", "P366D", "P367D", "PT0S", "P1M", "-PT1M"]), TEXT)}
    ),
    JSON,
)


@HYPOTHESIS
@given(reminders=st.one_of(st.lists(REMINDER, max_size=7), JSON), due=st.sampled_from([DUE, None]))
async def test_reminders(api: Api, reminders: Any, due: str | None) -> None:
    response = await api.request("POST", "/api/todos", json={"title": "m", "reminders": reminders, "due_at": due})
    assert response.status_code in {201, 422}, response.text
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"][:2] == ["body", "reminders"]
    else:
        assert len(response.json()["reminders"]) == len(reminders) <= 5


@HYPOTHESIS
@given(start=st.one_of(st.just(DUE), TEXT), end=st.one_of(st.just("2030-02-01T09:00:00Z"), TEXT))
async def test_reminder_windows(api: Api, start: str, end: str) -> None:
    response = await api.request("GET", "/api/reminders", params={"from": start, "to": end})
    assert response.status_code in {200, 422}, response.text


@HYPOTHESIS
@given(body=st.one_of(JSON, st.dictionaries(st.sampled_from(["after_id", "parent_id", "list_id"]), JSON)))
async def test_move_bodies(api: Api, body: Any) -> None:
    todo = await api.create_todo(title="mover")
    response = await api.request("POST", f"/api/todos/{todo['id']}/move", json=body)
    assert response.status_code in {200, 422}, response.text
