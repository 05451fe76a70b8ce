"""The server process's settings are validated like every other (one line naming the variable).
Its behaviour is tested against real `todo-api serve` processes in tests/faults: slow clients
(test_slow_clients.py), worker startup and liveness (test_worker_startup.py), SIGTERM
(test_shutdown.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from todo_api.config import ConfigError, load_settings

REQUIRED: dict[str, Any] = {
    "database_url": "postgresql://app@127.0.0.1:1/app",
    "jwt_secret": "x" * 40,
    "_env_file": None,
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HTTP_HEADER_TIMEOUT_SECONDS", "0", "HTTP_HEADER_TIMEOUT_SECONDS input should be greater than 0"),
        ("HTTP_HEADER_TIMEOUT_SECONDS", "soon", "HTTP_HEADER_TIMEOUT_SECONDS input should be a valid number"),
        ("HTTP_BODY_TIMEOUT_SECONDS", "-1", "HTTP_BODY_TIMEOUT_SECONDS input should be greater than 0"),
        ("HTTP_BODY_TIMEOUT_SECONDS", "301", "HTTP_BODY_TIMEOUT_SECONDS input should be less than or equal to 300"),
        (
            "WORKER_STARTUP_TIMEOUT_SECONDS",
            "0",
            "WORKER_STARTUP_TIMEOUT_SECONDS input should be greater than or equal to 1",
        ),
        ("WORKER_STARTUP_TIMEOUT_SECONDS", "1.5", "WORKER_STARTUP_TIMEOUT_SECONDS input should be a valid integer"),
        (
            "WORKER_LIVENESS_TIMEOUT_SECONDS",
            "0",
            "WORKER_LIVENESS_TIMEOUT_SECONDS input should be greater than or equal to 1",
        ),
        (
            "WORKER_LIVENESS_TIMEOUT_SECONDS",
            "301",
            "WORKER_LIVENESS_TIMEOUT_SECONDS input should be less than or equal to 300",
        ),
    ],
)
def test_invalid_server_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings(**REQUIRED)
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(message), error.value.problems


def test_server_defaults_are_within_the_documented_bounds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(**REQUIRED)
    assert 0 < settings.http_header_timeout_seconds <= 30
    assert 0 < settings.http_body_timeout_seconds <= 30
    assert settings.worker_liveness_timeout_seconds < settings.worker_startup_timeout_seconds
