"""Configuration errors stop `todo-api serve` before it serves, one readable line per problem,
never echoing a value. Checked by running the real CLI in a subprocess with a minimal
environment, in an empty directory (so no `.env` is read unless a test writes one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jwt
import pytest

from tests.commands import run_cli
from tests.keys import CURSOR_SECRET, new_key, public_pem
from todo_api.config import ConfigError, load_settings

SECRET = "a-perfectly-fine-secret-of-more-than-32-bytes"
DATABASE_URL = "postgresql://app:db-password-never-printed@127.0.0.1:1/app"


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problem lines `todo-api` printed (stderr, one `todo-api: ...` line each)."""
    lines = result.stderr.splitlines()
    assert all(line.startswith("todo-api: ") for line in lines), result.stderr
    return [line.removeprefix("todo-api: ") for line in lines]


def serve(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    env.setdefault("CURSOR_SECRET", CURSOR_SECRET)  # tests of other variables leave it alone
    result = run_cli(cwd, "serve", "--port", "1", **env)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    return result


def load_problems(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> list[str]:
    """In-process variant (fast) of the same path: environment → `load_settings` → problem lines."""
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    return error.value.problems


# --- the real CLI, one subprocess per scenario -----------------------------------------------


def test_database_url_is_required(tmp_path: Path) -> None:
    result = serve(tmp_path, JWT_SECRET=SECRET)
    assert problems(result) == ["DATABASE_URL is required"]


def test_a_key_source_is_required(tmp_path: Path) -> None:
    result = serve(tmp_path, DATABASE_URL=DATABASE_URL)
    assert problems(result) == ["set one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET"]
    assert "db-password-never-printed" not in result.stderr


def test_short_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    short = "tiny-Secret-99"
    result = serve(tmp_path, DATABASE_URL=DATABASE_URL, JWT_SECRET=short)
    assert problems(result) == ["JWT_SECRET must be at least 32 bytes"]
    assert short not in result.stdout + result.stderr


def test_only_one_key_source_is_allowed(tmp_path: Path) -> None:
    pem = public_pem(new_key("ed25519"))
    result = serve(tmp_path, DATABASE_URL=DATABASE_URL, JWT_SECRET=SECRET, JWT_PUBLIC_KEY=pem)
    assert problems(result) == [
        "set only one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET (got JWT_PUBLIC_KEY, JWT_SECRET)"
    ]
    assert SECRET not in result.stderr
    assert pem.splitlines()[1] not in result.stderr


def test_invalid_pool_size(tmp_path: Path) -> None:
    result = serve(tmp_path, DATABASE_URL=DATABASE_URL, JWT_SECRET=SECRET, DB_POOL_SIZE="lots")
    assert problems(result) == ["DB_POOL_SIZE input should be a valid integer, unable to parse string as an integer"]


def test_non_postgres_database_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    result = serve(tmp_path, DATABASE_URL="mysql://app:hunter2-db-secret@db.example/app", JWT_SECRET=SECRET)
    assert problems(result) == ["DATABASE_URL must be a postgresql:// or postgres:// URL"]
    assert "hunter2-db-secret" not in result.stdout + result.stderr


def test_malformed_public_key_is_refused(tmp_path: Path) -> None:
    value = "-----BEGIN PUBLIC KEY-----\nhunter2hunter2AAAA\n-----END PUBLIC KEY-----"
    result = serve(tmp_path, DATABASE_URL=DATABASE_URL, JWT_PUBLIC_KEY=value)
    assert problems(result) == ["JWT_PUBLIC_KEY is not a valid PEM public key, certificate or JWK"]
    assert "hunter2" not in result.stdout + result.stderr


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    result = serve(
        tmp_path,
        JWT_SECRET="short-Secret-42",
        DB_POOL_SIZE="lots",
        LOG_LEVEL="loud",
        JWKS_TIMEOUT_SECONDS="-1",
    )
    lines = problems(result)
    assert sorted(line.split()[0] for line in lines) == sorted(
        ["DATABASE_URL", "DB_POOL_SIZE", "JWKS_TIMEOUT_SECONDS", "JWT_SECRET", "LOG_LEVEL"]
    ), lines
    assert "DATABASE_URL is required" in lines
    assert "JWT_SECRET must be at least 32 bytes" in lines
    assert "short-Secret-42" not in result.stderr
    # An invalid key source is still a key source: no contradictory "set one of ..." line.
    assert not any(line.startswith("set one of") for line in lines)


def test_idempotency_retention_below_24_hours_is_refused(tmp_path: Path) -> None:
    """README, `IDEMPOTENCY_RETENTION_HOURS` (default 24, "≥ 24"): less stops `serve` with one line
    naming the variable and the bound."""
    result = serve(tmp_path, DATABASE_URL=DATABASE_URL, JWT_SECRET=SECRET, IDEMPOTENCY_RETENTION_HOURS="23")
    assert problems(result) == ["IDEMPOTENCY_RETENTION_HOURS input should be greater than or equal to 24"]


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"JWT_SECRET={SECRET}\nJWT_ISSUER=https://from-dotenv.test\nJWT_AUDIENCE=dotenv-api\n", encoding="utf-8"
    )
    result = run_cli(tmp_path, "token", "--sub", "dotenv-user")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(), SECRET, algorithms=["HS256"], audience="dotenv-api", issuer="https://from-dotenv.test"
    )
    assert claims["sub"] == "dotenv-user"


