"""Blocks: one configuration's servers started (behind the relay where it says so), every scenario
measured on each of them, the servers stopped. The session runs the round-trip pass and then the
measured rounds as blocks, so at most one todo-api and one floor hold database connections at a
time (PostgreSQL's default `max_connections` is 100; each server takes up to 2 x 15)."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bench import REPO_ROOT, lua, pg, scenarios, servers, wrk
from bench.cli import Options
from bench.configs import APP, FLOOR_LIKE, FLOOR_PLAIN, FLOOR_STACK, STACK_SCENARIOS, Config, Secrets, server_env
from bench.fixture import Prepared, say
from bench.limits import rate_limit_peak
from bench.logs import digest
from bench.remote import Relay, per_request
from bench.report import Run

FLOOR_MODE_HEADER = "X-Bench-Floor"
WARM_REQUESTS = 5  # before the counted ones: the worker's token and identity caches hold the user
# A server that sat idle while other servers of its block ran (the production block runs each
# scenario on todo-api, then on the floors: ~45 s) is slower for its first seconds. With the usual
# 3 s warm-up todo-api served 9-14 % less after such a gap than the same scenario in a block of its
# own, in 4 of 4 alternations; with 10 s, as much (bench/README.md, "Against issue 16's targets").
IDLE_AFTER_SECONDS = 20.0
REWARM_SECONDS = 10


WRITING_ACTIONS = frozenset({"create", "patch", "move"})


def run_order(names: Sequence[str]) -> list[str]:
    """The scenarios that only read first, then those that write, each group in the order given.

    Every server of a block works on the block's one copy of the database, and the production block
    has three that write (todo-api and the floors: their creates add some 20 todos per user, in no
    list). A read measured after the writes would read more there than in the other blocks, which
    have only todo-api's writes: `position`'s page, a sync's changes. Reads first, every block's
    reads see the seeded data, so production ÷ capacity compares the same work."""
    writes = {name for name in names if any(a in WRITING_ACTIONS for a, _ in scenarios.CATALOGUE[name][1])}
    return [name for name in names if name not in writes] + [name for name in names if name in writes]


def warmup_seconds(base: int, idle_seconds: float | None) -> int:
    """The warm-up before a measured run: `base` (--warmup), or at least `REWARM_SECONDS` when the
    server has been idle longer than `IDLE_AFTER_SECONDS` since its last measured run (None: none
    yet, it was just started). `--warmup 0` stays 0."""
    if base and idle_seconds is not None and idle_seconds > IDLE_AFTER_SECONDS:
        return max(base, REWARM_SECONDS)
    return base


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # APP, FLOOR_LIKE, FLOOR_PLAIN or FLOOR_STACK
    server: servers.ServerProcess
    relay: Relay | None
    headers: dict[str, str]


def block_tag(stem: str, config: str, taken: set[str]) -> str:
    """`r1-capacity`; `r1b-capacity` for a configuration named again in `--configs` (a mirrored
    order), so each block's server logs and failures are its own. Adds the tag to `taken`."""
    tag, suffixes = f"{stem}-{config}", iter("bcdefghijklmnopqrstuvwxyz")
    while tag in taken:
        tag = f"{stem}{next(suffixes)}-{config}"
    taken.add(tag)
    return tag


