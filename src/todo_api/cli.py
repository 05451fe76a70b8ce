"""`todo-api` command line: serve | dev | migrate | token | openapi | healthcheck."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import shlex
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import httpx
import orjson

from todo_api import server
from todo_api.app import create_app
from todo_api.auth.dev import mint_token, with_dev_cursor_secret, with_dev_key
from todo_api.auth.keys import JwksKeySource, build_key_source
from todo_api.auth.verifier import TokenVerifier
from todo_api.config import ConfigError, LogFormat, Settings, load_settings
from todo_api.config_hints import hints
from todo_api.log import configure_logging
from todo_api.storage import embedded, migrate
from todo_api.storage.database import create_engine, database
from todo_api.storage.faults import describe

DEFAULT_SCOPE = "todos:read todos:write"
logger = logging.getLogger("todo_api.config")


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"todo-api: {message}", file=sys.stderr)
    raise SystemExit(code)


def _validated(settings: Settings) -> Settings:
    """Parse the key source now, so a bad key stops the process before it serves."""
    TokenVerifier(settings)
    return settings


def _log_hints(settings: Settings) -> None:
    """Warnings about settings that are valid but probably not meant (`todo_api.config_hints`)."""
    for line in hints(settings, os.environ):
        logger.warning(line)


def _exit_cleanly_after_sigterm() -> None:
    """uvicorn finishes in-flight requests on SIGTERM, then re-raises the signal with the handler
    that was installed before it started. Make that handler a normal exit: status 0 after a
    graceful shutdown, and `atexit` still runs (the embedded PostgreSQL of `dev` is stopped)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _validated(load_settings(require_cursor_secret=True))
    configure_logging(settings.log_level, settings.log_format)
    _log_hints(settings)
    _exit_cleanly_after_sigterm()
    server.serve(
        "todo_api.app:create_app_from_env",
        settings,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )


def _dev_settings() -> Settings:
    overrides: dict[str, Any] = {"docs_enabled": True}
    if "LOG_FORMAT" not in os.environ:
        overrides["log_format"] = LogFormat.TEXT
    settings = load_settings(require_database=False, require_key_source=False, **overrides)
    if settings.database_url is None:
        print("Starting embedded PostgreSQL in", settings.data_dir / "postgres", file=sys.stderr)
        try:
            url = embedded.start((settings.data_dir / "postgres").resolve())
        except RuntimeError as exc:
            _fail(str(exc))
        settings = load_settings(require_key_source=False, database_url=url, **overrides)
    return _validated(with_dev_cursor_secret(with_dev_key(settings)))


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind the dev server's port first, so a busy port fails before anything starts or is printed."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)  # SO_REUSEADDR, as uvicorn binds
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _fail(f"port {port} on {host} is already in use (another server?); choose another with --port", 1)
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__}", 1)


def cmd_dev(args: argparse.Namespace) -> None:
    listener = _listening_socket(args.host, args.port)
    settings = _dev_settings()
    configure_logging(settings.log_level, settings.log_format)
    _log_hints(settings)
    migrate.upgrade(settings.database_url_value())
    base = f"http://{args.host}:{args.port}"
    banner = [f"todo-api dev server: {base}  (docs: {base}/docs)"]
    try:
        token = mint_token(settings, subject="dev-user", name="Dev User", scope=DEFAULT_SCOPE, ttl_seconds=86400)
        header = shlex.quote(f"Authorization: Bearer {token}")
        banner += [
            "Try it (token valid 24 h; more with `uv run todo-api token --sub ID`):",
            f"  curl -H {header} {base}/api/users/me",
        ]
    except ConfigError:
        banner.append("Tokens come from your identity provider (JWT_JWKS_URL / JWT_PUBLIC_KEY).")
    print("\n".join(banner), file=sys.stderr, flush=True)
    _exit_cleanly_after_sigterm()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a normal stop
        server.serve(create_app(settings), settings, host=args.host, port=args.port, sockets=[listener])


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = load_settings(require_key_source=False)
    migrate.upgrade(settings.database_url_value())
    print("migrations applied", file=sys.stderr)


