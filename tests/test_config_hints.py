"""Configuration hints: a variable that looks like a misspelt setting, and a JWKS key source that
checks neither issuer nor audience, are each one warning line at start; no line holds a value."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.commands import run_cli
from tests.keys import CURSOR_SECRET
from todo_api.config import Settings, load_settings
from todo_api.config_hints import hints, meant_setting, misspelt_settings

SETTINGS = [name.upper() for name in Settings.model_fields]
JWKS = "https://idp.example.org/.well-known/jwks.json"


def settings(**values: Any) -> Settings:
    return load_settings(_env_file=None, require_database=False, require_key_source=False, **values)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("JWT_JWKS_URI", "JWT_JWKS_URL"),
        ("DATABASE_URI", "DATABASE_URL"),
        ("JWKS_URL", "JWT_JWKS_URL"),
        ("jwt_audiance", "JWT_AUDIENCE"),
        ("JWT_ISSUR", "JWT_ISSUER"),
        ("LOGLEVEL", "LOG_LEVEL"),
        ("CORS_ORIGIN", "CORS_ORIGINS"),
        ("CURSOR_SECRETS", "CURSOR_SECRET"),
        ("JWT_SECRET_KEY", "JWT_SECRET"),
    ],
)
def test_a_misspelt_setting_is_named_with_the_one_meant(name: str, meant: str) -> None:
    assert misspelt_settings({name: "value-never-shown"}, "environment") == [
        f"{name} (environment) is not a todo-api setting and is ignored: did you mean {meant}?"
    ]


@pytest.mark.parametrize(
    "name", ["PATH", "HOME", "HOSTNAME", "TEST_DATABASE_URL", "PGDATABASE", "REDIS_HOST", "UV_PYTHON", *SETTINGS]
)
def test_settings_and_other_programs_variables_get_no_hint(name: str) -> None:
    assert misspelt_settings({name: "x"}, "environment") == []


def test_an_unknown_variable_in_todo_apis_own_namespace_gets_a_hint() -> None:
    assert misspelt_settings({"JWT_TOKEN_LIFETIME": "x"}, ".env") == [
        "JWT_TOKEN_LIFETIME (.env) is not a todo-api setting and is ignored (see .env.example)"
    ]


@given(st.text(min_size=1, max_size=40))
def test_a_hint_names_only_known_settings(name: str) -> None:
    meant = meant_setting(name, SETTINGS)
    assert meant is None or meant in SETTINGS


@pytest.mark.parametrize(
    ("values", "unchecked"),
    [
        ({}, "JWT_ISSUER and JWT_AUDIENCE"),
        ({"jwt_issuer": "https://idp.example.org/"}, "JWT_AUDIENCE"),
        ({"jwt_audience": ["todo-api"]}, "JWT_ISSUER"),
    ],
)
def test_a_jwks_without_issuer_or_audience_gets_a_warning(values: dict[str, Any], unchecked: str) -> None:
    assert hints(settings(jwt_jwks_url=JWKS, **values), {}, None) == [
        f"JWT_JWKS_URL is set without {unchecked}: tokens signed by those keys are accepted whatever their issuer "
        "or audience (set both in production)"
    ]


def test_a_jwks_with_issuer_and_audience_or_another_key_source_gets_none() -> None:
    assert (
        hints(settings(jwt_jwks_url=JWKS, jwt_issuer="https://idp.example.org/", jwt_audience=["api"]), {}, None) == []
    )
    assert hints(settings(jwt_secret="s" * 40), {}, None) == []


def test_serve_logs_each_hint_once_at_start_without_values(tmp_path: Path) -> None:
    """From the environment and `.env`; the server then stops (its port is taken)."""
    (tmp_path / ".env").write_text("DATABASE_URI=postgresql://u:dotenv-secret@h/db\n")
    env = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
        "JWT_JWKS_URL": JWKS,
        "JWT_JWKS_URI": "https://env-secret.example/jwks",
        "CURSOR_SECRET": CURSOR_SECRET,
        "LOG_FORMAT": "text",
    }
    with socket.create_server(("127.0.0.1", 0)) as busy:
        result = run_cli(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(busy.getsockname()[1]), **env)
    assert result.returncode != 0
    warnings = [line for line in result.stderr.splitlines() if "todo_api.config" in line]
    assert len(warnings) == 3, result.stderr
    assert (
        "JWT_JWKS_URI (environment) is not a todo-api setting and is ignored: did you mean JWT_JWKS_URL?" in warnings[0]
    )
    assert "DATABASE_URI (.env) is not a todo-api setting and is ignored: did you mean DATABASE_URL?" in warnings[1]
    assert "JWT_JWKS_URL is set without JWT_ISSUER and JWT_AUDIENCE" in warnings[2]
    assert "secret" not in result.stderr
