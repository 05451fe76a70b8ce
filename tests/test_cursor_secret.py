"""CURSOR_SECRET: required to serve, at least 32 characters, never echoed; `dev` keeps its own."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.commands import run_cli
from tests.keys import CURSOR_SECRET
from todo_api import cli
from todo_api.app import create_app
from todo_api.auth.dev import DEV_CURSOR_SECRET_FILE, with_dev_cursor_secret
from todo_api.config import ConfigError, load_settings

JWT_SECRET = "a-perfectly-fine-secret-of-more-than-32-bytes"
DATABASE_URL = "postgresql://app:db-password-never-printed@127.0.0.1:1/app"


def test_serve_names_a_missing_cursor_secret(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", "--port", "1", DATABASE_URL=DATABASE_URL, JWT_SECRET=JWT_SECRET)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("todo-api: CURSOR_SECRET is required (at least 32 random characters")


@pytest.mark.parametrize("name", ["CURSOR_SECRET", "CURSOR_SECRET_PREVIOUS"])
def test_a_short_cursor_secret_is_refused_without_echoing_it(name: str) -> None:
    short = "Short-Cursor-Secret-31-chars-xx"
    assert len(short) == 31
    overrides: dict[str, Any] = {"_env_file": None, name.lower(): short}
    with pytest.raises(ConfigError) as error:
        load_settings(require_database=False, require_key_source=False, **overrides)
    assert error.value.problems == [f"{name} must be at least 32 characters"]
    assert short not in str(error.value)


def test_blank_is_unset_and_required_only_to_serve() -> None:
    settings = load_settings(_env_file=None, require_database=False, require_key_source=False, cursor_secret="  ")
    assert settings.cursor_secret is None
    with pytest.raises(ConfigError, match="CURSOR_SECRET is required"):
        load_settings(_env_file=None, require_database=False, require_key_source=False, require_cursor_secret=True)


async def test_the_app_refuses_to_start_without_one(base_settings: dict[str, Any]) -> None:
    app = create_app(load_settings(**{**base_settings, "cursor_secret": None}))
    with pytest.raises(ConfigError, match="CURSOR_SECRET is required"):
        async with app.router.lifespan_context(app):
            pass


def test_dev_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, require_database=False, require_key_source=False, data_dir=tmp_path)
    first = with_dev_cursor_secret(settings).cursor_secret
    assert first is not None
    assert len(first.get_secret_value()) >= 32
    path = tmp_path / DEV_CURSOR_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = with_dev_cursor_secret(settings).cursor_secret
    assert again is not None
    assert again.get_secret_value() == first.get_secret_value()  # cursors survive a restart


def test_dev_keeps_a_configured_secret(tmp_path: Path) -> None:
    settings = load_settings(
        _env_file=None, require_database=False, require_key_source=False, data_dir=tmp_path, cursor_secret=CURSOR_SECRET
    )
    assert with_dev_cursor_secret(settings) is settings
    assert not (tmp_path / DEV_CURSOR_SECRET_FILE).exists()


def test_dev_settings_carry_the_kept_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    """`todo-api dev` with a database of its own (no embedded PostgreSQL needed for this check)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    settings = cli._dev_settings()
    assert settings.cursor_secret is not None
    kept = (tmp_path / "data" / DEV_CURSOR_SECRET_FILE).read_text().strip()
    assert settings.cursor_secret.get_secret_value() == kept
