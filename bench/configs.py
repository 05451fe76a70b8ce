"""The configurations the benchmark measures, and the one function that builds a server's environment.

`production` is what a deployment runs: `todo-api serve` with every setting at its default except
the database, the key source (plus the issuer and audience a deployment sets) and the cursor secret:
rate limiting on with PostgreSQL counters, the access log at INFO, the default quotas. The others
change one thing each and say so in their `overrides`; the JSON record lists every setting a
configuration sets and which of them differ from the defaults.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bench import REPO_ROOT, pg, servers
from bench.tokens import AUDIENCE, ISSUER
from todo_api.config import Settings

APP, FLOOR_LIKE, FLOOR_PLAIN, FLOOR_STACK = "todo-api", "floor-like", "floor-plain", "floor-stack"
LABELS = {
    APP: "todo-api",
    FLOOR_LIKE: "floor, like-for-like",
    FLOOR_PLAIN: "floor, plain",
    FLOOR_STACK: "floor, FastAPI + SQLModel",
}
STACK_SCENARIOS = frozenset({"me", "get", "list", "filter", "position"})  # what `bench.stackfloor` serves
REMOTE_DELAY_MS = 1.0
# Few enough that the machine is not saturated: latency then shows the round trips, not a queue for
# the CPU. On the 2-core benchmark machine 8 were too many (load average 3.2, todo-api's workers alone
# busy 1.1 cores at `me`): p50 measured the CPU queue. bench/README.md has 2, 4 and 8 side by side.
REMOTE_CONNECTIONS = 4
DEFAULT_RATE_LIMIT = int(Settings.model_fields["rate_limit_requests"].default)


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    description: str
    overrides: Mapping[str, str] = field(default_factory=dict)
    floors: tuple[str, ...] = ()  # floor modes measured beside todo-api in this configuration
    delay_ms: float | None = None  # PostgreSQL behind the relay (bench.pgproxy), this much each way
    connections: int | None = None  # wrk -c for this configuration (default: --connections)

    @property
    def rate_limited(self) -> bool:
        return self.overrides.get("RATE_LIMIT_REQUESTS", "") != "0"

    def counting(self) -> Config:
        """The same servers behind a relay that only counts (no delay): the round-trip pass."""
        return replace(self, delay_ms=0.0)


def configurations(
    redis_url: str, delay_ms: float = REMOTE_DELAY_MS, remote_connections: int = REMOTE_CONNECTIONS
) -> dict[str, Config]:
    return {
        "production": Config(
            "production",
            "every setting at its default: rate limiting on (PostgreSQL counters), access log at INFO, default quotas",
            floors=(FLOOR_LIKE, FLOOR_PLAIN, FLOOR_STACK),
        ),
        "redis": Config("redis", "production, with the rate-limit counters in Redis", {"REDIS_URL": redis_url}),
        "capacity": Config(
            "capacity",
            "the earlier benchmark's configuration: rate limiting off, log level warning (no access log)",
            {"RATE_LIMIT_REQUESTS": "0", "LOG_LEVEL": "warning"},
        ),
        "remote": Config(
            "remote",
            f"production, with every packet to PostgreSQL delayed {delay_ms:g} ms each way (bench.pgproxy), "
            f"{remote_connections} connections",
            floors=(FLOOR_LIKE,),
            delay_ms=delay_ms,
            connections=remote_connections,
        ),
    }


@dataclass(frozen=True, slots=True)
class Secrets:
    """Generated once per run and shared by every server: cursors minted by one server (the
    list-deep path) must be accepted by the others."""

    public_pem: str
    cursor_secret: str

    @classmethod
    def generate(cls, public_pem: str) -> Secrets:
        return cls(public_pem, base64.urlsafe_b64encode(os.urandom(32)).decode())


def settings_for(config: Config, database_url: str, secrets: Secrets) -> dict[str, str]:
    """The todo-api settings of a configuration (todo-api and the floors read the same ones)."""
    return {
        "DATABASE_URL": database_url,
        "JWT_PUBLIC_KEY": secrets.public_pem,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "CURSOR_SECRET": secrets.cursor_secret,
        **config.overrides,
    }


def server_env(config: Config, database_url: str, secrets: Secrets, *, floor: bool = False) -> dict[str, str]:
    """The whole environment of a server process: this process's environment without any todo-api
    setting from the developer's shell, plus the configuration's settings."""
    env = servers.clean_env(settings_for(config, database_url, secrets))
    if floor:
        env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _default(name: str) -> Any:
    info = Settings.model_fields.get(name.lower())
    return None if info is None else info.get_default(call_default_factory=True)


def _shown(name: str, value: str) -> str:
    if name == "DATABASE_URL":
        return pg.redacted(value)
    if name in {"JWT_PUBLIC_KEY", "CURSOR_SECRET"}:
        return "(generated for this run)"
    return value


def record(config: Config, database_url: str, secrets: Secrets) -> dict[str, Any]:
    """What the JSON record says about a configuration: every setting it sets, and which differ
    from todo-api's defaults (for `production`: only the database, key source, issuer, audience and
    cursor secret)."""
    chosen = settings_for(config, database_url, secrets)
    differs = [name for name, value in chosen.items() if str(_default(name)).lower() != value.lower()]
    return {
        "description": config.description,
        "settings": {name: _shown(name, value) for name, value in chosen.items()},
        "differ_from_defaults": differs,
        "not_todo_api_settings_yet": [name for name in chosen if name.lower() not in Settings.model_fields],
        "relay_delay_ms": config.delay_ms,
        "wrk_connections": config.connections,
        "floors": list(config.floors),
    }
