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
from bench.inprocess import Probe, deep_path, probes, settings, sync_paths
from todo_api.app import create_app

DEFAULT = (
    "me",
    "list",
    "list-deep",
    "filter",
    "get",
    "create",
    "patch",
    "list-100k",
    "list-1k",
    "sync",
    "sync-100k",
    "move",
    "position",
)


@dataclass(frozen=True, slots=True)
class Captured:
    statement: str
    parameters: Any


def _explain(database_url: str, captured: Captured) -> str:
    parameters = captured.parameters
    if captured.statement.lstrip().upper().startswith("INSERT") and isinstance(parameters, dict):
        # the app's request already inserted that id (`new_id`: an INSERT … SELECT's bind parameter)
        parameters = parameters | {key: uuid.uuid4() for key in ("id", "new_id") if key in parameters}
        if isinstance(parameters.get("new_position"), str):  # and that position among its siblings
            parameters["new_position"] += "V"
    with psycopg.connect(database_url, prepare_threshold=None) as connection:
        try:
            rows = connection.execute("EXPLAIN (ANALYZE, BUFFERS) " + captured.statement, parameters).fetchall()
        finally:
            connection.rollback()  # EXPLAIN ANALYZE of a write performs it; undo it
    return "\n".join(str(row[0]) for row in rows)


async def _capture(ready: Prepared, batch: Sequence[Probe]) -> list[tuple[Probe, int, list[Captured]]]:
    app = create_app(settings(ready))
    results = []
    async with app.router.lifespan_context(app):
        engine = app.state.context.engine
        captured: list[Captured] = []

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            captured.append(Captured(statement, parameters))

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for probe in batch:
                headers = {"Authorization": f"Bearer {ready.tokens[probe.user]}"}
                if probe.body is not None:
                    headers["Content-Type"] = "application/json"
                await client.request(probe.method, probe.path, headers=headers, content=probe.body)  # warm
                captured.clear()
                response = await client.request(probe.method, probe.path, headers=headers, content=probe.body)
                results.append((probe, response.status_code, list(captured)))
    return results


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
        deep = deep_path(ready) if "list-deep" in names else scenarios.LIST_PATH
        syncing = [user for name, user in (("sync", "user-1"), ("sync-100k", scenarios.BIG_USER)) if name in names]
        synced = sync_paths(ready, syncing) if syncing else {}
        say("capturing the app's SQL, one request per scenario")
        results = asyncio.run(_capture(ready, probes(names, ready, deep, synced)))
        for probe, status, statements in results:
            print(f"### {probe.scenario}: `{probe.method} {probe.path[:100]}` -> {status}\n")
            print(f"{len(statements)} statement(s) per request, after the bounded BEGIN (the pre-ping).\n")
            for number, captured in enumerate(statements, 1):
                print(f"{number}. `{' '.join(captured.statement.split())}`\n")
                print(f"   parameters: `{captured.parameters}`\n")
                print("```text\n" + _explain(ready.database_url, captured) + "\n```\n")


if __name__ == "__main__":
    main()
