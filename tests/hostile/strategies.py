"""Hypothesis strategies for hostile input: JSON that Python's parser would accept or choke on,
text with NUL and lone surrogates, and header values with Unicode digits, non-ASCII and control
characters."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# Characters `str.isdigit()` / `int()` / `\d` accept that are not ASCII digits.
UNICODE_DIGITS = "²³¹⁰٠١٢٣٤٥٦٧٨٩۰۱۲۳४५१२３４𝟎𝟗߀߁᠐᠑"
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
CONTROLS = st.characters(max_codepoint=0x1F) | st.just("\x7f")
NON_ASCII = st.characters(min_codepoint=0x80, exclude_categories=["Cs"])


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text put into a body as is: tokens `json.dumps` will not write, raw surrogates."""

    text: str


def render(value: Any) -> bytes:
    """A JSON-like tree (with `Raw` pieces) as request body bytes; lone surrogates in the text
    become their (invalid) UTF-8 byte sequences."""
    return _render(value).encode("utf-8", "surrogatepass")


def _render(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{_render(key)}:{_render(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render(item) for item in value) + "]"
    return json.dumps(value)


# --- numbers ---------------------------------------------------------------------------------------

NON_FINITE = st.sampled_from(["NaN", "Infinity", "-Infinity", "-NaN", "+Infinity", "nan", "inf", "-inf"])
BEYOND_DOUBLE = st.builds(
    "{}{}e{}".format,
    st.sampled_from(["", "-"]),
    st.sampled_from(["1", "9.99", "1.8", "0.1"]),
    st.integers(min_value=310, max_value=10**9),
)
# Integers past the double range, including past Python's 4300-digit `int()` limit.
HUGE_INTEGERS = st.builds("{}{}".format, st.sampled_from(["", "-"]), st.integers(310, 6000).map(lambda n: "9" * n))
HOSTILE_NUMBERS = st.one_of(NON_FINITE, BEYOND_DOUBLE, HUGE_INTEGERS).map(Raw)


# --- strings ---------------------------------------------------------------------------------------


def _text_with(special: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    plain = st.sampled_from(string.ascii_letters + string.digits)
    return (
        st.lists(st.one_of(special, plain), min_size=1, max_size=8)
        .map("".join)
        .filter(lambda text: any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in text))
    )


NUL_OR_SURROGATE = st.just("\x00") | SURROGATES


@st.composite
def hostile_strings(draw: st.DrawFn) -> Raw:
    """A JSON string holding NUL or a lone surrogate, as `\\u` escapes or raw in the body bytes."""
    text = draw(_text_with(NUL_OR_SURROGATE))
    if draw(st.booleans()):
        return Raw(json.dumps(text))  # ASCII escapes: "\u0000", "\ud800"
    return Raw(f'"{text}"')  # raw: a NUL byte (a control character) or surrogate bytes


HOSTILE_LEAVES = st.one_of(HOSTILE_NUMBERS, hostile_strings())
PLAIN_JSON = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(string.ascii_letters, max_size=5))
HOSTILE_KEYS = st.one_of(st.text(string.ascii_letters, min_size=1, max_size=5), hostile_strings())


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    with_siblings = st.tuples(children, st.lists(PLAIN_JSON, max_size=2)).map(lambda t: [*t[1], t[0]])
    objects = st.tuples(HOSTILE_KEYS, children).map(lambda t: {t[0]: t[1]})
    return st.one_of(with_siblings, objects)


# One or more hostile leaves, nested in arrays and objects (whose keys may be hostile too).
HOSTILE_VALUES = st.recursive(HOSTILE_LEAVES, _containers, max_leaves=4)


# --- query and path text ---------------------------------------------------------------------------


def _hostile_char(c: str) -> bool:
    """Outside visible ASCII and HTTP whitespace."""
    return not ("\x21" <= c <= "\x7e" or c in " \t")


def _text(alphabet: st.SearchStrategy[str], max_size: int = 12) -> st.SearchStrategy[str]:
    """Text with at least one character outside visible ASCII and HTTP whitespace."""
    text = st.lists(alphabet, min_size=1, max_size=max_size).map("".join)
    return text.filter(lambda value: any(map(_hostile_char, value)))


URL_TEXT = _text(
    st.one_of(
        st.sampled_from(UNICODE_DIGITS), NON_ASCII, CONTROLS, NUL_OR_SURROGATE, st.sampled_from(string.ascii_letters)
    ),
    max_size=10,
)


# --- header values -------------------------------------------------------------------------------

# What `str.strip()` removes besides SP and HTAB (U+0085 and U+00A0 are bytes 0x85, 0xA0 in Latin-1).
UNICODE_SPACES = "\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"

HEADER_TEXT = st.one_of(
    # Numbers to `str.isdigit()`, `int()` or `\d`: "²", "٣", "３"…, alone or among ASCII digits;
    # sent as Latin-1, "²³¹" reach the app as themselves (header bytes are decoded as Latin-1).
    _text(st.sampled_from("²³¹0123456789"), max_size=4),
    _text(st.sampled_from(UNICODE_DIGITS + "0123456789"), max_size=6),
    # Whitespace to `str.strip()`, not to HTTP.
    _text(st.sampled_from(UNICODE_SPACES + " \t"), max_size=4),
    _text(st.one_of(st.sampled_from(UNICODE_DIGITS), NON_ASCII, CONTROLS, st.sampled_from(string.printable))),
)

HEADER_SHAPES: dict[str, list[str]] = {
    "authorization": [
        "{h}",
        "Bearer {h}",
        "Bearer {token}{h}",
        "Bearer {token} {h}",
        "{h}Bearer {token}",
        "{h}{token}",
    ],
    "content-type": ["{h}", "{h}/json", "text/{h}"],
    "content-length": ["{h}", "1{h}", "{h}0"],
    "x-request-id": ["{h}", "req-{h}", "{h}-1"],
    # "0" is no version of anything: a value must not match, even if `h` happens to be valid obs-text.
    "if-match": ["{h}", '"{h}"', '"{h}.{h}.{h}"', 'W/"{h}"', '"0", "{h}"', '"{h}1"', "*{h}", '{h}"1"', '"1.0.0"{h}'],
    "if-none-match": ["{h}", '"{h}"', 'W/"{h}"', '"0", {h}', "*{h}"],
    "idempotency-key": ["{h}", "key-{h}", "{h}-key"],
}


@st.composite
def header_values(draw: st.DrawFn, name: str, token: str) -> bytes:
    """A value for header `name` in one of its plausible shapes, carrying hostile characters,
    encoded as UTF-8 or (when it can be) Latin-1."""
    shape = draw(st.sampled_from(HEADER_SHAPES.get(name.lower(), ["{h}"])))
    value = shape.format(h=draw(HEADER_TEXT), token=token)
    if max(map(ord, value)) <= 0xFF and draw(st.integers(0, 3)):  # mostly Latin-1 when it can be
        return value.encode("latin-1")
    return value.encode("utf-8")
