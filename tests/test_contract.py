"""Contract run: schemathesis generates requests from the app's own OpenAPI document and checks
every response against it with all its default checks (no server errors, documented status codes,
content types, response schemas and headers, `Allow` on 405, positive data accepted, negative data
rejected, auth enforced).

The document is `app.openapi()` (the production app serves no `/openapi.json`); the app is called
in-process through schemathesis' ASGI transport, which also runs the app's lifespan. Every case
carries a real signed token. What schemathesis cannot know (which ids exist, what a valid cursor or
ETag is, that an Idempotency-Key must not be reused for another body) comes from the hooks in
`tests/contract_hooks.py`, each scoped to the operations that need it and documented there.

pytest collects one test per operation (`test_api_honours_its_openapi_contract[POST /api/todos]`, …);
each runs the examples phase (the documented request examples), then the coverage and fuzzing phases
in both generation modes with a fixed seed, and must get at least `MIN_CASES_PER_OPERATION` cases.
`-s` prints the counts.

The schema is loaded at import, not from a fixture: `schemathesis.pytest.from_fixture` (4.32) reads
`request.node._nodeid`, which pytest 9 no longer has. Anything the generated cases carry is therefore
fixed at import (see `tests/contract_hooks.py`), and the app, which needs the test database, is bound
late (`LateBoundApp`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from tests import contract_hooks
from tests.contract_hooks import KNOWN, Case
from todo_api.app import create_app
from todo_api.config import load_settings

SEED = 20_260_611
# Hypothesis examples per operation for the fuzzing phase, drawn from both modes (positive and
# negative); the coverage phase adds its own deterministic cases on top.
FUZZING_EXAMPLES = 110
MIN_CASES_PER_OPERATION = 100

# The document does not depend on settings (no database, no keys needed to describe the app).
DOCUMENT = create_app(load_settings(_env_file=None, require_database=False, require_key_source=False)).openapi()
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",  # positive and negative
            "max-examples": FUZZING_EXAMPLES,
            "database": "none",  # no replay of earlier runs' failures: every run draws the same cases
        },
    }
)


class LateBoundApp:
    """The ASGI app schemathesis is given at import (its checks' probes find the app there); the
    `contract_app` fixture binds the real one, which needs the test database."""

    def __init__(self) -> None:
        self.app: Callable[..., Awaitable[None]] | None = None

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        assert self.app is not None, "the `contract_app` fixture binds the app"
        await self.app(scope, receive, send)


APP = LateBoundApp()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = APP
contract_hooks.register(schema)

type Stats = Counter[tuple[str, str, str]]


@pytest.fixture(scope="module")
def contract_app(base_settings: dict[str, Any]) -> Iterator[ASGIApp]:
    """The app, trusting the contract tokens' key, with its lifespan running on schemathesis' event-loop
    thread where every case is served (entering a client starts it; it runs until shut down)."""
    settings = {
        **base_settings,
        "jwt_public_key": contract_hooks.PUBLIC_KEY,
        # One user sends thousands of requests a minute here; per-user throttling would answer most
        # of them 429 and leave little of the contract exercised.
        "rate_limit_requests": 0,
    }
    APP.app = create_app(load_settings(**settings))
    with asgi.get_client(APP):
        pass
    try:
        yield APP.app
    finally:
        asgi.shutdown_lifespans()
        APP.app = None


@pytest.fixture(scope="module")
def contract_stats() -> Iterator[Stats]:
    """Cases run per (operation, generation mode, phase), reported after the module's run."""
    stats: Stats = Counter()
    yield stats
    lines = ["", "schemathesis contract run (cases per operation, mode and phase):"]
    per_operation: Counter[str] = Counter()
    per_mode: Counter[str] = Counter()
    for (label, mode, phase), count in sorted(stats.items()):
        per_operation[label] += count
        per_mode[mode] += count
        lines.append(f"  {label:<30} {mode:<8} {phase:<9} {count:>5}")
    lines.append(f"  {len(per_operation)} operations, {stats.total()} cases: {dict(sorted(per_mode.items()))}")
    sys.stdout.write("\n".join(lines) + "\n")  # shown with `-s`


@pytest.fixture
async def contract_data(db_engine: AsyncEngine) -> None:
    """The contract user and its known lists and todos (the database is emptied after each test)."""
    async with db_engine.begin() as connection:
        await KNOWN.seed(connection)


@pytest.fixture
def enough_cases(contract_stats: Stats, request: pytest.FixtureRequest) -> Iterator[None]:
    """After each operation's run: it had at least `MIN_CASES_PER_OPERATION` cases."""
    before, failures = contract_stats.total(), request.session.testsfailed
    yield
    cases = contract_stats.total() - before
    if request.session.testsfailed == failures:  # a failed run stops early; don't pile on
        assert cases >= MIN_CASES_PER_OPERATION, f"only {cases} cases for {request.node.name}"


@schema.parametrize()
@pytest.mark.usefixtures("contract_app", "contract_data", "enough_cases")
def test_api_honours_its_openapi_contract(case: Case, contract_stats: Stats) -> None:
    meta = case.meta
    assert meta is not None
    contract_stats[case.operation.label, meta.generation.mode.value, meta.phase.name.value] += 1
    case.call_and_validate()