@dataclass
class Session:
    options: Options
    wrk_path: str
    ready: Prepared
    secrets: Secrets
    output: Path
    built: dict[str, scenarios.Scenario] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    round_trips: list[dict[str, Any]] = field(default_factory=list)  # the counting pass, per request
    rss: dict[str, float] = field(default_factory=dict)
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate_limit_peaks: dict[str, int | None] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    failed_blocks: dict[str, str] = field(default_factory=dict)
    _requests: dict[str, int] = field(default_factory=dict)
    _tags: set[str] = field(default_factory=set)  # each block's, so its servers' log files are its own
    _preflighted: set[tuple[str, ...]] = field(default_factory=set)
    _last_run_end: dict[str, float] = field(default_factory=dict)  # server process name -> monotonic time

    def plan(self, config: Config) -> list[str]:
        """The scenarios a configuration runs: single-user ones only without a rate limit."""
        names = []
        for name in self.options.scenarios:
            if config.rate_limited and not scenarios.is_crowd(name):
                reason = "one user at thousands of requests per second: the rate limit would answer 429"
                self.not_run.setdefault(config.name, {})[name] = reason
            else:
                names.append(name)
        return names

    def block(self, config: Config, round_number: int, *, counting: bool = False) -> None:
        tag = block_tag("count" if counting else f"r{round_number}", config.name, self._tags)
        say(f"{tag}: {config.description}")
        try:
            self._block(config, tag, round_number, counting)
        except servers.StartFailed as exc:  # one server that would not start must not void the whole run
            self.failed_blocks[tag] = str(exc)
            say(f"  {tag} skipped: {exc}")

    def build(self, config: Config) -> None:
        """Every scenario, built before the first block on a todo-api server over the seeded database
        itself (rate limiting off): what the `sync` scenarios change to take their tokens is then
        part of the data every block's copy starts from."""
        quiet = replace(config, overrides={"RATE_LIMIT_REQUESTS": "0", "LOG_LEVEL": "warning"}, floors=())
        say("build: every scenario's paths and tokens, on the seeded database")
        with self._servers(replace(quiet, delay_ms=None), "build", self.ready.database_url) as targets:
            for name in self.options.scenarios:
                self._scenario(name, targets[APP])

    def _block(self, config: Config, tag: str, round_number: int, counting: bool) -> None:
        # Each block starts from the same data: a fresh copy of the seeded (and built) database.
        # The writing scenarios (create, patch, move) change what the later ones read; on one
        # database the later blocks read what the earlier ones wrote.
        copying = time.perf_counter()
        with pg.copy_of(self.ready.server.url, self.ready.database_url) as url:
            say(f"  on a fresh copy of the seeded database ({time.perf_counter() - copying:.1f} s to copy)")
            self._block_on(url, config, tag, round_number, counting)

    def _block_on(self, url: str, config: Config, tag: str, round_number: int, counting: bool) -> None:
        with (
            self._servers(config, tag, url) as targets,
            servers.RssSampler([t.server for t in targets.values()]) as rss,
        ):
            for name in run_order(self.plan(config)):
                scenario = self._scenario(name, targets[APP])
                for target in targets.values():
                    if scenario is None or (target.name != APP and not scenario.floor):
                        continue
                    if target.name == FLOOR_STACK and scenario.name not in STACK_SCENARIOS:
                        continue
                    self._preflight(config, scenario, target)
                    if counting:
                        self._count(config, scenario, target)
                    else:
                        self._measure(config, scenario, target, round_number)
        if not counting:
            for process, peaks in rss.peak_mib().items():
                kind = process.split("-", 2)[-1]  # "<tag>-todo-api" -> "todo-api"
                key = f"{config.name} {kind}"
                self.rss[key] = max([self.rss.get(key, 0.0), *peaks])
        if config.rate_limited:
            peak = rate_limit_peak(config, url)
            self.rate_limit_peaks[config.name] = max(
                filter(None, [peak, self.rate_limit_peaks.get(config.name)]), default=None
            )

    def _todo_api_argv(self, port: int) -> list[str]:
        return [
            *(servers.executable("todo-api"), "serve", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", str(self.options.workers)),
        ]

    def _floor_argv(self, port: int, app: str = "bench.floor:app") -> list[str]:
        return [
            *(sys.executable, "-m", "uvicorn", app, "--app-dir", str(REPO_ROOT)),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(self.options.workers)),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"),
            # uvicorn kills a worker not ready within 5 s; on a busy machine imports take longer
            *("--no-server-header", "--timeout-worker-healthcheck", "60"),
        ]

    @contextmanager
    def _servers(self, config: Config, tag: str, database_url: str) -> Iterator[dict[str, Target]]:
        workdir, started, relays = self.ready.workdir, [], []

        def start(name: str, argv: list[str], floor: bool) -> tuple[servers.ServerProcess, Relay | None]:
            url, relay = database_url, None
            if config.delay_ms is not None:
                relay = Relay.start(url, config.delay_ms, workdir / f"{tag}-{name}-relay.log")
                relays.append(relay)
                url = relay.url_for(url)
            port = int(argv[argv.index("--port") + 1])
            self.commands[f"{config.name} {name}"] = argv[1:]
            env = server_env(config, url, self.secrets, floor=floor)
            process = servers.start(f"{tag}-{name}", argv, env, workdir, port, self.options.workers)
            started.append(process)
            return process, relay

        try:
            app, relay = start(APP, self._todo_api_argv(servers.free_port()), floor=False)
            targets = {APP: Target(APP, app, relay, {})}
            if config.floors and self.options.floor:
                floor, relay = start("floor", self._floor_argv(servers.free_port()), floor=True)
                for mode in config.floors:
                    if mode != FLOOR_STACK:
                        headers = {FLOOR_MODE_HEADER: "like"} if mode == FLOOR_LIKE else {}
                        targets[mode] = Target(mode, floor, relay, headers)
                if FLOOR_STACK in config.floors and STACK_SCENARIOS & set(self.options.scenarios):
                    argv = self._floor_argv(servers.free_port(), "bench.stackfloor:app")
                    stack, relay = start("stack-floor", argv, floor=True)
                    targets[FLOOR_STACK] = Target(FLOOR_STACK, stack, relay, {})
            yield targets
        finally:
            for process in started:
                process.stop()
            for relay in relays:
                relay.stop()
            for process in started:
                self.logs[process.name] = digest(process.log_path, self.output, self._requests.get(process.name, 0))

    def _scenario(self, name: str, app: Target) -> scenarios.Scenario | None:
        if name not in self.built and name not in self.skipped:
            try:
                with httpx.Client(base_url=app.server.base_url, timeout=30) as client:
                    self.built[name] = scenarios.build(name, self.ready.seed, self.ready.tokens, client)
            except httpx.HTTPError as exc:
                self.skipped[name] = f"{type(exc).__name__}: {exc}"
                say(f"  skipping {name}: {self.skipped[name]}")
        return self.built.get(name)

    def _script(self, scenario: scenarios.Scenario, target: Target) -> Path:
        path = self.ready.workdir / f"{scenario.name}-{'like' if target.headers else 'plain'}.lua"
        if not path.exists():
            path.write_text(lua.script(scenario.name, scenario.identities, scenario.mix, target.headers))
        return path

    def _sent(self, target: Target, requests: int) -> None:
        """Requests that write an access line (the plain floor writes none)."""
        if target.name != FLOOR_PLAIN:
            self._requests[target.server.name] = self._requests.get(target.server.name, 0) + requests

    def _wrk(self, script: Path, target: Target, seconds: int, connections: int | None) -> wrk.WrkResult:
        o = self.options
        result = wrk.run(
            self.wrk_path,
            script,
            target.server.base_url,
            threads=o.threads,
            connections=max(connections or o.connections, o.threads),
            seconds=seconds,
        )
        self._sent(target, result.requests)
        return result

    def _preflight(self, config: Config, scenario: scenarios.Scenario, target: Target) -> None:
        key = (config.name, scenario.name, target.name)
        if key in self._preflighted:
            return
        self._preflighted.add(key)
        with httpx.Client(base_url=target.server.base_url, headers=target.headers, timeout=30) as client:
            found = scenarios.preflight(client, scenario)
        self._sent(target, len(scenario.mix))
        for line in found:
            say(f"  preflight {scenario.name} on {config.name} {target.name}: {line}")
        if found:
            self.problems[f"{scenario.name} ({config.name} {target.name})"] = found

    def _count(self, config: Config, scenario: scenarios.Scenario, target: Target) -> None:
        """Round trips per request with warm caches: one user, one keep-alive connection (so one
        worker), `WARM_REQUESTS` first, then `rt_requests` counted in the scenario's proportions."""
        assert target.relay is not None
        identity, count = scenario.identities[0], self.options.rt_requests
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=target.server.base_url, headers=target.headers, timeout=30) as client:
            for n, action in enumerate(scenarios.actions(scenario, WARM_REQUESTS)):
                scenarios.send(client, identity, scenarios.request_for(action, identity, n))
            before = target.relay.counters()
            for n, action in enumerate(scenarios.actions(scenario, count), start=WARM_REQUESTS):
                statuses[scenarios.send(client, identity, scenarios.request_for(action, identity, n)).status_code] += 1
            counted = per_request(before, target.relay.counters(), count)
        self._sent(target, WARM_REQUESTS + count)
        key = {"scenario": scenario.name, "config": config.name, "server": target.name}
        self.round_trips.append(key | counted | {"statuses": {str(k): v for k, v in statuses.items()}})
        say(
            f"  {scenario.name:<10} {target.name:<11} {counted['round_trips']:5.2f} round trips per request"
            f"  (turns {counted['turns']:.2f}, messages {counted['messages']}, statuses {dict(statuses)})"
        )

    def _measure(self, config: Config, scenario: scenarios.Scenario, target: Target, round_number: int) -> None:
        o = self.options
        script = self._script(scenario, target)
        last = self._last_run_end.get(target.server.name)
        warmup = warmup_seconds(o.warmup, None if last is None else time.monotonic() - last)
        if warmup:
            self._wrk(script, target, warmup, config.connections)
        workers = target.server.worker_pids()
        servers.wait_idle(workers)
        cpu_before = servers.cpu_seconds(workers)
        relay_before = target.relay.counters() if target.relay else None
        result = self._wrk(script, target, o.duration, config.connections)
        cpu_us: float | None = (servers.cpu_seconds(workers) - cpu_before) / max(result.requests, 1) * 1e6
        restarted = set(workers) != set(target.server.worker_pids())
        if restarted:  # uvicorn replaced a worker that missed its health check: the CPU figure is void
            cpu_us = None
            say(f"  WORKER RESTARTED during {scenario.name} on {config.name} {target.name}")
        self._last_run_end[target.server.name] = time.monotonic()
        relay = None
        if target.relay is not None and relay_before is not None:
            relay = per_request(relay_before, target.relay.counters(), result.requests)
        load = round(os.getloadavg()[0], 2)
        run = Run(scenario.name, config.name, target.name, round_number, result, load, cpu_us, relay, restarted)
        self.runs.append(run)
        trips = f"  PG round trips {relay['round_trips']:.2f}" if relay else ""
        say(
            f"  {scenario.name:<10} {target.name:<11} {result.rps:8.1f} req/s  p50 {result.latency_ms['p50']:7.2f} ms"
            f"  p99 {result.latency_ms['p99']:8.2f} ms  CPU {cpu_us or 0:5.0f} µs/req{trips}  non-2xx {result.non_2xx}"
            f"  errors {result.socket_errors}  load {load:.1f}  warm-up {warmup} s  statuses {result.statuses}"
        )
