"""The README's reference tables stay true to the code: the API overview lists every route the app
serves and no other, and the configuration table and `.env.example` name every setting and no
other; and every table in the READMEs keeps its shape. (The API overview was once overwritten by a
benchmark table, and no test noticed.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from todo_api.app import create_app
from todo_api.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
APP = create_app(load_settings(_env_file=None, require_database=False, require_key_source=False))
SETTINGS = {name.upper() for name in Settings.model_fields}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def cells(line: str) -> list[str]:
    """A table row's cells; `\\|` is a pipe inside a cell."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def table(header: str) -> list[list[str]]:
    """The rows (cells, stripped) of the Markdown table whose header line is `header`."""
    lines = README.splitlines()
    start = lines.index(header) + 2  # the header and its rule
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def _shape(path: str) -> str:
    """A path with its parameters unnamed: the README writes `{id}` where the code has `{todo_id}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def documented_operations() -> set[tuple[str, str]]:
    """Each route cell's `METHOD[/METHOD…] /path[?query]` spans, as (method, path) pairs."""
    found: set[tuple[str, str]] = set()
    for row in table("| Method and path | Result |"):
        assert len(row) == 2, f"the API overview's rows have two cells: {row}"
        spans = re.findall(r"`([^`]+)`", row[0])
        assert spans, f"no route in {row[0]!r}"
        for span in spans:
            methods, _, path = span.partition(" ")
            assert set(methods.split("/")) <= METHODS, f"not a method: {span!r}"
            found |= {(method, _shape(path.partition("?")[0])) for method in methods.split("/")}
    return found


def served_operations() -> set[tuple[str, str]]:
    document = APP.openapi()
    return {(method.upper(), _shape(path)) for path, methods in document["paths"].items() for method in methods}


def test_the_api_overview_lists_every_route_and_no_other() -> None:
    documented, served = documented_operations(), served_operations()
    assert served - documented == set(), "served but missing from the README's API overview"
    assert documented - served == set(), "in the README's API overview but not served"


def test_the_configuration_table_names_every_setting_and_no_other() -> None:
    named: set[str] = set()
    for row in table("| Variable | Default | Meaning |"):
        assert len(row) == 3, f"the configuration table's rows have three cells: {row}"
        named |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0]))
    assert SETTINGS - named == set(), "settings missing from the README's configuration table"
    assert named - SETTINGS == set(), "in the README's configuration table but not a setting"


def test_env_example_names_every_setting_and_no_other() -> None:
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, flags=re.MULTILINE))
    assert SETTINGS - named == set(), "settings missing from .env.example"
    assert named - SETTINGS == set(), "in .env.example but not a setting"


@pytest.mark.parametrize("name", ["README.md", "bench/README.md"])
def test_every_table_row_has_as_many_cells_as_its_header(name: str) -> None:
    lines = (ROOT / name).read_text().splitlines()
    tables = 0
    for number, line in enumerate(lines[:-1]):
        if not (line.startswith("|") and re.fullmatch(r"\|[-:| ]+\|", lines[number + 1])):
            continue
        tables += 1
        width = len(cells(line))
        assert len(cells(lines[number + 1])) == width, f"{name}:{number + 2}: the rule does not match the header"
        for offset, row in enumerate(lines[number + 2 :], start=number + 3):
            if not row.startswith("|"):
                break
            assert len(cells(row)) == width, f"{name}:{offset}: {len(cells(row))} cells under a {width}-cell header"
    assert tables >= 3, f"{name}: {tables} tables found; the parser is wrong"
