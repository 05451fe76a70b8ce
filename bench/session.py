"""One benchmark session: database and seed, the round-trip pass, rounds of configuration blocks,
the tables and the JSON record."""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, RESULTS_DIR, configs, pg, report, scenarios, servers, tables, wrk
from bench.blocks import Session
from bench.cli import Options
from bench.fixture import Prepared, prepared, say
from bench.limits import redis_problem

PACKAGES = ("todo-api", "fastapi", "starlette", "pydantic", "sqlalchemy", "sqlmodel", "psycopg", "uvicorn", "orjson")
SECONDS_PER_BLOCK = 12  # starting and stopping a block's servers, roughly
SECONDS_PER_RUN = 1.5  # wrk start-up, CPU and counter reads between runs


def _git(*args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return completed.stdout.strip()


def host_probe() -> float:
    """A fixed pure-Python workload (JSON out and back, a dict and a list built per item), best of 5,
    in milliseconds: how fast this machine runs Python right now. A busy host does not show in
    the load average inside a VM (no steal time is reported here), yet it moved every server's CPU
    per request by up to 3× between two runs an hour apart (bench/README.md, "Noise"); this figure,
    taken before the first block and after the last, tells such runs apart."""
    item = {"id": "3f0c2a9e-0d4b-4c1e-9a57-6f1d2b8e4c10", "title": "bench probe", "tags": ["a", "b"], "n": 7}
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for n in range(10_000):
            decoded = json.loads(json.dumps(item))
            decoded["n"] = n
            _ = [value for value in decoded.values() if value]
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 2)


def python_build() -> dict[str, Any]:
    """Whether this interpreter was built with profile-guided and link-time optimisation, as the
    usual deployment images (python:3.13-slim, uv's standalone builds) are: pure-Python code runs
    faster with them, the floors' C-heavy work less so."""
    args = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    return {"pgo": "--enable-optimizations" in args, "lto": "--with-lto" in args, "executable": sys.executable}


def environment(database_url: str) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "host_probe_ms": host_probe(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_build": python_build(),
        "packages": {name: version(name) for name in PACKAGES},
        "postgresql": pg.server_version(database_url),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0],
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def chosen_configs(options: Options) -> tuple[list[configs.Config], dict[str, str]]:
    known = configs.configurations(options.redis_url, options.remote_delay_ms, options.remote_connections)
    chosen, dropped = [], {}
    for name in options.configs:
        problem = redis_problem(options.redis_url) if name == "redis" else None
        if problem:
            dropped[name] = f"Redis at {options.redis_url} does not answer ({problem})"
            say(f"skipping the redis configuration: {dropped[name]}")
        else:
            chosen.append(known[name])
    return chosen, dropped


def estimate_minutes(options: Options, chosen: list[configs.Config]) -> float:
    def runs(config: configs.Config) -> int:
        names = [n for n in options.scenarios if scenarios.is_crowd(n) or not config.rate_limited]

        def floors(name: str) -> int:
            if not options.floor or not scenarios.CATALOGUE[name][4]:
                return 0
            return sum(1 for f in config.floors if f != configs.FLOOR_STACK or name in configs.STACK_SCENARIOS)

        return sum(1 + floors(n) for n in names)

    measured = sum(runs(c) for c in chosen) * (options.warmup + options.duration + SECONDS_PER_RUN) * options.rounds
    counting = [c for c in chosen if c.delay_ms is None] if options.round_trips else []
    counted = sum(runs(c) for c in counting) * SECONDS_PER_RUN
    blocks = len(chosen) * options.rounds + len(counting)
    return float(measured + counted + blocks * SECONDS_PER_BLOCK) / 60


