"""Configuration from the environment and `.env`, validated before anything serves.

`load_settings()` is the only entry point: it turns every problem into one readable line
(`ConfigError.problems`) and never echoes a value, because values may be secrets.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ASYMMETRIC_ALGORITHMS = ("EdDSA", "ES256", "RS256", "PS256")
SUPPORTED_ASYMMETRIC = frozenset({*ASYMMETRIC_ALGORITHMS, "ES384", "RS384", "RS512", "PS384", "PS512"})
SUPPORTED_SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
MIN_SECRET_BYTES = 32
MIN_CURSOR_SECRET_CHARS = 32
CURSOR_SECRET_REQUIRED = (
    f"CURSOR_SECRET is required (at least {MIN_CURSOR_SECRET_CHARS} random characters, the same on every "
    "replica; e.g. `openssl rand -base64 48`)"
)


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class ConfigError(Exception):
    """Configuration is missing or invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _split_list(value: Any) -> Any:
    """Accept `a,b` / `a b` strings as well as real lists for list-valued variables."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every variable is documented in `.env.example` and the README."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # --- database -------------------------------------------------------------------------
    database_url: SecretStr | None = None
    # Connections opened on demand and kept. Overflow connections are closed as soon as they are
    # returned while the pool is full (SQLAlchemy's QueuePool): under sustained load above the pool
    # size that opens and closes a connection every few requests, so the default has none.
    db_pool_size: int = Field(default=15, ge=1, le=1000)
    db_max_overflow: int = Field(default=0, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    db_pool_recycle_seconds: int = Field(default=300, ge=1)
    db_connect_timeout_seconds: int = Field(default=3, ge=1, le=60)
    db_statement_timeout_ms: int = Field(default=3000, ge=100, le=600_000)

    # --- JWT (exactly one key source) -----------------------------------------------------
    jwt_jwks_url: AnyHttpUrl | None = None
    jwt_public_key: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_algorithms: Annotated[CsvList, Field(default_factory=list)]
    jwt_issuer: str | None = None
    jwt_audience: Annotated[CsvList, Field(default_factory=list)]
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_require_scopes: bool = False
    jwt_max_token_bytes: int = Field(default=8192, ge=512, le=65536)
    jwks_cache_ttl_seconds: int = Field(default=600, ge=10)
    jwks_refresh_cooldown_seconds: int = Field(default=30, ge=1)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0, le=30)

    # --- HTTP -----------------------------------------------------------------------------
    docs_enabled: bool = False
    log_level: str = "info"
    log_format: LogFormat = LogFormat.JSON
    cors_origins: Annotated[CsvList, Field(default_factory=list)]
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    shutdown_grace_seconds: int = Field(default=10, ge=0, le=300)
    # Slow clients (todo_api.server): a request's headers must arrive within the first timeout
    # (counted from the connection or the request's first byte), its body within the second
    # (counted from the end of the headers); then 408 and the connection is closed.
    http_header_timeout_seconds: float = Field(default=10, gt=0, le=300)
    http_body_timeout_seconds: float = Field(default=20, gt=0, le=300)
    # `serve --workers N`: time a worker has to start (import, build the app, lifespan) before the
    # supervisor replaces it, and time a started worker may leave a health check unanswered.
    worker_startup_timeout_seconds: int = Field(default=120, ge=1, le=600)
    worker_liveness_timeout_seconds: int = Field(default=10, ge=1, le=300)

    # --- write safety and quotas ----------------------------------------------------------
    require_if_match: bool = False
    idempotency_retention_hours: int = Field(default=24, ge=24, le=24 * 30)
    # Days a trashed todo or list stays restorable; also how long sync remembers purged ones.
    trash_retention_days: int = Field(default=30, ge=1, le=3650)
    max_todos_per_user: int = Field(default=10_000, ge=0)
    max_lists_per_user: int = Field(default=100, ge=0)
    rate_limit_requests: int = Field(default=600, ge=0)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    redis_url: SecretStr | None = None

    # --- pagination cursors (sealed: AES-GCM, key derived from the secret) --------------------
    cursor_secret: SecretStr | None = None
    cursor_secret_previous: SecretStr | None = None  # still opens cursors during a rotation

    # --- local development ----------------------------------------------------------------
    data_dir: Path = Path(".data")

    @field_validator("jwt_algorithms", "jwt_audience", "cors_origins", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("must be one of critical, error, warning, info, debug")
        return level

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = value.get_secret_value().split("://", 1)[0].lower()
        if scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
            raise ValueError("must be a postgresql:// or postgres:// URL")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError("must be origins like https://app.example.com (scheme and host, no path)")
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _blank_redis(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_public_key", "jwt_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cursor_secret", "cursor_secret_previous", mode="before")
    @classmethod
    def _blank_cursor_secret(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cursor_secret", "cursor_secret_previous")
    @classmethod
    def _cursor_secret_length(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_CURSOR_SECRET_CHARS:
            name = str(info.field_name).upper()
            raise ValueError(f"{name} must be at least {MIN_CURSOR_SECRET_CHARS} characters")
        return value

    @field_validator("jwt_jwks_url", "jwt_issuer", mode="before")
    @classmethod
    def _blank_str_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return value

    def problems(
        self,
        *,
        require_database: bool,
        require_key_source: bool,
        require_cursor_secret: bool = False,
        invalid: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Cross-variable checks, one line each (field checks already ran).

        `invalid` names fields that failed their own check (and hold defaults here): they were
        set, so they count as present and are not reported a second time.
        """
        problems: list[str] = []
        if require_database and self.database_url is None and "database_url" not in invalid:
            problems.append("DATABASE_URL is required")
        if require_cursor_secret and self.cursor_secret is None and "cursor_secret" not in invalid:
            problems.append(CURSOR_SECRET_REQUIRED)
        sources = [
            name
            for name, value in (
                ("JWT_JWKS_URL", self.jwt_jwks_url),
                ("JWT_PUBLIC_KEY", self.jwt_public_key),
                ("JWT_SECRET", self.jwt_secret),
            )
            if value is not None or name.lower() in invalid
        ]
        if len(sources) > 1:
            problems.append(f"set only one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET (got {', '.join(sources)})")
        elif not sources and require_key_source:
            problems.append("set one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET")
        symmetric = self.jwt_secret is not None or "jwt_secret" in invalid
        supported = SUPPORTED_SYMMETRIC if symmetric else SUPPORTED_ASYMMETRIC
        unsupported = [alg for alg in self.jwt_algorithms if alg not in supported]
        if unsupported:
            kind = "JWT_SECRET" if symmetric else "JWT_JWKS_URL / JWT_PUBLIC_KEY"
            problems.append(
                f"JWT_ALGORITHMS contains {', '.join(unsupported)}, not usable with {kind} "
                f"(allowed: {', '.join(sorted(supported))})"
            )
        return problems

    @property
    def has_key_source(self) -> bool:
        return any(v is not None for v in (self.jwt_jwks_url, self.jwt_public_key, self.jwt_secret))

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The explicit allowlist: configured, else the safe default for the key source."""
        if self.jwt_algorithms:
            return tuple(self.jwt_algorithms)
        return ("HS256",) if self.jwt_secret is not None else ASYMMETRIC_ALGORITHMS

    def database_url_value(self) -> str:
        if self.database_url is None:
            raise ConfigError(["DATABASE_URL is required"])
        return self.database_url.get_secret_value()


def _describe(error: Any) -> str:
    """One line for one pydantic error, naming the variable but never its value."""
    loc = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    name = loc[0].upper() if loc else ""
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    if not name:
        return message
    if message.startswith(name):
        return message
    return f"{name} {message[0].lower()}{message[1:]}" if message else f"{name} is invalid"


def load_settings(
    *,
    require_database: bool = True,
    require_key_source: bool = True,
    require_cursor_secret: bool = False,
    **overrides: Any,
) -> Settings:
    """Build and validate settings; raise `ConfigError` listing every problem at once.

    `require_cursor_secret`: serving needs CURSOR_SECRET (`serve`, `healthcheck`, workers); the app
    itself also refuses to start without one, so other callers may leave it to that check."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        # Still run the cross-variable checks, so every problem is reported in one go: retry with
        # the invalid fields at their defaults (they still count as set).
        invalid = {str(err["loc"][0]) for err in exc.errors() if err["loc"] and err["loc"][0] in Settings.model_fields}
        defaults = {name: Settings.model_fields[name].get_default(call_default_factory=True) for name in invalid}
        try:
            partial = Settings(**{**overrides, **defaults})
        except ValidationError:
            raise ConfigError(problems) from None
        problems += partial.problems(
            require_database=require_database,
            require_key_source=require_key_source,
            require_cursor_secret=require_cursor_secret,
            invalid=frozenset(invalid),
        )
        raise ConfigError(problems) from None
    problems = settings.problems(
        require_database=require_database,
        require_key_source=require_key_source,
        require_cursor_secret=require_cursor_secret,
    )
    if problems:
        raise ConfigError(problems)
    return settings


@functools.cache
def get_settings() -> Settings:
    """Cached process-wide settings (built lazily, never at import time)."""
    return load_settings(require_cursor_secret=True)