# --- the same checks in-process, for the variants ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "DB_POOL_SIZE input should be a valid integer, unable to parse string as an integer"),
        ("0", "DB_POOL_SIZE input should be greater than or equal to 1"),
        ("-3", "DB_POOL_SIZE input should be greater than or equal to 1"),
        ("2.5", "DB_POOL_SIZE input should be a valid integer, unable to parse string as an integer"),
        ("100000", "DB_POOL_SIZE input should be less than or equal to 1000"),
    ],
)
def test_invalid_pool_size_variants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, message: str) -> None:
    env = {"DATABASE_URL": DATABASE_URL, "JWT_SECRET": SECRET, "DB_POOL_SIZE": value}
    assert load_problems(monkeypatch, tmp_path, **env) == [message]


@pytest.mark.parametrize(
    "url",
    ["mysql://app:hunter2-db-secret@db.example/app", "sqlite:///hunter2-db-secret.db", "hunter2-db-secret"],
)
def test_non_postgres_database_url_variants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    lines = load_problems(monkeypatch, tmp_path, DATABASE_URL=url, JWT_SECRET=SECRET)
    assert lines == ["DATABASE_URL must be a postgresql:// or postgres:// URL"]


@pytest.mark.parametrize(
    "url", ["postgres://u:p@h/d", "postgresql://u@h:5432/d?sslmode=require", "postgresql+psycopg://h/d"]
)
def test_postgres_database_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert load_settings().database_url_value() == url


def test_invalid_jwks_url_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (line,) = load_problems(monkeypatch, tmp_path, DATABASE_URL=DATABASE_URL, JWT_JWKS_URL="ftp://idp.example/jwks")
    assert line.startswith("JWT_JWKS_URL ")


def test_hmac_algorithms_with_a_jwks_url_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {"DATABASE_URL": DATABASE_URL, "JWT_JWKS_URL": "https://idp.example/jwks", "JWT_ALGORITHMS": "RS256,HS256"}
    (line,) = load_problems(monkeypatch, tmp_path, **env)
    assert line.startswith("JWT_ALGORITHMS contains HS256, not usable with JWT_JWKS_URL / JWT_PUBLIC_KEY")


def test_cross_variable_problems_are_reported_with_field_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = load_problems(monkeypatch, tmp_path, DB_POOL_SIZE="lots")
    assert len(lines) == 3, lines
    assert lines[0].startswith("DB_POOL_SIZE ")
    assert lines[1:] == ["DATABASE_URL is required", "set one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET"]


def test_an_invalid_key_source_still_counts_as_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem = public_pem(new_key("ed25519"))
    env = {"DATABASE_URL": DATABASE_URL, "JWT_SECRET": "short", "JWT_PUBLIC_KEY": pem, "JWT_ALGORITHMS": "HS256"}
    lines = load_problems(monkeypatch, tmp_path, **env)
    assert lines == [
        "JWT_SECRET must be at least 32 bytes",
        "set only one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET (got JWT_PUBLIC_KEY, JWT_SECRET)",
    ]


def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"JWT_SECRET={SECRET}\nJWT_ISSUER=https://from-dotenv.test\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_ISSUER", "https://from-env.test")
    settings = load_settings(require_database=False)
    assert settings.jwt_issuer == "https://from-env.test"
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == SECRET


def test_dotenv_problems_are_reported_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://u:dotenv-pw-hunter2@h/d\n", encoding="utf-8")
    lines = load_problems(monkeypatch, tmp_path, JWT_SECRET=SECRET)
    assert lines == ["DATABASE_URL must be a postgresql:// or postgres:// URL"]


def test_messages_never_contain_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_values = {
        "DATABASE_URL": "mysql://u:value-hunter2@h/d",
        "JWT_SECRET": "hunter2-short",
        "DB_POOL_SIZE": "hunter2",
        "JWKS_TIMEOUT_SECONDS": "hunter2",
        "JWT_LEEWAY_SECONDS": "hunter2",
        "JWT_REQUIRE_SCOPES": "hunter2",
        "LOG_FORMAT": "hunter2",
    }
    lines = load_problems(monkeypatch, tmp_path, **secret_values)
    assert len(lines) == len(secret_values), lines
    assert not any("hunter2" in line for line in lines), lines


@pytest.mark.parametrize("value", ["23", "0", "-24"])
def test_idempotency_retention_below_24_hours_variants(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    env = {"DATABASE_URL": DATABASE_URL, "JWT_SECRET": SECRET, "IDEMPOTENCY_RETENTION_HOURS": value}
    assert load_problems(monkeypatch, tmp_path, **env) == [
        "IDEMPOTENCY_RETENTION_HOURS input should be greater than or equal to 24"
    ]


def test_idempotency_retention_of_24_hours_or_more_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """README: the bound is inclusive, and the default is 24."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert load_settings().idempotency_retention_hours == 24
    for hours in ("24", "48"):
        monkeypatch.setenv("IDEMPOTENCY_RETENTION_HOURS", hours)
        assert load_settings().idempotency_retention_hours == int(hours)