def _exit_on_sigterm() -> None:
    """SIGTERM ends the session like Ctrl-C: servers, relays and the database are cleaned up."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run(options: Options) -> Path:
    _exit_on_sigterm()
    wrk_path = wrk.require_wrk()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = options.output or RESULTS_DIR / f"{stamp}.json"
    chosen, dropped = chosen_configs(options)
    servers.compile_bytecode()
    say(f"about {estimate_minutes(options, chosen):.0f} minutes of measuring after the seed")
    plan = scenarios.population(
        options.users, options.crowd_todos, options.todos, options.big_todos, options.small_todos
    )
    with prepared(options.database_url, plan, keep=options.keep_database) as ready:
        secrets = configs.Secrets.generate(ready.signer.public_pem)
        env_info = environment(ready.database_url)
        build = env_info["python_build"]
        flags = ", ".join(f"{name.upper()} {'on' if build[name] else 'off'}" for name in ("pgo", "lto"))
        say(
            f"host probe: {env_info['host_probe_ms']} ms (bench/README.md, Noise); Python {env_info['python']}, {flags}"
        )
        started_at = time.time()
        session = Session(options, wrk_path, ready, secrets, output)
        _measure(session, chosen)
        settings = {c.name: configs.record(c, ready.database_url, secrets) for c in chosen}
    rows, counted = report.summarize(session.runs), session.round_trips
    report.compare(rows, counted)
    timing = {
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "wall_seconds": round(time.time() - started_at, 1),
    }
    record = (
        timing
        | _record(options, ready, session, plan, rows)
        | {
            "environment": env_info | {"load_average_end": os.getloadavg(), "host_probe_ms_end": host_probe()},
            "configurations": settings,
            "configurations_dropped": dropped,
        }
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    _print_summary(options, rows, counted, record, output)
    return output


def _measure(session: Session, chosen: list[configs.Config]) -> None:
    """The scenarios built, the round-trip pass (every configuration but `remote`, which counts
    under load), then the rounds."""
    if chosen:
        session.build(chosen[0])
    if session.options.round_trips:
        for config in chosen:
            if config.delay_ms is None:
                session.block(config.counting(), 1, counting=True)
    for round_number in range(1, session.options.rounds + 1):
        for config in round_order(chosen, round_number):
            session.block(config, round_number)


def round_order[T](chosen: list[T], round_number: int) -> list[T]:
    """Odd rounds run the configurations in the order given, even rounds in reverse (production,
    redis, capacity, remote, then remote, capacity, redis, production). A host that drifts over the
    run then weighs on every configuration alike in the two rounds' medians, so a ratio between
    configurations (production ÷ capacity, measured blocks apart) compares like with like; in the
    same order twice the first configuration always ran earlier than the last."""
    return list(chosen) if round_number % 2 else chosen[::-1]


def _record(
    options: Options, ready: Prepared, session: Session, plan: dict[str, int], rows: list[report.Row]
) -> dict[str, Any]:
    """The JSON record (the caller adds timing, environment and configurations)."""
    return {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "postgresql_server": ready.server.description,
        "commands": session.commands,
        "seed": {
            "rows": ready.seed.rows,
            "seconds": round(ready.seed.seconds, 1),
            "users": len(plan),
            "todos": {key: count for key, count in plan.items() if not key.startswith("crowd-")},
            "crowd_todos_each": options.crowd_todos,
        },
        "scenarios": {
            s.name: {"description": s.description, "users": len(s.identities)} for s in session.built.values()
        },
        "skipped": session.skipped,
        "not_run": session.not_run,
        "preflight_problems": session.problems,
        "failed_blocks": session.failed_blocks,
        "summary": [asdict(row) for row in rows],
        "round_trips_warm": session.round_trips,
        "list_scaling": report.list_scaling(rows),
        "rate_limit_peak_per_user_window": session.rate_limit_peaks,
        "relay_lateness_us": _lateness(session.runs),
        "peak_rss_mib_per_worker": session.rss,
        "server_logs": session.logs,
        "runs": [r.as_json() for r in session.runs],
    }


def _lateness(runs: list[report.Run]) -> dict[str, float] | None:
    """How much later than due the relay forwarded chunks, medians over the remote runs."""
    found = [run.relay["lateness_us"] for run in runs if run.relay and run.relay["lateness_us"]["samples"]]
    if not found:
        return None
    return {name: statistics.median(entry[name] for entry in found) for name in ("mean", "p50", "p99", "max")}


def _print_summary(
    options: Options, rows: list[report.Row], counted: list[dict[str, Any]], record: dict[str, Any], output: Path
) -> None:
    print(
        f"\n{options.workers} workers per server, wrk -t{options.threads} -c{options.connections} "
        f"(remote: -c{options.remote_connections}), "
        f"{options.warmup} s warm-up + {options.duration} s measured, median of {options.rounds} round(s), "
        f"{record['seed']['users']} users\n"
    )
    sections = (
        ("Production defaults", tables.production, ("production", "redis")),
        ("Capacity variant (rate limiting off, no access log)", tables.capacity, ("capacity",)),
        ("Remote database", tables.remote, ("remote",)),
    )
    for title, render, names in sections:
        if any(row.config in names for row in rows):
            print(f"## {title}\n\n{render(rows)}\n")
        if render is tables.production and any(row.server == configs.FLOOR_STACK for row in rows):
            print(f"## Against the FastAPI + SQLModel floor\n\n{tables.stack(rows)}\n")
    if counted:
        print(f"## PostgreSQL round trips per request (one user, warm caches)\n\n{tables.round_trips(counted)}\n")
    scaling = record["list_scaling"]
    if scaling is not None:
        verdict = "within" if scaling["within_target"] else "NOT within"
        print(
            f"list-100k vs list-1k: req/s ratio {scaling['rps_1k_over_100k']:.2f}, "
            f"p50 ratio {scaling['p50_100k_over_1k']:.2f} ({verdict} the {scaling['target']}x target)"
        )
    _print_notes(options, record)
    print(f"\nresults: {output}")


def _print_notes(options: Options, record: dict[str, Any]) -> None:
    late = record["relay_lateness_us"]
    if late is not None:
        print(
            f"relay: every chunk delayed {options.remote_delay_ms:g} ms, plus lateness p50 {late['p50']:.0f} µs, "
            f"p99 {late['p99']:.0f} µs, mean {late['mean']:.0f} µs (medians over the remote runs)"
        )
    env = record["environment"]
    print(
        f"host probe: {env['host_probe_ms']} ms before the first block, {env['host_probe_ms_end']} ms after the last "
        f"(load average {env['load_average'][0]:.1f} before, {env['load_average_end'][0]:.1f} after)"
    )
    limit = configs.DEFAULT_RATE_LIMIT
    for name, peak in record["rate_limit_peak_per_user_window"].items():
        print(f"rate limit, {name}: at most {peak} requests by one user in one window (limit {limit})")
    for name, mib in record["peak_rss_mib_per_worker"].items():
        print(f"peak RSS per worker, {name}: {mib:.1f} MiB")
    for name, summary in record["server_logs"].items():
        if summary.get("kept"):
            print(f"{name} logged warnings or errors: {summary['kept']}")
    for key in ("configurations_dropped", "failed_blocks", "skipped", "preflight_problems"):
        for name, detail in record[key].items():
            print(f"{key.replace('_', ' ')}: {name}: {detail}")
