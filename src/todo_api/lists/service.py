"""List rules: per-user unique names, counts, keyset pages, and the ownership check todos use."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.errors import Conflict, NotFound
from todo_api.lists.repository import SORTS, DuplicateNameError, ListRepository, ListRow
from todo_api.lists.schemas import ListCreate, ListQuery, ListRead, ListUpdate
from todo_api.pagination import Page, decode_cursor, encode_cursor, query_binding

DUPLICATE_NAME = "A list with this name already exists"


def _read(row: ListRow) -> ListRead:
    todo_list, todo_count, open_count = row
    return ListRead(
        id=todo_list.id,
        name=todo_list.name,
        created_at=todo_list.created_at,
        updated_at=todo_list.updated_at,
        todo_count=todo_count,
        open_count=open_count,
    )


async def is_owned(session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID) -> bool:
    return await ListRepository(session, user_id).exists(list_id)


async def create_list(session: AsyncSession, user_id: uuid.UUID, data: ListCreate) -> ListRead:
    try:
        created = await ListRepository(session, user_id).create(data.name)
    except DuplicateNameError:
        raise Conflict(DUPLICATE_NAME) from None
    return _read((created, 0, 0))


async def get_list(session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID) -> ListRead:
    row = await ListRepository(session, user_id).get(list_id)
    if row is None:
        raise NotFound
    return _read(row)


async def update_list(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, data: ListCreate | ListUpdate
) -> ListRead:
    """PUT (ListCreate: every field) and PATCH (ListUpdate: the fields sent)."""
    changes = data.changes() if isinstance(data, ListUpdate) else data.model_dump()
    if not changes:
        return await get_list(session, user_id, list_id)
    try:
        row = await ListRepository(session, user_id).update(list_id, changes)
    except DuplicateNameError:
        raise Conflict(DUPLICATE_NAME) from None
    if row is None:
        raise NotFound
    return _read(row)


async def delete_list(session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID) -> None:
    if not await ListRepository(session, user_id).delete(list_id):
        raise NotFound


async def list_lists(session: AsyncSession, user_id: uuid.UUID, query: ListQuery) -> Page[ListRead]:
    spec = SORTS[query.sort]
    binding = query_binding(user_id, [query.sort])
    after = decode_cursor(query.cursor, spec, binding) if query.cursor else None
    rows = await ListRepository(session, user_id).page(spec, after, query.limit + 1)
    items = [_read((row[0], row[1], row[2])) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(spec, last[3], last[0].id, binding)
    return Page[ListRead](items=items, next_cursor=next_cursor)
