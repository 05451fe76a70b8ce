"""Medians over rounds, the results table, and the JSON record."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.wrk import WrkResult

APP, FLOOR = "todo-api", "floor"
LIST_SCALING_TARGET = 1.2


@dataclass(frozen=True, slots=True)
class Run:
    scenario: str
    server: str
    round: int
    result: WrkResult
    load_1m: float  # 1-minute load average right after the run: other work on the machine skews it
    cpu_us: float | None = None  # the server's workers' CPU time per completed request

    def as_json(self) -> dict[str, Any]:
        head = {"scenario": self.scenario, "server": self.server, "round": self.round, "load_1m": self.load_1m}
        return head | {"cpu_us_per_request": self.cpu_us} | self.result.as_json()


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    server: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect/read/write/timeout), summed over rounds
    non_2xx: int  # summed over rounds
    vs_floor: float | None  # todo-api req/s divided by floor req/s (todo-api rows only)
    cpu_us: float | None = None  # median over rounds of the workers' CPU µs per request


def summarize(runs: Sequence[Run]) -> list[Row]:
    groups: dict[tuple[str, str], list[WrkResult]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.server), []).append(run.result)
        if run.cpu_us is not None:
            cpu.setdefault((run.scenario, run.server), []).append(run.cpu_us)
    medians = {key: statistics.median(r.rps for r in results) for key, results in groups.items()}
    rows = []
    for (scenario, server), results in groups.items():
        floor = medians.get((scenario, FLOOR))
        rows.append(
            Row(
                scenario=scenario,
                server=server,
                rounds=len(results),
                rps=round(medians[scenario, server], 1),
                p50_ms=round(statistics.median(r.latency_ms["p50"] for r in results), 2),
                p99_ms=round(statistics.median(r.latency_ms["p99"] for r in results), 2),
                errors=sum(r.socket_errors for r in results),
                non_2xx=sum(r.non_2xx for r in results),
                vs_floor=round(medians[scenario, server] / floor, 2) if server == APP and floor else None,
                cpu_us=round(statistics.median(cpu[scenario, server])) if (scenario, server) in cpu else None,
            )
        )
    return rows


def table(rows: Sequence[Row]) -> str:
    """A Markdown table: readable in a terminal, pasteable into the README."""
    header = ("scenario", "server", "req/s", "p50 ms", "p99 ms", "errors", "non-2xx", "vs floor", "CPU µs/req")
    body = [
        (
            row.scenario,
            row.server,
            f"{row.rps:.1f}",
            f"{row.p50_ms:.2f}",
            f"{row.p99_ms:.2f}",
            str(row.errors),
            str(row.non_2xx),
            "" if row.vs_floor is None else f"{row.vs_floor:.2f}x",
            "" if row.cpu_us is None else f"{row.cpu_us:.0f}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        aligned = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(aligned) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= 2 else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([render(header), rule, *(render(line) for line in body)])


def list_scaling(rows: Sequence[Row]) -> dict[str, Any] | None:
    """list-100k against list-1k (todo-api): the first page must not get slower with more rows."""
    found = {row.scenario: row for row in rows if row.server == APP and row.scenario in {"list-100k", "list-1k"}}
    big, small = found.get("list-100k"), found.get("list-1k")
    if big is None or small is None or not big.rps or not small.p50_ms:
        return None
    throughput = small.rps / big.rps
    latency = big.p50_ms / small.p50_ms
    return {
        "rps_1k_over_100k": round(throughput, 3),
        "p50_100k_over_1k": round(latency, 3),
        "target": LIST_SCALING_TARGET,
        "within_target": throughput <= LIST_SCALING_TARGET and latency <= LIST_SCALING_TARGET,
    }