def cmd_token(args: argparse.Namespace) -> None:
    settings = load_settings(require_database=False, require_key_source=False)
    token = mint_token(
        settings,
        subject=args.sub,
        email=args.email,
        name=args.name,
        scope=args.scope,
        ttl_seconds=args.ttl,
    )
    print(token)


def cmd_openapi(args: argparse.Namespace) -> None:
    settings = load_settings(require_database=False, require_key_source=False)
    sys.stdout.write(orjson.dumps(create_app(settings).openapi(), option=orjson.OPT_INDENT_2).decode() + "\n")


async def _database_problem(settings: Settings) -> str | None:
    """Unreachable, or not at this release's migration head (read through `Database.run`)."""
    engine = create_engine(settings)
    try:
        applied = await database(settings, engine).run(migrate.applied_revisions)
    except Exception as exc:
        return f"database unavailable: {describe(exc)}"
    finally:
        await engine.dispose()
    return migrate.schema_problem(applied)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it (httpx wraps the socket's error twice)."""
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 10:
        chain.append(cause)
    return chain


def _fetch_failure(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        causes = {type(cause) for cause in _chain(exc)}
        if ConnectionRefusedError in causes:
            return "connection refused"
        return "host not found" if socket.gaierror in causes else "cannot connect"
    if isinstance(exc, orjson.JSONDecodeError):
        return "not JSON"
    return str(exc) if isinstance(exc, ValueError) else type(exc).__name__  # keys.py's own messages


async def _jwks_problem(settings: Settings) -> str | None:
    """A JWKS that cannot be fetched: this process has no cached keys, so a server started now could
    verify no token."""
    source = build_key_source(settings)
    if not isinstance(source, JwksKeySource):
        return None
    async with httpx.AsyncClient(timeout=settings.jwks_timeout_seconds) as http:
        source.bind(http)
        try:
            await source.probe()
        except Exception as exc:
            return f"JWT_JWKS_URL cannot be fetched ({_fetch_failure(exc)}): no keys to verify tokens with"
    return None


async def _readiness_problem(settings: Settings, seconds: float) -> str | None:
    checking = "database"
    try:
        async with asyncio.timeout(seconds):
            problem = await _database_problem(settings)
            checking = "JWT_JWKS_URL"
            return problem or await _jwks_problem(settings)
    except TimeoutError:
        return f"{checking} did not answer within {seconds:g} s"


def cmd_healthcheck(args: argparse.Namespace) -> None:
    settings = _validated(load_settings(require_cursor_secret=True))
    problem = asyncio.run(_readiness_problem(settings, args.timeout))
    if problem is not None:
        _fail(problem, 1)
    print("ok")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = command("serve", cmd_serve, "Serve in production (configuration from the environment / .env).")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container listens on all
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* from --forwarded-allow-ips")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")

    dev = command("dev", cmd_dev, "Local development: embedded PostgreSQL, dev signing key, docs on.")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)

    command("migrate", cmd_migrate, "Apply database migrations to DATABASE_URL (idempotent).")

    token = command("token", cmd_token, "Mint a token with the local dev signing key or JWT_SECRET.")
    token.add_argument("--sub", required=True, help="subject (user id at the identity provider)")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--scope", default=None, help=f'space-separated scopes, e.g. "{DEFAULT_SCOPE}"')
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")

    command("openapi", cmd_openapi, "Print the OpenAPI document as JSON.")

    health = command(
        "healthcheck",
        cmd_healthcheck,
        "Exit 0 when ready: valid configuration, the database answers and is migrated to head, the JWKS (if "
        "configured) can be fetched; else exit 1 with one line saying why.",
    )
    health.add_argument("--timeout", type=float, default=5.0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        args.handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"todo-api: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
