"""The `todo-api` command line, run for real in a subprocess with a minimal environment."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import orjson
import pytest
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.auth.jwks_server import JwksServer
from tests.commands import run_cli
from tests.conftest import AppClientFactory
from tests.faults.servers import free_port, stop_process, wait_until
from tests.keys import AUDIENCE, CURSOR_SECRET, ISSUER, new_key, public_jwk, public_pem
from todo_api.storage import migrate
from todo_api.storage.database import driver_url

SECRET = "cli-test-secret-that-is-long-enough-for-hs256"
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"


async def run_cli_async(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The same, off the event loop (for tests that also use async fixtures)."""
    return await asyncio.to_thread(run_cli, cwd, *args, **env)


# --- token -------------------------------------------------------------------------------------


async def test_token_with_a_shared_secret_is_accepted_by_the_app(
    tmp_path: Path, app_client: AppClientFactory, db_engine: AsyncEngine
) -> None:
    env = {"JWT_SECRET": SECRET, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    result = await run_cli_async(
        tmp_path, "token", "--sub", "cli-user", "--email", "cli@example.com", "--scope", "todos:read", **env
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"

    async with app_client(jwt_public_key=None, jwt_secret=SECRET) as client:
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.get("/api/users/me", headers=headers)
        assert response.status_code == 200, response.text
        assert (response.json()["subject"], response.json()["email"]) == ("cli-user", "cli@example.com")
        assert (await client.delete("/api/users/me", headers=headers)).status_code == 403  # read scope only
    async with app_client(jwt_public_key=None, jwt_secret=SECRET.upper()) as client:
        assert (await client.get("/api/users/me", headers=headers)).status_code == 401


def test_token_ttl_and_claims(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "token", "--sub", "ttl-user", "--ttl", "120", "--name", "T. User", JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120
    assert (claims["sub"], claims["name"]) == ("ttl-user", "T. User")
    assert "scope" not in claims  # no --scope: no scope claim (full access unless scopes are required)


def test_token_without_a_key_source_uses_a_private_dev_key(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "token", "--sub", "dev-user")
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / ".data" / "dev-signing-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = result.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    second = run_cli(tmp_path, "token", "--sub", "dev-user")  # the key is reused, not regenerated
    assert second.returncode == 0, second.stderr
    public = load_pem_private_key(key_file.read_bytes(), password=None).public_key()
    for minted in (token, second.stdout.strip()):
        claims = jwt.decode(minted, public, algorithms=["EdDSA"], audience="todo-api", issuer="todo-api-dev")  # type: ignore[arg-type]
        assert claims["sub"] == "dev-user"


def test_token_refuses_with_a_jwks_url(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "token", "--sub", "x", JWT_JWKS_URL="https://idp.example/.well-known/jwks.json")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "todo-api: token: JWT_JWKS_URL is configured; tokens come from your identity provider"
    ]
    assert not (tmp_path / ".data").exists()  # no dev key created on the way


def test_token_refuses_with_someone_elses_public_key(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "token", "--sub", "x", JWT_PUBLIC_KEY=public_pem(new_key("ed25519")))
    assert result.returncode != 0
    assert result.stdout == ""
    assert "no private key to sign with" in result.stderr


# --- openapi -----------------------------------------------------------------------------------


def test_openapi_prints_the_document_without_a_database(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "openapi")
    assert result.returncode == 0, result.stderr
    document = orjson.loads(result.stdout)
    assert "/api/users/me" in document["paths"]
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("type") == "http" and s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    me = document["paths"]["/api/users/me"]["get"]
    assert any(set(requirement) & set(schemes) for requirement in me["security"])
    assert "401" in me["responses"]


# --- migrate -----------------------------------------------------------------------------------


async def test_migrate_twice_is_idempotent(tmp_path: Path, database_url: str, db_engine: AsyncEngine) -> None:
    head = ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_current_head()
    for _ in range(2):
        result = await run_cli_async(tmp_path, "migrate", DATABASE_URL=database_url)
        assert result.returncode == 0, result.stderr
        assert "migrations applied" in result.stderr
        async with db_engine.connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert versions == [head]


def test_migrate_needs_a_database_url(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "migrate")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["todo-api: DATABASE_URL is required"]


# --- healthcheck -------------------------------------------------------------------------------

HEALTH_ENV = {"JWT_SECRET": SECRET, "CURSOR_SECRET": CURSOR_SECRET}


def assert_unready(result: subprocess.CompletedProcess[str], reason: str) -> None:
    """Exit 1, nothing on stdout, exactly one line on stderr: the reason."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"todo-api: {reason}"]


async def test_healthcheck_passes_against_the_test_database(tmp_path: Path, database_url: str) -> None:
    result = await run_cli_async(tmp_path, "healthcheck", DATABASE_URL=database_url, **HEALTH_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_healthcheck_fails_with_a_one_line_reason_for_an_unreachable_database(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "healthcheck", "--timeout", "5", DATABASE_URL=UNREACHABLE_DB, **HEALTH_ENV)
    assert_unready(result, "database unavailable: cannot connect: connection refused")


@pytest.fixture
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """An empty database of its own on the test server, dropped afterwards."""
    name = f"todo_api_scratch_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(driver_url(server_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_healthcheck_fails_while_migrations_are_behind_head(tmp_path: Path, scratch_database: str) -> None:
    result = await run_cli_async(tmp_path, "healthcheck", DATABASE_URL=scratch_database, **HEALTH_ENV)
    assert_unready(result, "the database has no migrations applied: run `todo-api migrate`")

    scripts = ScriptDirectory.from_config(migrate.alembic_config(scratch_database))
    head = scripts.get_current_head()
    assert isinstance(head, str)
    behind = scripts.get_revision(head).down_revision
    assert isinstance(behind, str)
    await asyncio.to_thread(migrate.upgrade, scratch_database, behind)
    result = await run_cli_async(tmp_path, "healthcheck", DATABASE_URL=scratch_database, **HEALTH_ENV)
    assert_unready(
        result, f"database schema is at revision {behind}, migrations head is {head}: run `todo-api migrate`"
    )

    await asyncio.to_thread(migrate.upgrade, scratch_database)
    result = await run_cli_async(tmp_path, "healthcheck", DATABASE_URL=scratch_database, **HEALTH_ENV)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("postgresql://postgres@127.0.0.1:1/postgres", "connection refused"),
        ("postgresql://postgres@127.0.0.1:5432/todo_api_no_such_database", "database does not exist"),
        ("postgresql://todo_api_no_such_role@127.0.0.1:5432/postgres", "authentication failed"),
        ("postgresql://postgres@127.0.0.1:5432/postgres?sslmode=require", "TLS required or refused"),
        ("postgresql://postgres@no-such-host.invalid:5432/postgres", "host not found"),
    ],
)
async def test_healthcheck_names_why_the_database_cannot_be_reached(
    tmp_path: Path, server_url: str, url: str, cause: str
) -> None:
    """On the test server (trust authentication, no TLS): the cause class, never the URL's parts."""
    url = url.replace("127.0.0.1:5432", _host_and_port(server_url))
    result = await run_cli_async(tmp_path, "healthcheck", DATABASE_URL=url, **HEALTH_ENV)
    assert_unready(result, f"database unavailable: cannot connect: {cause}")
    for part in ("todo_api_no_such", "no-such-host", "127.0.0.1"):
        assert part not in result.stderr


def _host_and_port(server_url: str) -> str:
    parsed = make_url(server_url)
    return f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}"


@pytest.mark.parametrize("failure", ["error", "closed"])
async def test_healthcheck_fails_when_the_jwks_cannot_be_fetched(
    tmp_path: Path, database_url: str, failure: str
) -> None:
    with JwksServer([public_jwk(new_key("ed25519"), kid="k1")]) as jwks:
        env = {"DATABASE_URL": database_url, "CURSOR_SECRET": CURSOR_SECRET, "JWT_JWKS_URL": jwks.url}
        ready = await run_cli_async(tmp_path, "healthcheck", **env)
        assert (ready.returncode, ready.stdout) == (0, "ok\n"), ready.stderr
        jwks.mode = "error"
        if failure == "closed":
            jwks.close()
        result = await run_cli_async(tmp_path, "healthcheck", **env)
    reason = "HTTP 500" if failure == "error" else "connection refused"
    assert_unready(result, f"JWT_JWKS_URL cannot be fetched ({reason}): no keys to verify tokens with")


def test_healthcheck_reports_configuration_problems(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "healthcheck", DATABASE_URL=UNREACHABLE_DB, CURSOR_SECRET=CURSOR_SECRET)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["todo-api: set one of JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET"]


# --- dev ---------------------------------------------------------------------------------------


def test_dev_on_a_busy_port_fails_first_in_one_line(tmp_path: Path) -> None:
    """Before the embedded PostgreSQL starts, before any URL or curl line."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_cli(tmp_path, "dev", "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"todo-api: port {port} on 127.0.0.1 is already in use (another server?); choose another with --port"
    ]
    assert not (tmp_path / ".data").exists()


def _dev_docs(cwd: Path, database_url: str) -> tuple[httpx.Response, httpx.Response]:
    """`todo-api dev` on a free port (against the test database): its `/docs` and `/openapi.json`."""
    port = free_port()
    base = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    log = cwd / "dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "todo_api", "dev", "--port", str(port)],
            cwd=cwd,
            env={**base, "DATABASE_URL": database_url},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response] = []

    def answered() -> bool:
        if process.poll() is not None:
            return True
        try:
            answers.append(httpx.get(f"{url}/docs", timeout=5))
        except httpx.TransportError:
            return False
        return True

    try:
        wait_until(answered, 120, "todo-api dev to answer", interval=0.1)
        assert process.poll() is None, log.read_text(errors="replace")
        return answers[-1], httpx.get(f"{url}/openapi.json", timeout=5)
    finally:
        stop_process(process)


async def test_dev_serves_the_docs(tmp_path: Path, database_url: str) -> None:
    """README, "The two commands" (`todo-api dev`: "docs on /docs") and `DOCS_ENABLED` ("`dev`
    turns them on"): the dev server serves `/docs` and `/openapi.json` without being asked to."""
    docs, document = await asyncio.to_thread(_dev_docs, tmp_path, database_url)
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert document.status_code == 200
    assert "/api/todos" in document.json()["paths"]


@pytest.mark.parametrize("args", [[], ["no-such-command"], ["token"]])
def test_usage_errors_exit_non_zero(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2
    assert "usage: todo-api" in result.stderr
