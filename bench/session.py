"""One benchmark session: database, seed, servers, A/B rounds of wrk runs, report."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench import REPO_ROOT, RESULTS_DIR, lua, pg, report, scenarios, seed, servers, wrk
from bench.cli import Options
from bench.fixture import prepared, say
from bench.tokens import AUDIENCE, ISSUER, Signer

PACKAGES = ("todo-api", "fastapi", "starlette", "pydantic", "sqlalchemy", "sqlmodel", "psycopg", "uvicorn", "orjson")


def _git(*args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return completed.stdout.strip()


def environment(database_url: str) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in PACKAGES},
        "postgresql": pg.server_version(database_url),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0],
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


# The benchmark measures capacity: two users at thousands of requests per second would otherwise
# hit the per-user rate limit, and the seeded users exceed the default quota. The quota check itself
# stays on (with a high cap), so `create` pays for it.
SERVER_OVERRIDES: dict[str, Any] = {
    "rate_limit_requests": 0,
    "max_todos_per_user": 1_000_000,
    "cursor_secret": "bench-cursor-secret-" + "0123456789abcdef" * 2,  # required by `serve`
}


@contextmanager
def running_servers(options: Options, database_url: str, signer: Signer, workdir: Path) -> Iterator[dict[str, Any]]:
    """todo-api (production command) and, unless disabled, the floor; stopped on exit."""
    env = servers.clean_env(
        {
            "DATABASE_URL": database_url,
            "JWT_PUBLIC_KEY": signer.public_pem,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "LOG_LEVEL": "warning",
            **{name.upper(): str(value) for name, value in SERVER_OVERRIDES.items()},
        }
    )
    port = servers.free_port()
    commands = {
        report.APP: [
            *(servers.executable("todo-api"), "serve", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", str(options.workers)),
        ],
    }
    if options.floor:
        floor_port = servers.free_port()
        commands[report.FLOOR] = [
            *(sys.executable, "-m", "uvicorn", "bench.floor:app", "--app-dir", str(REPO_ROOT)),
            *("--host", "127.0.0.1", "--port", str(floor_port), "--workers", str(options.workers)),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"),
            "--no-server-header",
        ]
    started: dict[str, servers.ServerProcess] = {}
    try:
        for name, argv in commands.items():
            say(f"starting {name}: {' '.join(argv[1:])}")
            server_env = env | ({"PYTHONPATH": str(REPO_ROOT)} if name == report.FLOOR else {})
            started[name] = servers.start(
                name, argv, server_env, workdir, int(argv[argv.index("--port") + 1]), options.workers
            )
        yield {"servers": started, "commands": {name: argv[1:] for name, argv in commands.items()}}
    finally:
        for server in started.values():
            server.stop()


def _wrk(options: Options, wrk_path: str, script: Path, server: servers.ServerProcess, seconds: int) -> wrk.WrkResult:
    return wrk.run(
        wrk_path, script, server.base_url, threads=options.threads, connections=options.connections, seconds=seconds
    )


def measure(
    options: Options,
    wrk_path: str,
    plan: Sequence[scenarios.Scenario],
    targets: dict[str, servers.ServerProcess],
    workdir: Path,
) -> tuple[list[report.Run], dict[str, list[str]]]:
    """Rounds of A/B runs: each scenario on todo-api, then on the floor (if it has the scenario)."""
    runs: list[report.Run] = []
    problems: dict[str, list[str]] = {}
    for round_number in range(1, options.rounds + 1):
        for scenario in plan:
            script = workdir / f"{scenario.name}.lua"
            if round_number == 1:
                script.write_text(lua.script(scenario.name, scenario.identities, scenario.mix))
            names = [report.APP] + ([report.FLOOR] if scenario.floor and report.FLOOR in targets else [])
            for name in names:
                server = targets[name]
                if round_number == 1:
                    with httpx.Client(base_url=server.base_url, timeout=30) as client:
                        found = scenarios.preflight(client, scenario)
                    for line in found:
                        say(f"  preflight {scenario.name} on {name}: {line}")
                    if found:
                        problems[f"{scenario.name} ({name})"] = found
                if options.warmup:
                    _wrk(options, wrk_path, script, server, options.warmup)
                workers = server.worker_pids()
                cpu_before = servers.cpu_seconds(workers)
                result = _wrk(options, wrk_path, script, server, options.duration)
                cpu_us = (servers.cpu_seconds(workers) - cpu_before) / max(result.requests, 1) * 1e6
                load = round(os.getloadavg()[0], 2)
                runs.append(report.Run(scenario.name, name, round_number, result, load, round(cpu_us)))
                say(
                    f"  round {round_number} {scenario.name:<10} {name:<8} {result.rps:9.1f} req/s  "
                    f"p50 {result.latency_ms['p50']:7.2f} ms  p99 {result.latency_ms['p99']:8.2f} ms  "
                    f"CPU {cpu_us:5.0f} µs/req  non-2xx {result.non_2xx}  errors {result.socket_errors}  "
                    f"load {load:.1f}  statuses {result.statuses}"
                )
    return runs, problems


def build_scenarios(
    names: Sequence[str], sown: seed.Seed, tokens: dict[str, str], app: servers.ServerProcess
) -> tuple[list[scenarios.Scenario], dict[str, str]]:
    built, skipped = [], {}
    with httpx.Client(base_url=app.base_url, timeout=30) as client:
        for name in names:
            try:
                built += scenarios.build([name], sown, tokens, client)
            except httpx.HTTPError as exc:
                skipped[name] = f"{type(exc).__name__}: {exc}"
                say(f"  skipping {name}: {skipped[name]}")
    return built, skipped


def seed_plan(options: Options) -> dict[str, int]:
    return {
        "user-1": options.todos,
        "user-2": options.todos,
        scenarios.BIG_USER: options.big_todos,
        scenarios.SMALL_USER: options.small_todos,
    }


def run(options: Options) -> Path:
    wrk_path = wrk.require_wrk()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = options.output or RESULTS_DIR / f"{stamp}.json"
    with prepared(options.database_url, seed_plan(options), keep=options.keep_database) as ready:
        env_info = environment(ready.database_url)
        started_at = time.time()
        with running_servers(options, ready.database_url, ready.signer, ready.workdir) as live:
            targets: dict[str, servers.ServerProcess] = live["servers"]
            with servers.RssSampler(list(targets.values())) as sampler:
                built, skipped = build_scenarios(options.scenarios, ready.seed, ready.tokens, targets[report.APP])
                runs, problems = measure(options, wrk_path, built, targets, ready.workdir)
            logs = _keep_logs(targets.values(), output)
    rows = report.summarize(runs)
    scaling = report.list_scaling(rows)
    record = {
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "wall_seconds": round(time.time() - started_at, 1),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "postgresql_server": ready.server.description,
        "environment": env_info | {"load_average_end": os.getloadavg()},
        "commands": live["commands"],
        "seed": {"rows": ready.seed.rows, "seconds": round(ready.seed.seconds, 1), "todos": seed_plan(options)},
        "scenarios": {s.name: s.description for s in built},
        "skipped": skipped,
        "preflight_problems": problems,
        "summary": [asdict(row) for row in rows],
        "list_scaling": scaling,
        "peak_rss_mib_per_worker": sampler.peak_mib(),
        "server_logs": logs,
        "runs": [r.as_json() for r in runs],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    _print_summary(options, rows, scaling, sampler.peak_mib(), problems, skipped, logs, output)
    return output


def _keep_logs(targets: Any, output: Path) -> dict[str, str]:
    """Copy non-empty server logs next to the JSON (tracebacks of 5xx responses end up there)."""
    kept = {}
    for server in targets:
        if server.log_path.exists() and server.log_path.stat().st_size:
            destination = output.with_name(f"{output.stem}-{server.name}.log")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(server.log_path, destination)
            kept[server.name] = str(destination)
    return kept


def _print_summary(
    options: Options,
    rows: Sequence[report.Row],
    scaling: dict[str, Any] | None,
    rss: dict[str, list[float]],
    problems: dict[str, list[str]],
    skipped: dict[str, str],
    logs: dict[str, str],
    output: Path,
) -> None:
    print(
        f"\ntodo-api vs floor: {options.workers} workers each, wrk -t{options.threads} -c{options.connections}, "
        f"{options.warmup} s warm-up + {options.duration} s measured, median of {options.rounds} round(s)\n"
    )
    print(report.table(rows))
    if scaling is not None:
        verdict = "within" if scaling["within_target"] else "NOT within"
        print(
            f"\nlist-100k vs list-1k: req/s ratio {scaling['rps_1k_over_100k']:.2f}, "
            f"p50 ratio {scaling['p50_100k_over_1k']:.2f} ({verdict} the {scaling['target']}x target)"
        )
    for name, peaks in rss.items():
        print(f"peak RSS per worker, {name}: {', '.join(f'{mib:.1f} MiB' for mib in sorted(peaks))}")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    for name, lines in problems.items():
        print(f"preflight {name}: " + "; ".join(lines))
    for name, path in logs.items():
        print(f"{name} wrote log output (errors?): {path}")
    print(f"\nresults: {output}")
