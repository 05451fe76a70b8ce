"""Conditional requests (RFC 9110 §13): strong ETags from row versions, If-Match, If-None-Match.

A resource's ETag is derived from its `version` column, which every write increments in the same
UPDATE that checks the client's precondition, so check and write are one atomic statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Header, Request

from todo_api.context import app_context
from todo_api.errors import AppError, NotFound

_ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


class PreconditionFailed(AppError):
    status_code = 412
    detail = "Precondition failed: the resource has changed (If-Match)"


class PreconditionRequired(AppError):
    status_code = 428
    detail = "Precondition required: send If-Match with the resource's ETag"


def etag(value: str) -> str:
    return f'"{value}"'


def _strong_tags(header: str) -> frozenset[str] | None:
    """Opaque values of the strong tags in an If-Match list; None for a malformed header."""
    tags: list[str] = []
    position = 0
    while position < len(header):
        match = _ENTITY_TAG.match(header, position)
        if match is None:
            return None
        if match.group(1) is None:  # weak tags never match under strong comparison
            tags.append(match.group(2))
        position = match.end()
    return frozenset(tags)


@dataclass(frozen=True, slots=True)
class IfMatch:
    """The client's If-Match: `any_` for `*`, else the opaque values of its strong ETags."""

    any_: bool = False
    values: frozenset[str] = frozenset()

    def matches(self, current: str) -> bool:
        return self.any_ or current in self.values


def parse_if_match(header: str | None) -> IfMatch | None:
    if header is None:
        return None
    if header.strip() == "*":
        return IfMatch(any_=True)
    tags = _strong_tags(header)
    return IfMatch(values=tags or frozenset())


def if_none_match_hits(header: str | None, current: str) -> bool:
    """GET: true when the client's cached copy is current (weak comparison, RFC 9110 §13.1.2)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(match.group(2) == current for match in _ENTITY_TAG.finditer(header))


async def if_match(
    request: Request,
    if_match_header: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="ETag(s) from a previous response, or `*`. A stale ETag → 412 and nothing changes.",
        ),
    ] = None,
) -> IfMatch | None:
    """The write's precondition; 428 when the server requires one and none was sent."""
    if if_match_header is None and app_context(request).settings.require_if_match:
        raise PreconditionRequired
    return parse_if_match(if_match_header)


IfMatchDep = Annotated[IfMatch | None, Depends(if_match)]
IfNoneMatchHeader = Annotated[
    str | None,
    Header(alias="If-None-Match", description="ETag of a cached copy: 304 when it is still current."),
]


@dataclass(frozen=True, slots=True)
class Tagged[T]:
    """A representation and its entity tag (without quotes)."""

    item: T
    etag: str


def versions(precondition: IfMatch | None) -> frozenset[int] | None:
    """The row versions an If-Match accepts; None when any version will do (absent or `*`)."""
    if precondition is None or precondition.any_:
        return None
    return frozenset(int(value) for value in precondition.values if value.isdigit() and len(value) < 10)


def ensure_matches[T](precondition: IfMatch | None, current: Tagged[T]) -> Tagged[T]:
    """A write that changes nothing still honours If-Match."""
    if precondition is not None and not precondition.matches(current.etag):
        raise PreconditionFailed
    return current


def missing_or_stale(current: object) -> NoReturn:
    """A conditional write matched no row: 404 if the resource is gone (`current` is None), else
    412 (it changed)."""
    if current is None:
        raise NotFound
    raise PreconditionFailed
