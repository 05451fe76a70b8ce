"""Runs, medians over rounds, and the comparisons the tables show (ratios to the floors, the cost of
rate limiting and the access log, round trips per request)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.configs import APP, FLOOR_LIKE, FLOOR_PLAIN, FLOOR_STACK
from bench.wrk import WrkResult

LIST_SCALING_TARGET = 1.2
# Where a configuration's todo-api rows find their floors (the floors do not rate-limit, so the
# Redis and capacity rows compare with the floors measured beside the production server).
FLOOR_HOME = {"production": "production", "redis": "production", "capacity": "production", "remote": "remote"}

type Key = tuple[str, str, str]  # (scenario, config, server)


@dataclass(frozen=True, slots=True)
class Run:
    scenario: str
    config: str
    server: str
    round: int
    result: WrkResult
    load_1m: float  # 1-minute load average right after the run: other work on the machine skews it
    cpu_us: float | None = None  # the server's workers' CPU time per completed request
    relay: dict[str, Any] | None = None  # round trips etc. per request, when PostgreSQL is behind the relay
    worker_restarted: bool = False  # uvicorn replaced a worker during the run

    def as_json(self) -> dict[str, Any]:
        head = {"scenario": self.scenario, "config": self.config, "server": self.server, "round": self.round}
        extra = {"load_1m": self.load_1m, "cpu_us_per_request": self.cpu_us, "relay": self.relay}
        extra["worker_restarted"] = self.worker_restarted
        return head | extra | self.result.as_json()


@dataclass(slots=True)
class Row:
    scenario: str
    config: str
    server: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect/read/write/timeout), summed over rounds
    non_2xx: int  # summed over rounds
    cpu_us: float | None = None  # median over rounds of the workers' CPU µs per request
    round_trips: float | None = None  # PostgreSQL round trips per request under load (behind the relay)
    round_trips_warm: float | None = None  # the counting pass: one user, warm caches
    worker_restarts: int = 0
    relay_cpu_us: float | None = None  # the relay's own CPU per request (remote configuration)
    compared: dict[str, float] = field(default_factory=dict)  # ratios, see `compare`

    @property
    def key(self) -> Key:
        return self.scenario, self.config, self.server


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[Run]) -> list[Row]:
    groups: dict[Key, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.config, run.server), []).append(run)
    rows = []
    for (scenario, config, server), group in groups.items():
        results = [run.result for run in group]
        relays = [run.relay for run in group if run.relay is not None]
        cpu = _median([run.cpu_us for run in group])
        trips = _median([relay["round_trips"] for relay in relays])
        relay_cpu = _median([relay["relay_cpu_us"] for relay in relays])
        rows.append(
            Row(
                scenario=scenario,
                config=config,
                server=server,
                rounds=len(group),
                rps=round(statistics.median(r.rps for r in results), 1),
                p50_ms=round(statistics.median(r.latency_ms["p50"] for r in results), 2),
                p99_ms=round(statistics.median(r.latency_ms["p99"] for r in results), 2),
                errors=sum(r.socket_errors for r in results),
                non_2xx=sum(r.non_2xx for r in results),
                cpu_us=None if cpu is None else round(cpu),
                round_trips=None if trips is None else round(trips, 2),
                relay_cpu_us=None if relay_cpu is None else round(relay_cpu),
                worker_restarts=sum(run.worker_restarted for run in group),
            )
        )
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def compare(rows: Sequence[Row], counted: Sequence[dict[str, Any]] = ()) -> None:
    """Fill each row's `round_trips_warm` from the counting pass (the remote configuration's rows take
    the production server's), and its `compared`:

    - `rps_vs_like` / `rps_vs_plain`: req/s ÷ the like-for-like / plain floor's (todo-api rows);
    - `cpu_vs_like`, `p50_vs_like`, `p99_vs_like`: CPU per request and latency ÷ the like-for-like floor's;
    - `rps_vs_capacity`: this configuration's req/s ÷ the capacity configuration's (what rate
      limiting and the access log leave of the throughput);
    - `rps_vs_stack`, `cpu_vs_stack`: req/s and CPU per request ÷ the FastAPI + SQLModel floor's
      (`bench.stackfloor`; `me` and `get`), and on that floor's own rows its CPU per request ÷ the
      like-for-like floor's (what the framework and the ORM cost before any of todo-api's code).
    """
    by_key = {row.key: row for row in rows}
    trips = {(c["scenario"], c["config"], c["server"]): c["round_trips"] for c in counted}
    for row in rows:
        config = "production" if row.config == "remote" else row.config
        row.round_trips_warm = trips.get((row.scenario, config, row.server))
        home = FLOOR_HOME.get(row.config, row.config)
        like, plain = by_key.get((row.scenario, home, FLOOR_LIKE)), by_key.get((row.scenario, home, FLOOR_PLAIN))
        if row.server == FLOOR_STACK:
            found = {"cpu_vs_like": _ratio(row.cpu_us, like.cpu_us if like else None)}
            row.compared = {name: value for name, value in found.items() if value is not None}
        if row.server != APP:
            continue
        stack = by_key.get((row.scenario, home, FLOOR_STACK))
        capacity = by_key.get((row.scenario, "capacity", APP))
        found = {
            "rps_vs_like": _ratio(row.rps, like.rps if like else None),
            "rps_vs_plain": _ratio(row.rps, plain.rps if plain else None),
            "cpu_vs_like": _ratio(row.cpu_us, like.cpu_us if like else None),
            "p50_vs_like": _ratio(row.p50_ms, like.p50_ms if like else None),
            "p99_vs_like": _ratio(row.p99_ms, like.p99_ms if like else None),
            "rps_vs_capacity": _ratio(row.rps, capacity.rps if capacity and row.config != "capacity" else None),
            "rps_vs_stack": _ratio(row.rps, stack.rps if stack else None),
            "cpu_vs_stack": _ratio(row.cpu_us, stack.cpu_us if stack else None),
        }
        row.compared = {name: value for name, value in found.items() if value is not None}


def list_scaling(rows: Sequence[Row]) -> dict[str, Any] | None:
    """list-100k against list-1k (todo-api): the first page must not get slower with more rows."""
    found = {row.scenario: row for row in rows if row.server == APP and row.scenario in {"list-100k", "list-1k"}}
    big, small = found.get("list-100k"), found.get("list-1k")
    if big is None or small is None or not big.rps or not small.p50_ms:
        return None
    throughput = small.rps / big.rps
    latency = big.p50_ms / small.p50_ms
    return {
        "config": big.config,
        "rps_1k_over_100k": round(throughput, 3),
        "p50_100k_over_1k": round(latency, 3),
        "target": LIST_SCALING_TARGET,
        "within_target": throughput <= LIST_SCALING_TARGET and latency <= LIST_SCALING_TARGET,
    }
