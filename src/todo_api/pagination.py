"""Keyset (cursor) pagination: sort specs, opaque cursors, and the page envelope.

A cursor is the sort key and id of the last item of a page, sealed (`todo_api.sealed`: AES-GCM with
a key from CURSOR_SECRET) for the user and the exact query that produced it. Clients can neither
read it (a title-sorted cursor carries a title) nor forge or edit it, and a cursor of another user
or another query is refused with 422 instead of silently returning a wrong page. Decoded values are
still checked for type and range before they reach SQL. (Scoping never depends on cursors: every
query is filtered by user.)
"""

from __future__ import annotations

import struct
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, DateTime, Integer, bindparam, type_coerce
from sqlalchemy.orm import Mapped
from sqlmodel import select, tuple_
from sqlmodel.sql.expression import Select

from todo_api.config import CURSOR_SECRET_REQUIRED, ConfigError, Settings
from todo_api.errors import InvalidCursor
from todo_api.models.base import sql_type
from todo_api.sealed import Sealer, Unsealable

CURSOR_LOC = ("query", "cursor")
# Fits the longest cursor: a 500-character title key of 4-byte characters, sealed and in base64.
CURSOR_MAX_LENGTH = 4096
SMALLINT = (-(2**15), 2**15 - 1)

type Expression = ColumnElement[Any] | Mapped[Any]  # a column or SQL expression, e.g. `col(Todo.title)`
type Position = tuple[Any, uuid.UUID]  # (sort key value, id) of the last row of a page


class KeyCodec(ABC):
    """How one sort key's value travels inside a cursor, and the checks it passes on the way back:
    `decode` raises `ValueError` for anything the key's column could not hold."""

    @abstractmethod
    def encode(self, value: Any) -> bytes: ...

    @abstractmethod
    def decode(self, data: bytes) -> Any: ...


@dataclass(frozen=True, slots=True)
class DatetimeKey(KeyCodec):
    """Aware datetimes, back in UTC (None too if `nullable`). Python's range (years 1-9999) lies
    within PostgreSQL's timestamptz range."""

    nullable: bool = False

    def encode(self, value: Any) -> bytes:
        return b"" if value is None else value.isoformat().encode("ascii")

    def decode(self, data: bytes) -> Any:
        if not data and self.nullable:
            return None
        parsed = datetime.fromisoformat(data.decode("ascii"))
        if parsed.tzinfo is None:
            raise ValueError("naive datetime in cursor")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("datetime out of range") from None


@dataclass(frozen=True, slots=True)
class IntegerKey(KeyCodec):
    """Integers within [low, high] (by default smallint's range), as 8 bytes."""

    low: int = SMALLINT[0]
    high: int = SMALLINT[1]

    def encode(self, value: Any) -> bytes:
        return struct.pack(">q", value)

    def decode(self, data: bytes) -> Any:
        (value,) = struct.unpack(">q", data)  # struct.error unless 8 bytes: refused by decode_cursor
        if not self.low <= value <= self.high:
            raise ValueError("integer out of range")
        return value


@dataclass(frozen=True, slots=True)
class TextKey(KeyCodec):
    """Text of a column of at most `max_length` characters, sorted by its lower-case form: full
    Unicode case mapping may lengthen it (U+0130 → "i̇"), never beyond twice. No NUL."""

    max_length: int = 500

    def encode(self, value: Any) -> bytes:
        return str(value).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        text = data.decode("utf-8")  # strict: no surrogates, no invalid bytes
        if "\x00" in text or len(text) > 2 * self.max_length:
            raise ValueError("text out of range")
        return text


DATETIME = DatetimeKey()
NULLABLE_DATETIME = DatetimeKey(nullable=True)
INTEGER = IntegerKey()
TEXT = TextKey()


@dataclass(frozen=True, slots=True)
class SortSpec:
    """One sort order: `key` orders rows (ties broken by `id`); `cursor_value` is what a page's
    last row contributes to the cursor; `bound` turns a decoded value back into SQL."""

    name: str
    descending: bool
    key: Expression
    id_column: Expression
    cursor_value: Expression
    codec: KeyCodec
    bound: Callable[[Any], ColumnElement[Any]]

    def order_by(self) -> tuple[Expression, Expression]:
        if self.descending:
            return self.key.desc(), self.id_column.desc()
        return self.key.asc(), self.id_column.asc()

    def pages(self, columns: Sequence[Any], owned: ColumnElement[bool]) -> dict[bool, Select[*tuple[Any, ...]]]:
        """Page statements in this order, from the start (False) and after a cursor position (True):
        `columns` then `sort_value`, rows where `owned`, every value a bind parameter (`page_params`),
        so each is built once and filters can be added on top."""
        first = select_columns(*columns, self.cursor_value.label("sort_value")).where(owned)
        position = self.after(bindparam("after_value"), bindparam("after_id", type_=sql_type(self.id_column)))
        return {
            after: (first.where(position) if after else first)
            .order_by(*self.order_by())
            .limit(bindparam("limit", type_=Integer))
            for after in (False, True)
        }

    def after(self, value: Any, last_id: uuid.UUID | Expression) -> ColumnElement[bool]:
        """Rows strictly after (value, last_id) in this order: one row comparison, index-friendly.
        Both may be values or bind parameters."""
        row = tuple_(self.key, self.id_column)
        position = tuple_(self.bound(value), last_id)
        return row < position if self.descending else row > position


