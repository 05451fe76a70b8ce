"""Pages are built as plain documents from rows (`todo_document`): the JSON must be exactly what the
`TodoRead` model gives for the same row, which is what single-todo responses use."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from todo_api.models import Todo
from todo_api.todos.schemas import TodoRead, todo_document

VARIED: list[dict[str, Any]] = [
    {"title": "plain"},
    {"title": "every field", "description": "Ünïcode ✓ \"quoted\"", "priority": "high", "tags": ["Work", "家"],
     "due_at": "2031-02-03T04:05:06Z", "completed": True},
    {"title": "fractional due", "priority": "low", "due_at": "2031-02-03T04:05:06.789012+02:00", "tags": []},
    {"title": "medium, in a list", "priority": "medium", "list_id": "LIST"},
    {"title": "planner", "due_at": "2031-02-03T04:05:06.5+05:30", "recurrence": "freq=daily",
     "time_zone": "Asia/Kolkata",
     "reminders": [{"at": "2031-02-03T04:05:06.789012+02:00"}, {"before_due": "PT1H30M"},
                   {"at": "2031-02-03T00:00:00Z"}]},
]  # fmt: skip


async def _seed(api: Api) -> None:
    work = await api.create_list("Work")
    for spec in VARIED:
        await api.create_todo(**{k: (work["id"] if v == "LIST" else v) for k, v in spec.items()})


async def test_listed_items_equal_the_single_todo_representation(api: Api) -> None:
    await _seed(api)
    listed = await api.all_pages("/api/todos", limit=2)
    assert len(listed) == len(VARIED)
    for item in listed:
        single = await api.request("GET", f"/api/todos/{item['id']}")
        assert single.status_code == 200
        assert item == single.json()
        assert list(item) == list(TodoRead.model_fields)


async def test_documents_serialise_like_the_model_in_any_session_time_zone(api: Api, db_engine: AsyncEngine) -> None:
    """psycopg returns `timestamptz` in the session's time zone; both paths must write the same
    instant the same way (offsets included) whatever it is."""
    await _seed(api)
    columns = [getattr(Todo, name) for name in TodoRead.model_fields]
    for zone in ("UTC", "Asia/Kolkata", "America/St_Johns"):
        async with db_engine.connect() as connection:
            await connection.execute(text(f"SET TIME ZONE '{zone}'"))
            rows = (await connection.execute(select(*columns))).all()
        assert len(rows) == len(VARIED)
        for row in rows:
            by_model = TodoRead.model_validate(row)
            document = orjson.dumps(todo_document(row), option=orjson.OPT_UTC_Z)
            assert orjson.loads(document) == orjson.loads(by_model.model_dump_json()), zone
