"""`python -m bench.explain`: EXPLAIN (ANALYZE, BUFFERS) of the SQL behind each scenario.

The statements are not rebuilt here: the app itself (`create_app`, in process, over
`httpx.ASGITransport`) serves one request per scenario against the benchmark's seeded database,
every statement its engine sends is captured with its parameters (`before_cursor_execute`), and
each is then explained on a separate connection; writes are explained inside a transaction that
is rolled back. So the plans are those of exactly the SQL todo-api runs, whatever its code
looks like today. Output is Markdown, ready for the "EXPLAIN plans" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from sqlalchemy import event

from bench import scenarios
from bench.fixture import Prepared, prepared, say
from bench.lua import CREATE_BODY
from bench.session import SERVER_OVERRIDES
from bench.tokens import AUDIENCE, ISSUER
from todo_api.app import create_app
from todo_api.config import Settings, load_settings

DEFAULT = ("me", "list", "list-deep", "filter", "get", "create", "patch", "list-100k", "list-1k")


@dataclass(frozen=True, slots=True)
class Captured:
    statement: str
    parameters: Any


@dataclass(frozen=True, slots=True)
class Probe:
    scenario: str
    method: str
    path: str
    body: str | None
    user: str


def _probes(names: Sequence[str], ready: Prepared, deep_path: str) -> list[Probe]:
    some_id = str(ready.seed.user("user-1").todo_ids[1234 % len(ready.seed.user("user-1").todo_ids)])
    catalogue = {
        "me": Probe("me", "GET", "/api/users/me", None, "user-1"),
        "list": Probe("list", "GET", scenarios.LIST_PATH, None, "user-1"),
        "list-deep": Probe("list-deep", "GET", deep_path, None, "user-1"),
        "filter": Probe("filter", "GET", scenarios.FILTER_PATH, None, "user-1"),
        "get": Probe("get", "GET", f"/api/todos/{some_id}", None, "user-1"),
        "create": Probe("create", "POST", "/api/todos", CREATE_BODY.replace("%d", "0"), "user-1"),
        "patch": Probe("patch", "PATCH", f"/api/todos/{some_id}", '{"completed":true}', "user-1"),
        "list-100k": Probe("list-100k", "GET", scenarios.LIST_PATH, None, scenarios.BIG_USER),
        "list-1k": Probe("list-1k", "GET", scenarios.LIST_PATH, None, scenarios.SMALL_USER),
    }
    return [catalogue[name] for name in names if name in catalogue]


def _settings(ready: Prepared) -> Settings:
    for name in Settings.model_fields:  # this process only: the developer's settings must not leak in
        os.environ.pop(name.upper(), None)
    return load_settings(
        _env_file=None,
        database_url=ready.database_url,
        jwt_public_key=ready.signer.public_pem,
        jwt_issuer=ISSUER,
        jwt_audience=[AUDIENCE],
        log_level="warning",
        **SERVER_OVERRIDES,  # as `python -m bench` runs the server
    )


def _explain(database_url: str, captured: Captured) -> str:
    parameters = captured.parameters
    if captured.statement.lstrip().upper().startswith("INSERT") and isinstance(parameters, dict) and "id" in parameters:
        parameters = parameters | {"id": uuid.uuid4()}  # the app's request already inserted that id
    with psycopg.connect(database_url, prepare_threshold=None) as connection:
        try:
            rows = connection.execute("EXPLAIN (ANALYZE, BUFFERS) " + captured.statement, parameters).fetchall()
        finally:
            connection.rollback()  # EXPLAIN ANALYZE of a write performs it; undo it
    return "\n".join(str(row[0]) for row in rows)


async def _capture(ready: Prepared, probes: Sequence[Probe]) -> list[tuple[Probe, int, list[Captured]]]:
    app = create_app(_settings(ready))
    results = []
    async with app.router.lifespan_context(app):
        engine = app.state.engine
        captured: list[Captured] = []

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            captured.append(Captured(statement, parameters))

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for probe in probes:
                headers = {"Authorization": f"Bearer {ready.tokens[probe.user]}"}
                if probe.body is not None:
                    headers["Content-Type"] = "application/json"
                await client.request(probe.method, probe.path, headers=headers, content=probe.body)  # warm
                captured.clear()
                response = await client.request(probe.method, probe.path, headers=headers, content=probe.body)
                results.append((probe, response.status_code, list(captured)))
    return results


def _deep_path(ready: Prepared) -> str:
    app = create_app(_settings(ready))

    async def walk() -> str:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                path = scenarios.LIST_PATH
                for _ in range(scenarios.DEEP_PAGES):
                    response = await client.get(path, headers={"Authorization": f"Bearer {ready.tokens['user-1']}"})
                    cursor = response.json().get("next_cursor") if response.is_success else None
                    if not cursor:
                        break
                    path = scenarios.page_path(cursor)
                return path

    return asyncio.run(walk())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or None)
    parser.add_argument("--scenarios", default=",".join(DEFAULT), help=f"comma-separated subset of {','.join(DEFAULT)}")
    parser.add_argument("--todos", type=int, default=10_000)
    parser.add_argument("--big-todos", type=int, default=100_000)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    plan = {"user-1": args.todos, "user-2": args.todos, scenarios.BIG_USER: args.big_todos, scenarios.SMALL_USER: 1000}
    with prepared(args.database_url, plan) as ready:
        deep = _deep_path(ready) if "list-deep" in names else scenarios.LIST_PATH
        say("capturing the app's SQL, one request per scenario")
        results = asyncio.run(_capture(ready, _probes(names, ready, deep)))
        for probe, status, statements in results:
            print(f"### {probe.scenario}: `{probe.method} {probe.path[:100]}` -> {status}\n")
            print(f"{len(statements)} statement(s) per request (plus the pool's pre-ping, if enabled).\n")
            for number, captured in enumerate(statements, 1):
                print(f"{number}. `{' '.join(captured.statement.split())}`\n")
                print(f"   parameters: `{captured.parameters}`\n")
                print("```text\n" + _explain(ready.database_url, captured) + "\n```\n")


if __name__ == "__main__":
    main()