def select_columns(*columns: Any) -> Select[*tuple[Any, ...]]:
    """`sqlmodel.select` of any number of columns (its type hints cover at most four)."""
    statement: Select[*tuple[Any, ...]] = select(*columns)
    return statement


def page_params(after: Position | None, limit: int) -> dict[str, Any]:
    """Bind parameters of a `SortSpec.pages` statement (the owner's come from the repository)."""
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        params.update(after_value=after[0], after_id=after[1])
    return params


def cursor_sealer(settings: Settings) -> Sealer:
    """The sealer of this deployment's cursors: CURSOR_SECRET seals, CURSOR_SECRET_PREVIOUS still
    opens (during a rotation)."""
    if settings.cursor_secret is None:
        raise ConfigError([CURSOR_SECRET_REQUIRED])
    secrets = [settings.cursor_secret, *([settings.cursor_secret_previous] if settings.cursor_secret_previous else [])]
    return Sealer([secret.get_secret_value() for secret in secrets], purpose="cursor")


def _context(spec: SortSpec, binding: str) -> bytes:
    return orjson.dumps([spec.name, binding])


def encode_cursor(sealer: Sealer, spec: SortSpec, value: Any, last_id: uuid.UUID, binding: str) -> str:
    return sealer.seal(last_id.bytes + spec.codec.encode(value), _context(spec, binding))


def decode_cursor(sealer: Sealer, cursor: str, spec: SortSpec, binding: str) -> Position:
    """The (sort value, id) a cursor points after; `InvalidCursor` (422) for any bad cursor."""
    try:
        payload = sealer.unseal(cursor, _context(spec, binding))
        if len(payload) < 16:
            raise ValueError("short cursor")
        return spec.codec.decode(payload[16:]), uuid.UUID(bytes=payload[:16])
    except (Unsealable, ValueError, struct.error):
        raise InvalidCursor(CURSOR_LOC, "Invalid cursor", cursor) from None


def query_binding(user_id: uuid.UUID, parts: Sequence[Any]) -> str:
    """What a cursor is bound to: the user and the normalised query (filters and sort)."""
    return orjson.dumps([str(user_id), *parts], default=str).decode()


class MaybeEmpty:
    """An answer that may hold none of the account's rows (an empty page). Run as a worker's cached
    user id, such an answer makes `auth.current.CurrentUser` check that the account still exists:
    a deleted account's rows are all gone, so its stale id finds nothing anywhere. (A base class,
    not a `Protocol`: `isinstance` is checked on every request, and on a protocol it costs µs.)"""

    __slots__ = ()

    @property
    def found_nothing(self) -> bool:
        raise NotImplementedError


class Page[T](BaseModel, MaybeEmpty):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")

    @property
    def found_nothing(self) -> bool:
        return not self.items


@dataclass(frozen=True, slots=True)
class DocumentPage(MaybeEmpty):
    """A `Page` whose items are already JSON-ready documents, built straight from rows by the
    resource (`todos.schemas.todo_document`). Serialised by orjson into the same JSON as the
    `Page` of models, without a model per item: validating and serialising 50 `TodoRead`s costs
    ~180 µs, building and dumping the documents ~45 µs (bench/README.md, "Pages as documents")."""

    items: list[dict[str, Any]]
    next_cursor: str | None

    @property
    def found_nothing(self) -> bool:
        return not self.items

    def to_json(self) -> bytes:
        return orjson.dumps({"items": self.items, "next_cursor": self.next_cursor}, option=orjson.OPT_UTC_Z)


TIMESTAMP = DateTime(timezone=True)


def by_time(name: str, column: Expression, id_column: Expression) -> SortSpec:
    """A timestamp column's order, newest first when `name` starts with "-" (ties broken by id)."""
    return SortSpec(
        name=name,
        descending=name.startswith("-"),
        key=column,
        id_column=id_column,
        cursor_value=column,
        codec=DATETIME,
        bound=lambda value: type_coerce(value, TIMESTAMP),
    )
