"""The Markdown tables `python -m bench` prints (readable in a terminal, pasteable into the README)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.configs import APP, FLOOR_LIKE, FLOOR_PLAIN, FLOOR_STACK
from bench.report import Row

SERVER_LABELS = {
    ("production", APP): "todo-api",
    ("redis", APP): "todo-api, Redis limiter",
    ("capacity", APP): "todo-api, capacity",
    ("remote", APP): "todo-api",
    ("production", FLOOR_LIKE): "floor, like-for-like",
    ("production", FLOOR_PLAIN): "floor, plain",
    ("production", FLOOR_STACK): "floor, FastAPI + SQLModel",
    ("remote", FLOOR_LIKE): "floor, like-for-like",
    ("remote", FLOOR_PLAIN): "floor, plain",
}
COMMON = ("scenario", "server", "req/s", "p50 ms", "p99 ms", "errors", "non-2xx", "CPU µs/req", "PG round trips")
# "PG round trips": per request, one user with warm caches (the counting pass); the remote table
# adds the figure measured under load (cache misses, new connections and housekeeping included).


def render(header: Sequence[str], body: Sequence[Sequence[str]], left: int = 2) -> str:
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        aligned = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(aligned) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _n(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _common(row: Row) -> list[str]:
    return [
        row.scenario,
        SERVER_LABELS.get((row.config, row.server), f"{row.server} ({row.config})"),
        f"{row.rps:.1f}",
        f"{row.p50_ms:.2f}",
        f"{row.p99_ms:.2f}",
        str(row.errors),
        str(row.non_2xx),
        _n(row.cpu_us) + (" (restart)" if row.worker_restarts else ""),
        _n(row.round_trips_warm, 2),
    ]


def _ordered(rows: Sequence[Row], configs: Sequence[str]) -> list[Row]:
    order = {name: i for i, name in enumerate(configs)}
    servers = {APP: 0, FLOOR_LIKE: 1, FLOOR_PLAIN: 2, FLOOR_STACK: 3}
    chosen = [row for row in rows if row.config in order]
    scenarios = list(dict.fromkeys(row.scenario for row in chosen))
    return sorted(chosen, key=lambda r: (scenarios.index(r.scenario), servers[r.server], order[r.config]))


def production(rows: Sequence[Row]) -> str:
    header = (*COMMON, "÷ like-for-like floor", "÷ plain floor", "CPU ÷ like-for-like")
    body = [
        [
            *_common(r),
            _x(r.compared.get("rps_vs_like")),
            _x(r.compared.get("rps_vs_plain")),
            _x(r.compared.get("cpu_vs_like")),
        ]
        for r in _ordered(rows, ("production", "redis"))
    ]
    return render(header, body)


def stack(rows: Sequence[Row]) -> str:
    """todo-api and the like-for-like floor against the FastAPI + SQLModel floor (`me`, `get`)."""
    by_key = {row.key: row for row in rows}
    header = (
        "scenario",
        "todo-api CPU µs/req",
        "FastAPI + SQLModel floor CPU µs/req",
        "like-for-like floor CPU µs/req",
        "FastAPI + SQLModel ÷ like-for-like (CPU)",
        "todo-api ÷ FastAPI + SQLModel (CPU)",
        "todo-api ÷ FastAPI + SQLModel (req/s)",
    )
    body = []
    for r in _ordered(rows, ("production",)):
        if r.server != FLOOR_STACK:
            continue
        ours, like = by_key.get((r.scenario, "production", APP)), by_key.get((r.scenario, "production", FLOOR_LIKE))
        body.append(
            [
                r.scenario,
                _n(ours.cpu_us if ours else None),
                _n(r.cpu_us),
                _n(like.cpu_us if like else None),
                _x(r.compared.get("cpu_vs_like")),
                _x(ours.compared.get("cpu_vs_stack") if ours else None),
                _x(ours.compared.get("rps_vs_stack") if ours else None),
            ]
        )
    return render(header, body, left=1)


def capacity(rows: Sequence[Row]) -> str:
    by_key = {row.key: row for row in rows}
    header = (*COMMON, "÷ like-for-like floor", "÷ plain floor", "production ÷ capacity", "Redis ÷ capacity")
    body = []
    for r in _ordered(rows, ("capacity",)):
        prod, redis = by_key.get((r.scenario, "production", APP)), by_key.get((r.scenario, "redis", APP))
        body.append(
            [
                *_common(r),
                _x(r.compared.get("rps_vs_like")),
                _x(r.compared.get("rps_vs_plain")),
                _x(prod.compared.get("rps_vs_capacity") if prod else None),
                _x(redis.compared.get("rps_vs_capacity") if redis else None),
            ]
        )
    return render(header, body)


def remote(rows: Sequence[Row]) -> str:
    header = (
        *COMMON,
        "PG round trips under load",
        "relay CPU µs/req",
        "p50 ÷ like-for-like",
        "p99 ÷ like-for-like",
        "req/s ÷ like-for-like",
    )
    body = [
        [
            *_common(r),
            _n(r.round_trips, 2),
            _n(r.relay_cpu_us),
            _x(r.compared.get("p50_vs_like")),
            _x(r.compared.get("p99_vs_like")),
            _x(r.compared.get("rps_vs_like")),
        ]
        for r in _ordered(rows, ("remote",))
    ]
    return render(header, body)


def round_trips(counted: Sequence[dict[str, Any]]) -> str:
    """Round trips per request from the counting pass: one column per (configuration, server)."""
    present = {(c["config"], c["server"]) for c in counted}
    columns = [key for key in SERVER_LABELS if key in present]
    values = {(c["scenario"], c["config"], c["server"]): c["round_trips"] for c in counted}
    scenarios = list(dict.fromkeys(c["scenario"] for c in counted))
    header = ("scenario", *(SERVER_LABELS[key] for key in columns))
    body = [[name, *(_n(values.get((name, *key)), 2) for key in columns)] for name in scenarios]
    return render(header, body, left=1)
