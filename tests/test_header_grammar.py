"""Header grammar, in ASCII: entity tags (RFC 9110 §8.8.3), each resource's ETag object,
Content-Length, and the strict-JSON route class on every route."""

from __future__ import annotations

import string

import pytest
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile.strategies import UNICODE_DIGITS
from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.http.conditional import INT4_MAX, EntityTag, ETag, Precondition, RowVersionETag, entity_tags
from todo_api.http.middleware import BodyLimitMiddleware
from todo_api.http.routing import StrictJsonRoute
from todo_api.lists.repository import ListState
from todo_api.lists.service import ETAG as LIST_ETAG
from todo_api.todos.service import ETAG as TODO_ETAG

ETAGC = "".join(map(chr, [0x21, *range(0x23, 0x7F), *range(0x80, 0x100)]))  # %x21 / %x23-7E / obs-text
OWS = st.text(" \t", max_size=2)
TAGS = st.builds(EntityTag, weak=st.booleans(), opaque=st.text(ETAGC, max_size=8))
VERSIONS = st.integers(0, INT4_MAX)


def _written(tag: EntityTag) -> str:
    return f'{"W/" if tag.weak else ""}"{tag.opaque}"'


@given(tags=st.lists(TAGS, min_size=1, max_size=5), spaces=st.data())
def test_every_list_of_entity_tags_parses_to_its_tags(tags: list[EntityTag], spaces: st.DataObject) -> None:
    separators = [spaces.draw(OWS) + "," + spaces.draw(OWS) for _ in tags[1:]]
    header = spaces.draw(OWS) + _written(tags[0])
    header += "".join(sep + _written(tag) for sep, tag in zip(separators, tags[1:], strict=True))
    assert entity_tags(header + spaces.draw(OWS)) == tags
    assert entity_tags(", ," + header + ",") == tags  # empty list members are allowed


@given(tags=st.lists(TAGS, min_size=1, max_size=3), position=st.integers(0, 200), bad=st.sampled_from('"\x00\r\n\x7f'))
def test_a_character_outside_the_grammar_makes_the_header_malformed(
    tags: list[EntityTag], position: int, bad: str
) -> None:
    """A control character or an unbalanced quote anywhere; text after a tag; beyond Latin-1."""
    header = ", ".join(map(_written, tags))
    position %= len(header) + 1
    assert entity_tags(header[:position] + bad + header[position:]) is None
    assert entity_tags(header + "€") is None
    assert entity_tags(header + " x") is None


@pytest.mark.parametrize("header", ["", " ", ",", "1", "W/1", 'w/"1"', '"1" "2"', '"1', '"1",x', '*, "1"'])
def test_malformed_headers(header: str) -> None:
    assert entity_tags(header) is None


@given(version=VERSIONS)
def test_a_todo_etag_names_exactly_its_version(version: int) -> None:
    header = TODO_ETAG.header(version)
    assert TODO_ETAG.precondition(header) == Precondition(frozenset({version}))
    assert TODO_ETAG.precondition(f"W/{header}") == Precondition(frozenset())  # weak: never for a write


@given(version=st.builds(ListState, VERSIONS, VERSIONS, VERSIONS))
def test_a_list_etag_names_exactly_its_version_and_counts(version: ListState) -> None:
    assert LIST_ETAG.precondition(f'"0", {LIST_ETAG.header(version)}') == Precondition(frozenset({version}))


def _names_only_itself[V](etag: ETag[V], text: str) -> None:
    if etag.parse(text) is not None:
        assert text.isascii()
    accepted = etag.precondition(f'"{text}"')
    assert accepted is not None
    for named in accepted.versions or ():
        assert etag.opaque(named) == text


@given(text=st.text(st.sampled_from(UNICODE_DIGITS + "0123456789.+- _x"), min_size=1, max_size=12))
def test_only_the_canonical_ascii_form_names_a_version(text: str) -> None:
    """ "²", "٣", "01", "+1", "1.0" or anything beyond int4 never name a version (`isdigit` and
    `int` would take several of them)."""
    _names_only_itself(TODO_ETAG, text)
    _names_only_itself(LIST_ETAG, text)


def test_bounds_of_a_row_version() -> None:
    assert RowVersionETag().parse(str(INT4_MAX)) == INT4_MAX
    assert RowVersionETag().parse(str(INT4_MAX + 1)) is None
    assert TODO_ETAG.precondition('"²"') == Precondition(frozenset())
    assert TODO_ETAG.precondition(" * ") == Precondition(None)
    assert TODO_ETAG.precondition("*\x0b") == Precondition(frozenset())


@given(
    text=st.text(string.printable + UNICODE_DIGITS + "\x00\x85\xa0", max_size=30)
    | st.tuples(st.integers(0, 6000), st.integers(0, 10**30)).map(lambda t: "0" * t[0] + str(t[1]))
)
def test_content_length_is_ascii_digits(text: str) -> None:
    """Leading zeros included: `int()` refuses more than 4300 digits, zeros or not."""
    refusal = BodyLimitMiddleware(app=None, max_bytes=1024)._refusal(text)  # type: ignore[arg-type]
    if not text or not all("0" <= c <= "9" for c in text):
        assert refusal == (400, "Bad Content-Length")
    elif int(text.lstrip("0") or "0") > 1024:
        assert refusal is not None
        assert refusal[0] == 413
    else:
        assert refusal is None


def test_every_route_parses_json_strictly() -> None:
    """`include_router` keeps each route's own class: every resource router must set it."""
    app = create_app(load_settings(_env_file=None, require_database=False, require_key_source=False))
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    assert routes
    assert all(isinstance(route, StrictJsonRoute) for route in routes), [
        route.path for route in routes if not isinstance(route, StrictJsonRoute)
    ]
