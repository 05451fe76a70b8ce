"""The PostgreSQL server under the benchmark and the fresh database each run creates and drops."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from todo_api.storage import embedded
from todo_api.storage.database import driver_url


def libpq_url(url: str) -> str:
    """A plain `postgresql://` URL (what libpq, psycopg and DATABASE_URL all accept)."""
    return driver_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return driver_url(url).set(drivername="postgresql").render_as_string(hide_password=True)


def with_database(url: str, name: str) -> str:
    return driver_url(url).set(drivername="postgresql", database=name).render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    description: str


def server(configured: str | None, data_dir: Path) -> Server:
    """`BENCH_DATABASE_URL` if given, else an embedded PostgreSQL (stops when this process exits)."""
    if configured:
        return Server(libpq_url(configured), f"BENCH_DATABASE_URL ({redacted(configured)})")
    url = embedded.start((data_dir / "postgres").resolve())
    return Server(libpq_url(url), f"embedded PostgreSQL in {data_dir / 'postgres'}")


def server_version(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@contextmanager
def fresh_database(server_url: str, *, keep: bool = False) -> Iterator[str]:
    """Create `bench_<random>` on the server, yield its URL, drop it afterwards (unless `keep`)."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as connection:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def copy_of(server_url: str, database_url: str) -> Iterator[str]:
    """A new database with the contents of `database_url`'s (`CREATE DATABASE … TEMPLATE`, a copy of
    its files: data, indexes and planner statistics), dropped afterwards. Nothing may be connected
    to the original while it is copied."""
    template = make_url(database_url).database or ""
    name = f"{template}_{uuid.uuid4().hex[:6]}"
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(statement)
    try:
        yield with_database(database_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
