"""`python -m bench.cpu`: server CPU per request, in process, for todo-api and the floor.

wrk on a shared 2-core machine moves by ±20 % from run to run; comparing two versions of the code
needs a steadier measure. This one sends each scenario's request straight into the ASGI app (no
HTTP server, no network client) on uvloop, many times, and reports the CPU time of this process
per request (`time.process_time`): the Python cost of a request, with PostgreSQL's own CPU and
the HTTP server left out. Each scenario runs in `--batches` batches after a warm-up; the minimum
over the batches is the least disturbed figure, the median shows the spread.

The floor (`bench.floor`, the same object uvicorn serves) runs in this process too, in both its
modes (plain, and like-for-like: todo-api's token and identity caches), so every column comes from
the same conditions. Like `python -m bench`'s capacity configuration, todo-api runs without rate
limiting at log level warning here, and so does the floor (no access line in either). Run it on an
otherwise idle machine, and compare versions of the code by running it once per version, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import statistics
import time
from collections.abc import Sequence
from typing import Any, cast

import uvloop
from starlette.types import ASGIApp, Message

from bench import floor as floor_module
from bench import scenarios, stackfloor
from bench.fixture import Prepared, prepared, say
from bench.inprocess import CURSOR_SECRET, Probe, deep_path, probes, settings
from bench.tokens import AUDIENCE, ISSUER
from todo_api.app import create_app

DEFAULT = ("me", "get", "list", "list-deep", "filter", "create", "patch")
FLOOR_SERVES = frozenset({"me", "get", "list", "filter", "position", "create", "patch"})
STACK_SERVES = frozenset({"me", "get", "list", "filter", "position"})  # `bench.stackfloor`


LIKE = [(b"x-bench-floor", b"like")]


async def _call(app: ASGIApp, probe: Probe, token: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> int:
    """One request through the ASGI interface; returns the status."""
    path, _, query = probe.path.partition("?")
    body = (probe.body or "").encode()
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode()), *extra]
    if probe.body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": probe.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    delivered = False
    status = 0

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a disconnect never comes
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _time(
    app: ASGIApp, probe: Probe, token: str, requests: int, batches: int, extra: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[float, float]:
    """(min, median) CPU microseconds per request over the batches, after a warm-up."""
    for _ in range(max(50, requests // 20)):
        status = await _call(app, probe, token, extra)
        if not 200 <= status < 300:
            raise SystemExit(f"bench.cpu: {probe.scenario} answered {status}")
    per_batch = max(1, requests // batches)
    figures = []
    for _ in range(batches):
        started = time.process_time()
        for _ in range(per_batch):
            await _call(app, probe, token, extra)
        figures.append((time.process_time() - started) / per_batch * 1e6)
    return min(figures), statistics.median(figures)


async def _count_calls(ready: Prepared, batch: Sequence[Probe], requests: int) -> None:
    """Python function calls per request (cProfile's count, builtins included), todo-api only.

    Unlike CPU time it does not move with the machine's load: two versions of the code can be
    compared with one run each. It weighs a call into C (psycopg's libpq, pydantic-core) like any
    other, so it is a guide to Python overhead, not a substitute for `python -m bench`."""
    app = create_app(settings(ready))
    print("| scenario  | Python calls per request |")
    print("|-----------|-------------------------:|")
    async with app.router.lifespan_context(app):
        for probe in batch:
            token = ready.tokens[probe.user]
            for _ in range(max(50, requests // 20)):  # warm-up: caches, compiled statements, pool
                await _call(app, probe, token)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(requests):
                await _call(app, probe, token)
            profile.disable()
            stats = pstats.Stats(profile)
            calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
            print(f"| {probe.scenario:<9} | {calls / requests:>24.0f} |", flush=True)


async def _measure(ready: Prepared, batch: Sequence[Probe], requests: int, batches: int, with_floor: bool) -> None:
    app = create_app(settings(ready))
    floor = floor_module.Floor()
    if with_floor:
        os.environ.update(
            DATABASE_URL=ready.database_url,
            JWT_PUBLIC_KEY=ready.signer.public_pem,
            JWT_ISSUER=ISSUER,
            JWT_AUDIENCE=AUDIENCE,
            CURSOR_SECRET=CURSOR_SECRET,
            LOG_LEVEL="warning",  # as todo-api here: the floor's startup configures logging for the process
        )
        await floor._start()  # the floor's own startup, as its lifespan runs it
    print(
        "| scenario  | todo-api µs (min / median) | floor µs (min / median) | floor / todo-api "
        "| like-for-like µs (min / median) | like-for-like / todo-api "
        "| stack floor µs (min / median) | stack floor / like-for-like | todo-api / stack floor |"
    )
    print(
        "|-----------|---------------------------:|------------------------:|-----------------:"
        "|--------------------------------:|-------------------------:"
        "|------------------------------:|----------------------------:|-----------------------:|"
    )
    stack = stackfloor.app
    try:
        stacked = stack.router.lifespan_context(stack) if with_floor else contextlib.nullcontext()
        async with app.router.lifespan_context(app), stacked:
            for probe in batch:
                token = ready.tokens[probe.user]
                ours = await _time(app, probe, token, requests, batches)
                row = f"| {probe.scenario:<9} | {ours[0]:>12.0f} / {ours[1]:<11.0f} |"
                if with_floor and probe.scenario in FLOOR_SERVES:
                    theirs = await _time(cast(ASGIApp, floor), probe, token, requests, batches)
                    row += f" {theirs[0]:>10.0f} / {theirs[1]:<10.0f} | {theirs[0] / ours[0]:>15.2f}x |"
                    like = await _time(cast(ASGIApp, floor), probe, token, requests, batches, LIKE)
                    row += f" {like[0]:>14.0f} / {like[1]:<14.0f} | {like[0] / ours[0]:>23.2f}x |"
                    if probe.scenario in STACK_SERVES:
                        floored = await _time(cast(ASGIApp, stack), probe, token, requests, batches)
                        row += f" {floored[0]:>13.0f} / {floored[1]:<13.0f} | {floored[0] / like[0]:>26.2f}x |"
                        row += f" {ours[0] / floored[0]:>21.2f}x |"
                    else:
                        row += f" {'':>29} | {'':>27} | {'':>22} |"
                else:
                    row += f" {'':>23} | {'':>16} | {'':>31} | {'':>24} | {'':>29} | {'':>27} | {'':>22} |"
                print(row, flush=True)
    finally:
        if floor.pool is not None:
            await floor.pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or None)
    parser.add_argument("--scenarios", default=",".join(DEFAULT), help=f"comma-separated subset of {','.join(DEFAULT)}")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per scenario and server")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--todos", type=int, default=10_000)
    parser.add_argument(
        "--calls", action="store_true", help="count Python function calls per request instead (todo-api only)"
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    plan = {"user-1": args.todos, "user-2": args.todos}
    with prepared(args.database_url, plan) as ready:
        deep = deep_path(ready) if "list-deep" in names else scenarios.LIST_PATH
        say(f"{args.requests} requests per scenario and server, {args.batches} batches, uvloop, this process only")
        batch = probes(names, ready, deep)
        if args.calls:
            uvloop.run(_count_calls(ready, batch, args.requests))
        else:
            uvloop.run(_measure(ready, batch, args.requests, args.batches, with_floor=not args.no_floor))


if __name__ == "__main__":
    main()
