"""Field types shared by request schemas: text PostgreSQL can store, and UTC datetimes.

Strings are checked by patterns (so the OpenAPI document states the rule exactly): no NUL
characters anywhere, and "non-blank" means at least one character outside ASCII whitespace,
which is also exactly what trimming removes. Lone surrogates never pass pydantic's str check.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

TRIMMED = " \t\n\v\f\r"
NO_NUL = r"^[^\x00]*$"
NON_BLANK = r"^[^\x00]*[^\x00\t\n\v\f\r ][^\x00]*$"


def trim(value: str) -> str:
    return value.strip(TRIMMED)


def non_blank(max_length: int) -> StringConstraints:
    """Non-blank, no NUL, at most `max_length` characters as sent (use with `Trim`)."""
    return StringConstraints(min_length=1, max_length=max_length, pattern=NON_BLANK)


Trim = AfterValidator(trim)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits: `\d` also matches "٢"


def _rfc3339_only(value: Any) -> Any:
    """Datetimes come as RFC 3339 text; pydantic would also read numbers as Unix timestamps."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an RFC 3339 date-time with offset, e.g. 2030-01-31T09:00:00Z")
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 has no UTC representation
        raise ValueError("datetime is out of range") from None


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_to_utc)]
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]


class Patch(BaseModel):
    """Base of PATCH bodies: unknown fields refused; `changes()` are the fields actually sent.

    Fields that may be left out but not cleared are typed `X | SkipJsonSchema[None] = None` and get
    `reject_null` as a before-validator, so an explicit null is a 422 on that field.
    """

    model_config = ConfigDict(extra="forbid")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


def reject_null(cls: Any, value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


class ApiEnum(StrEnum):
    """A string enum of the contract: one named schema in the OpenAPI document wherever it is used,
    with its members' names as `x-enum-varnames`, so generated clients get `CREATED_AT_DESC` for
    `-created_at` rather than `VALUE_1`."""

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        handler.resolve_ref_schema(json_schema)["x-enum-varnames"] = [member.name for member in cls]
        return json_schema
