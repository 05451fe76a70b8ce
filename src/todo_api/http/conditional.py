"""Conditional requests (RFC 9110 §13): entity tags, If-Match, If-None-Match.

The header grammar is parsed here, in ASCII, and nowhere else. What an entity tag *means* is up to
each resource: one small `ETag` object per resource formats its version into a strong tag and reads
it back, so a service receives typed versions (`Precondition`), never header text. A row's
version is bumped by every write in the same UPDATE that checks the client's precondition, so
check and write are one atomic statement.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from fastapi import Depends, Request

from todo_api.context import app_context
from todo_api.errors import AppError, ErrorCode, NotFound

# One list member of `#entity-tag`: OWS, an optional `[W/]"etagc*"`, OWS, then a comma or the end
# (empty members are allowed, RFC 9110 §5.6.1.2). etagc = %x21 / %x23-7E / obs-text; header
# values arrive decoded as Latin-1, so obs-text is U+0080-U+00FF.
_MEMBER = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|\Z)')
_OWS = " \t"
_DECIMAL = re.compile(r"[0-9]{1,10}")
INT4_MAX = 2**31 - 1  # versions and counts are compared with integer columns


class PreconditionFailed(AppError):
    status_code = 412
    code = ErrorCode.PRECONDITION_FAILED
    detail = "Precondition failed: the resource has changed (If-Match)"
    found_the_account = True  # a 412 found the row (a missing one is a 404)


class PreconditionRequired(AppError):
    status_code = 428
    code = ErrorCode.PRECONDITION_REQUIRED
    detail = "Precondition required: send If-Match with the resource's ETag"


@dataclass(frozen=True, slots=True)
class EntityTag:
    weak: bool
    opaque: str  # between the quotes


def entity_tags(value: str) -> list[EntityTag] | None:
    """`1#entity-tag` → its tags; None when the value does not follow the grammar."""
    tags: list[EntityTag] = []
    position = 0
    while True:
        member = _MEMBER.match(value, position)
        if member is None:
            return None
        if member.group(2) is not None:
            tags.append(EntityTag(weak=member.group(1) is not None, opaque=member.group(2)))
        if not member.group(3):  # the end of the value
            return tags or None
        position = member.end()


def is_any(value: str) -> bool:
    return value.strip(_OWS) == "*"


def decimal(text: str) -> int | None:
    """An ASCII decimal within int4, else None (`str.isdigit`/`int` also take Unicode digits)."""
    if not _DECIMAL.fullmatch(text):
        return None
    number = int(text)
    return number if number <= INT4_MAX else None


@dataclass(frozen=True, slots=True)
class Precondition[V]:
    """An If-Match in one resource's terms: the versions a write may overwrite; None for `*`
    (whichever version is current). A malformed If-Match or one naming only versions this resource
    cannot have accepts none: the write answers 412 (404 if the resource is gone)."""

    versions: frozenset[V] | None

    def admits(self, current: V) -> bool:
        return self.versions is None or current in self.versions


def accepted[V](precondition: Precondition[V] | None) -> frozenset[V] | None:
    """What a repository's conditional write takes: the accepted versions, None when unconditional."""
    return None if precondition is None else precondition.versions


def ensure_matches[V](precondition: Precondition[V] | None, current: V) -> None:
    """A write that changes nothing still honours If-Match."""
    if precondition is not None and not precondition.admits(current):
        raise PreconditionFailed


def missing_or_stale(current: object) -> NoReturn:
    """A conditional write matched no row: 404 if the resource is gone (`current` is None), else
    412 (it changed)."""
    if current is None:
        raise NotFound
    raise PreconditionFailed


@dataclass(frozen=True, slots=True)
class Tagged[T]:
    """A representation and its strong entity tag, as sent in `ETag` (with the quotes)."""

    item: T
    etag: str


def if_none_match_hits(header: str | None, current: str) -> bool:
    """GET: true when the client's cached copy is current (weak comparison, RFC 9110 §13.1.2).
    A malformed header never matches."""
    if header is None:
        return False
    if is_any(header):
        return True
    return any(f'"{tag.opaque}"' == current for tag in entity_tags(header) or ())


def joined_lines(request: Request, name: str) -> str | None:
    """A list-valued header as one value: several lines form one comma-separated list (RFC 9110
    §5.3). None when absent."""
    lines = request.headers.getlist(name)
    return ", ".join(lines) if lines else None


def header_parameter(name: str, description: str) -> dict[str, Any]:
    """`openapi_extra` for an optional header a dependency reads from the request itself.

    The conditional headers are read that way rather than declared as `Header()` parameters:
    FastAPI extracts a declared header by walking every header of the request, twice, and
    validating it (~30-40 µs per request, 160-220 Python calls, `bench.cpu --calls`), for a value
    these dependencies parse themselves. The parameter documented is the one FastAPI would write."""
    schema = {"type": "string", "description": description, "title": name}
    return {
        "parameters": [{"name": name, "in": "header", "required": False, "schema": schema, "description": description}]
    }


IF_MATCH_DESCRIPTION = "ETag(s) from a previous response, or `*`. A stale ETag → 412 and nothing changes."
IF_MATCH = header_parameter("If-Match", IF_MATCH_DESCRIPTION)
IF_NONE_MATCH = header_parameter("If-None-Match", "ETag of a cached copy: 304 when it is still current.")


class ETag[V](ABC):
    """One resource's entity tags: how a version is written in `ETag`, and read back from
    If-Match. Formatting is canonical: only the exact text the server sent names a version."""

    @abstractmethod
    def opaque(self, version: V) -> str:
        """The text between the quotes (etagc characters only)."""

    @abstractmethod
    def parse(self, opaque: str) -> V | None:
        """The version `opaque` names, None if it names none."""

    def header(self, version: V) -> str:
        return f'"{self.opaque(version)}"'

    def tagged[T](self, item: T, version: V) -> Tagged[T]:
        return Tagged(item, self.header(version))

    def _named(self, opaque: str) -> V | None:
        version = self.parse(opaque)
        return version if version is not None and self.opaque(version) == opaque else None

    def precondition(self, header: str | None) -> Precondition[V] | None:
        """If-Match (None when absent) → the versions it accepts, under strong comparison."""
        if header is None:
            return None
        if is_any(header):
            return Precondition(None)
        named = (self._named(tag.opaque) for tag in entity_tags(header) or () if not tag.weak)
        return Precondition(frozenset(version for version in named if version is not None))

    async def if_match(self, request: Request) -> Precondition[V] | None:
        """Dependency: the write's precondition; 428 when the server requires one and none came.
        Documented by `IF_MATCH` on the route (see `header_parameter`)."""
        header = joined_lines(request, "if-match")
        if header is None and app_context(request).settings.require_if_match:
            raise PreconditionRequired
        return self.precondition(header)


class RowVersionETag(ETag[int]):
    """`"<version>"`: the row's version column, bumped by every write."""

    def opaque(self, version: int) -> str:
        return str(version)

    def parse(self, opaque: str) -> int | None:
        return decimal(opaque)


async def if_none_match(request: Request) -> str | None:
    """Dependency: If-None-Match as one value. Documented by `IF_NONE_MATCH` on the route."""
    return joined_lines(request, "if-none-match")


IfNoneMatchHeader = Annotated[str | None, Depends(if_none_match)]
