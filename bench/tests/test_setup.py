"""What the servers run with, and how the load spreads: the configurations' settings against
todo-api's defaults, and the wrk script picking a user per request."""

from __future__ import annotations

import re
import shutil
import sysconfig
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bench import lua, scenarios, wrk
from bench.blocks import block_tag, run_order, warmup_seconds
from bench.configs import Config, Secrets, configurations, record, server_env
from bench.session import host_probe, python_build, round_order

BASE = {"DATABASE_URL", "JWT_PUBLIC_KEY", "JWT_ISSUER", "JWT_AUDIENCE", "CURSOR_SECRET"}
URL = "postgresql://bench@127.0.0.1:5432/bench_x"


@pytest.fixture
def secrets() -> Secrets:
    return Secrets.generate("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n")


def test_production_sets_nothing_but_the_database_the_key_source_and_secrets(secrets: Secrets) -> None:
    known = configurations("redis://127.0.0.1:6379/13")
    assert set(record(known["production"], URL, secrets)["differ_from_defaults"]) == BASE
    assert set(record(known["remote"], URL, secrets)["differ_from_defaults"]) == BASE
    assert set(record(known["redis"], URL, secrets)["differ_from_defaults"]) == BASE | {"REDIS_URL"}
    assert set(record(known["capacity"], URL, secrets)["differ_from_defaults"]) == BASE | {
        "RATE_LIMIT_REQUESTS",
        "LOG_LEVEL",
    }
    assert known["production"].rate_limited
    assert not known["capacity"].rate_limited


def test_a_developers_settings_do_not_reach_the_servers(secrets: Secrets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "0")
    monkeypatch.setenv("log_level", "debug")
    env = server_env(Config("production", "defaults"), URL, secrets)
    assert "RATE_LIMIT_REQUESTS" not in env
    assert "log_level" not in env
    assert env["DATABASE_URL"] == URL


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[Counter[tuple[str, str]]] = Counter()

    def do_GET(self) -> None:
        self.seen[self.headers.get("Authorization", ""), self.headers.get("X-Bench-Floor", "")] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def recorder() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_script_picks_a_user_per_request(recorder: ThreadingHTTPServer, tmp_path: Path) -> None:
    identities = [lua.Identity(f"token-{n}", (f"id-{n}",), "/api/todos?limit=50") for n in range(50)]
    script = tmp_path / "spread.lua"
    script.write_text(lua.script("spread", identities, [("get", 1), ("list", 1)], {"X-Bench-Floor": "like"}))
    _Recorder.seen.clear()
    port = recorder.server_address[1]
    result = wrk.run(wrk.require_wrk(), script, f"http://127.0.0.1:{port}", threads=1, connections=1, seconds=1)
    tokens = {re.sub(r"^Bearer ", "", auth) for auth, _ in _Recorder.seen}
    assert result.requests >= 100
    assert result.statuses == {"200": result.requests}
    # one connection, yet every user shows up: the user is chosen per request, not per connection
    assert tokens == {f"token-{n}" for n in range(50)}
    assert {mode for _, mode in _Recorder.seen} == {"like"}


def test_the_host_probe_reports_milliseconds_of_a_fixed_workload() -> None:
    first, second = host_probe(), host_probe()
    assert 1 < first < 5_000
    assert 1 < second < 5_000
    assert max(first, second) / min(first, second) < 20  # the same work both times, best of 5


@pytest.mark.parametrize(
    ("config_args", "pgo", "lto"),
    [
        ("'--prefix=/usr/local' '--enable-optimizations' '--with-lto' '--enable-shared'", True, True),
        ("'--prefix=/root/.pyenv/versions/3.13.0' '--enable-shared'", False, False),
        ("'--enable-optimizations'", True, False),
        (None, False, False),
    ],
)
def test_the_python_build_says_whether_pgo_and_lto_were_on(
    monkeypatch: pytest.MonkeyPatch, config_args: str | None, pgo: bool, lto: bool
) -> None:
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: config_args if name == "CONFIG_ARGS" else None)
    build = python_build()
    assert (build["pgo"], build["lto"]) == (pgo, lto)


@pytest.mark.parametrize(
    ("base", "idle", "expected"),
    [
        (3, None, 3),  # the server's first run: it was just started and preflighted
        (3, 5.0, 3),  # it ran moments ago (the like-for-like floor right after the plain one)
        (3, 45.0, 10),  # it sat idle while the other servers of its block ran
        (15, 45.0, 15),  # a longer --warmup is kept
        (0, 45.0, 0),  # --warmup 0 means none
    ],
)
def test_a_server_idle_since_its_last_run_warms_up_longer(base: int, idle: float | None, expected: int) -> None:
    assert warmup_seconds(base, idle) == expected


def test_even_rounds_run_the_configurations_in_reverse() -> None:
    chosen = ["production", "redis", "capacity", "remote"]
    assert round_order(chosen, 1) == chosen
    assert round_order(chosen, 2) == ["remote", "capacity", "redis", "production"]
    assert round_order(chosen, 3) == chosen
    assert chosen == ["production", "redis", "capacity", "remote"]  # the caller's list is left alone


def test_blocks_measure_the_reads_before_the_writes() -> None:
    """Every scenario of the catalogue, reads (`position`, `sync` among them) before any writer."""
    order = run_order(list(scenarios.CATALOGUE))
    assert sorted(order) == sorted(scenarios.CATALOGUE)
    writers = ["create", "patch", "move", "mixed"]
    assert order[-len(writers) :] == writers
    assert order.index("position") < order.index("create")
    assert order.index("sync") < order.index("create")
    assert run_order(["patch", "me", "create", "get"]) == ["me", "get", "patch", "create"]


def test_a_configuration_named_twice_gets_a_block_tag_of_its_own() -> None:
    """A mirrored `--configs a,b,b,a` runs each configuration twice in a round: the second block's
    server logs must not overwrite the first's (`<tag>-todo-api.log`)."""
    taken: set[str] = set()
    tags = [block_tag("r1", name, taken) for name in ("production", "capacity", "capacity", "production")]
    assert tags == ["r1-production", "r1-capacity", "r1b-capacity", "r1b-production"]
    assert block_tag("r2", "capacity", taken) == "r2-capacity"
    assert block_tag("r1", "capacity", taken) == "r1c-capacity"
    assert all(tag.split("-", 2)[1] in {"production", "capacity"} for tag in taken)  # `kind` still parses
