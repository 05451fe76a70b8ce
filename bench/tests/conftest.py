"""Fixtures for the benchmark's own tests: a real PostgreSQL (`TEST_DATABASE_URL`, else embedded),
and a fresh migrated database with a few seeded users for the floor."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import pg
from bench.fixture import Prepared, prepared
from bench.remote import Relay


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-test-pg-") as directory:
        yield pg.server(os.environ.get("TEST_DATABASE_URL"), Path(directory)).url


@pytest.fixture(scope="session")
def ready(server_url: str) -> Iterator[Prepared]:
    """A migrated database with three users (the bench's own seed, signer and tokens)."""
    with prepared(server_url, {"user-1": 30, "user-2": 30, "crowd-0001": 5}) as prepared_database:
        yield prepared_database


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging (the floors' startup) replaces the root logger's handlers: put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def relay(ready: Prepared, tmp_path: Path) -> Iterator[Relay]:
    """A relay in front of the test database that only counts (no delay)."""
    started = Relay.start(ready.database_url, 0.0, tmp_path / "relay.log")
    try:
        yield started
    finally:
        started.stop()
