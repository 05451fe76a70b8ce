"""Command line of `python -m bench`: flags, with environment variables as their defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.configs import REMOTE_CONNECTIONS, REMOTE_DELAY_MS, configurations
from bench.scenarios import CATALOGUE, DEFAULT_SCENARIOS

DEFAULT_CONFIGS = ("production", "redis", "capacity", "remote")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"


@dataclass(frozen=True, slots=True)
class Options:
    duration: int
    warmup: int
    rounds: int
    connections: int
    threads: int
    workers: int
    scenarios: tuple[str, ...]
    configs: tuple[str, ...]
    floor: bool
    round_trips: bool
    rt_requests: int
    database_url: str | None
    redis_url: str
    remote_delay_ms: float
    remote_connections: int
    keep_database: bool
    users: int
    crowd_todos: int
    todos: int
    big_todos: int
    small_todos: int
    output: Path | None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _names(known: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(value: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
        return names

    return parse


def _measurement(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    scenarios, configs = _names(tuple(CATALOGUE), "scenario(s)"), _names(tuple(configurations("")), "config(s)")
    add("--duration", type=int, default=_env_int("BENCH_DURATION", 10), help="measured seconds per run (10)")
    add("--warmup", type=int, default=_env_int("BENCH_WARMUP", 3), help="warm-up seconds before each run (3)")
    add(
        "--rounds",
        type=int,
        default=_env_int("BENCH_ROUNDS", 2),
        help="rounds over every configuration; medians (2; 0: only the round-trip pass)",
    )
    add("--connections", type=int, default=_env_int("BENCH_CONNECTIONS", 64), help="wrk -c (64)")
    add("--threads", type=int, default=_env_int("BENCH_THREADS", 2), help="wrk -t (2)")
    add("--workers", type=int, default=_env_int("BENCH_WORKERS", 2), help="server worker processes (2)")
    add(
        "--scenarios",
        type=scenarios,
        default=scenarios(os.environ.get("BENCH_SCENARIOS") or ",".join(DEFAULT_SCENARIOS)),
        help=f"comma-separated subset of: {', '.join(CATALOGUE)} (all)",
    )
    add(
        "--configs",
        type=configs,
        default=configs(os.environ.get("BENCH_CONFIGS") or ",".join(DEFAULT_CONFIGS)),
        help=f"comma-separated subset of: {', '.join(DEFAULT_CONFIGS)} (all)",
    )
    add("--no-floor", dest="floor", action="store_false", help="skip the floors")
    add("--no-round-trips", dest="round_trips", action="store_false", help="skip the round-trip counting pass")
    add("--rt-requests", type=int, default=20, help="requests counted per scenario in the round-trip pass (20)")


def _setup(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or None,
        help="PostgreSQL server to create the run's database on (BENCH_DATABASE_URL; default: embedded)",
    )
    add(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL,
        help=f"REDIS_URL of the redis configuration (BENCH_REDIS_URL; {DEFAULT_REDIS_URL})",
    )
    add("--remote-delay-ms", type=float, default=REMOTE_DELAY_MS, help="remote: delay each way (1)")
    add(
        "--remote-connections",
        type=int,
        default=REMOTE_CONNECTIONS,
        help=f"remote: wrk -c, few enough not to saturate the servers ({REMOTE_CONNECTIONS})",
    )
    add("--keep-database", action="store_true", help="do not drop the run's database at the end")
    add("--users", type=int, default=_env_int("BENCH_USERS", 1000), help="distinct users, each with a token (1000)")
    add("--crowd-todos", type=int, default=60, help="todos of each user but the four named ones (60)")
    add("--todos", type=int, default=10_000, help="todos of user-1 and user-2, the list-deep users (10000)")
    add("--big-todos", type=int, default=100_000, help="todos of the list-100k user (100000)")
    add("--small-todos", type=int, default=1_000, help="todos of the list-1k user (1000)")
    add("--output", type=Path, default=None, help="JSON result file (default: bench/results/<UTC time>.json)")


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load-benchmark todo-api as deployed (2 workers, wrk, 1 000 users) against two floors. "
        "See bench/README.md.",
    )
    _measurement(parser)
    _setup(parser)
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.rounds < 0 or args.connections < args.threads:
        parser.error("need --duration >= 1, --warmup >= 0, --rounds >= 0 and --connections >= --threads")
    if args.rounds == 0 and not args.round_trips:
        parser.error("--rounds 0 runs only the round-trip pass: do not combine it with --no-round-trips")
    if args.users < 4 or args.rt_requests < 1 or args.remote_delay_ms < 0:
        parser.error("need --users >= 4, --rt-requests >= 1 and --remote-delay-ms >= 0")
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> None:
    from bench.session import run  # imported late: `--help` stays instant

    run(parse(argv))
