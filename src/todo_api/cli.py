"""`todo-api` command line: serve | dev | migrate | token | openapi | healthcheck."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import orjson
from sqlalchemy import literal
from sqlmodel import Session, select

from todo_api import server
from todo_api.app import create_app
from todo_api.auth.dev import mint_token, with_dev_cursor_secret, with_dev_key
from todo_api.auth.verifier import TokenVerifier
from todo_api.config import ConfigError, LogFormat, Settings, load_settings
from todo_api.log import configure_logging
from todo_api.storage import embedded, migrate
from todo_api.storage.database import create_engine, database

DEFAULT_SCOPE = "todos:read todos:write"


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"todo-api: {message}", file=sys.stderr)
    raise SystemExit(code)


def _validated(settings: Settings) -> Settings:
    """Parse the key source now, so a bad key stops the process before it serves."""
    TokenVerifier(settings)
    return settings


def _exit_cleanly_after_sigterm() -> None:
    """uvicorn finishes in-flight requests on SIGTERM, then re-raises the signal with the handler
    that was installed before it started. Make that handler a normal exit: status 0 after a
    graceful shutdown, and `atexit` still runs (the embedded PostgreSQL of `dev` is stopped)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _validated(load_settings(require_cursor_secret=True))
    configure_logging(settings.log_level, settings.log_format)
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


def cmd_dev(args: argparse.Namespace) -> None:
    settings = _dev_settings()
    configure_logging(settings.log_level, settings.log_format)
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
    server.serve(create_app(settings), settings, host=args.host, port=args.port)


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


def _ping(session: Session) -> None:
    session.exec(select(literal(1))).one()


async def _database_answers(settings: Settings, seconds: float) -> None:
    engine = create_engine(settings)
    try:
        async with asyncio.timeout(seconds):
            await database(settings, engine).run(_ping)
    finally:
        await engine.dispose()


def cmd_healthcheck(args: argparse.Namespace) -> None:
    settings = _validated(load_settings(require_cursor_secret=True))
    try:
        asyncio.run(_database_answers(settings, args.timeout))
    except TimeoutError:
        _fail(f"database did not answer within {args.timeout:g} s", 1)
    except Exception as exc:
        _fail(f"database unreachable ({type(exc).__name__})", 1)
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

    health = command("healthcheck", cmd_healthcheck, "Exit 0 when configuration is valid and the database answers.")
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
