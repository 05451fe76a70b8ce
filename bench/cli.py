"""Command line of `python -m bench`: flags, with environment variables as their defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import CATALOGUE, DEFAULT_SCENARIOS


@dataclass(frozen=True, slots=True)
class Options:
    duration: int
    warmup: int
    rounds: int
    connections: int
    threads: int
    workers: int
    scenarios: tuple[str, ...]
    floor: bool
    database_url: str | None
    keep_database: bool
    todos: int
    big_todos: int
    small_todos: int
    output: Path | None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _scenarios(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in CATALOGUE]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(CATALOGUE)}")
    return names


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load-benchmark todo-api (2 workers, wrk) against a minimal raw-ASGI floor. See bench/README.md.",
    )
    add = parser.add_argument
    add("--duration", type=int, default=_env_int("BENCH_DURATION", 15), help="measured seconds per run (15)")
    add("--warmup", type=int, default=_env_int("BENCH_WARMUP", 3), help="warm-up seconds before each run (3)")
    add("--rounds", type=int, default=_env_int("BENCH_ROUNDS", 2), help="A/B rounds; medians are reported (2)")
    add("--connections", type=int, default=_env_int("BENCH_CONNECTIONS", 64), help="wrk -c (64)")
    add("--threads", type=int, default=_env_int("BENCH_THREADS", 2), help="wrk -t (2)")
    add("--workers", type=int, default=_env_int("BENCH_WORKERS", 2), help="server worker processes (2)")
    add(
        "--scenarios",
        type=_scenarios,
        default=_scenarios(os.environ.get("BENCH_SCENARIOS") or ",".join(DEFAULT_SCENARIOS)),
        help=f"comma-separated subset of: {', '.join(CATALOGUE)} (all)",
    )
    add("--no-floor", dest="floor", action="store_false", help="skip the floor server")
    add(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or None,
        help="PostgreSQL server to create the run's database on (BENCH_DATABASE_URL; default: embedded)",
    )
    add("--keep-database", action="store_true", help="do not drop the run's database at the end")
    add("--todos", type=int, default=10_000, help="todos for each of the two main users (10000)")
    add("--big-todos", type=int, default=100_000, help="todos of the list-100k user (100000)")
    add("--small-todos", type=int, default=1_000, help="todos of the list-1k user (1000)")
    add("--output", type=Path, default=None, help="JSON result file (default: bench/results/<UTC time>.json)")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.rounds < 1 or args.connections < args.threads:
        parser.error("need --duration >= 1, --warmup >= 0, --rounds >= 1 and --connections >= --threads")
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> None:
    from bench.session import run  # imported late: `--help` stays instant

    run(parse(argv))
