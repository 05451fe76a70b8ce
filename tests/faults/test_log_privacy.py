"""Logs hold no user data: an unexpected error's log line has the request id and the traceback, but
no value a user sent (titles, descriptions) or a token carried (the token itself, subject, email,
name), at INFO and at DEBUG, in JSON and in text, in one worker and in two.

The errors are real and unexpected to the app: constraints and a trigger added to a PostgreSQL of
the test's own make the server refuse rows and quote their values back, in the message
(`refused: <title>`), in DETAIL (`Failing row contains (…)`, `Key (description)=(…)`), the way
PostgreSQL does. The API is a real `todo-api serve` process with its production logging.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.faults.conftest import todo_database
from tests.faults.servers import HANG, ApiServer, PostgresInstance, start_api_server
from tests.keys import Signer

pytestmark = pytest.mark.slow

REFUSE_CANARIES = r"""
ALTER TABLE users ADD CONSTRAINT canary_email CHECK (email NOT LIKE '%email-canary%');
CREATE UNIQUE INDEX canary_description ON todos (description) WHERE description LIKE 'dup-canary%';
CREATE FUNCTION refuse_canary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title LIKE '%title-canary%' THEN
        RAISE EXCEPTION 'refused: %', NEW.title USING DETAIL = 'description: ' || NEW.description;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_canary BEFORE INSERT ON todos FOR EACH ROW EXECUTE FUNCTION refuse_canary();
"""


@pytest.fixture(scope="module")
def canary_database() -> Iterator[PostgresInstance]:
    with todo_database("logs-", setup=REFUSE_CANARIES) as instance:
        yield instance


@dataclass(frozen=True)
class Secrets:
    """Distinctive values sent to the API; none of them may reach a log line."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def subject(self) -> str:
        return f"sub-canary-{self.tag}"

    @property
    def email(self) -> str:
        return f"email-canary-{self.tag}@example.com"

    @property
    def name(self) -> str:
        return f"Name Canary {self.tag}"

    @property
    def title(self) -> str:
        return f"title-canary-{self.tag}"

    @property
    def description(self) -> str:
        return f"description-canary-{self.tag}"

    @property
    def duplicate(self) -> str:
        return f"dup-canary-{self.tag}"


@pytest.fixture(
    params=[("info", "json", 1), ("debug", "json", 2), ("debug", "text", 1)],
    ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-workers",
)
def logged_server(
    request: pytest.FixtureRequest,
    canary_database: PostgresInstance,
    service_env: dict[str, str],
    auth: Callable[..., dict[str, str]],
) -> Iterator[ApiServer]:
    level, fmt, workers = request.param
    env = {**service_env, "DATABASE_URL": canary_database.tcp_url("todo"), "LOG_LEVEL": level, "LOG_FORMAT": fmt}
    server = start_api_server(env, auth("readiness"), workers=workers)
    yield server
    server.stop()


async def test_unexpected_database_errors_log_request_id_and_traceback_but_no_user_data(
    logged_server: ApiServer, signer: Signer
) -> None:
    secrets = Secrets()
    tokens = {
        "refused": signer.token(secrets.subject, email=secrets.email, name=secrets.name),
        "accepted": signer.token(secrets.subject, email=f"ok-{secrets.tag}@example.com", name=secrets.name),
    }
    ids = {name: f"req-{name}-{secrets.tag}" for name in ("email", "title", "duplicate", "first", "garbage")}

    def headers(token: str, request: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-Request-ID": ids[request]}

    async with httpx.AsyncClient(base_url=logged_server.base_url, timeout=HANG) as client:
        # The users row fails a CHECK: DETAIL "Failing row contains (…, subject, email, name, …)".
        refused = await client.get("/api/users/me", headers=headers(tokens["refused"], "email"))
        # A trigger refuses the todo, quoting its title in the message and its description in DETAIL.
        body = {"title": secrets.title, "description": secrets.description}
        trigger = await client.post("/api/todos", json=body, headers=headers(tokens["accepted"], "title"))
        # A unique index refuses the second todo: DETAIL "Key (description)=(dup-canary-…) already exists."
        first = await client.post(
            "/api/todos",
            json={"title": "a", "description": secrets.duplicate},
            headers=headers(tokens["accepted"], "first"),
        )
        duplicate = await client.post(
            "/api/todos",
            json={"title": "b", "description": secrets.duplicate},
            headers=headers(tokens["accepted"], "duplicate"),
        )
        garbage = await client.get("/api/todos", headers=headers(f"{tokens['accepted']}x", "garbage"))
    assert (refused.status_code, trigger.status_code, first.status_code) == (500, 500, 201)
    assert (duplicate.status_code, garbage.status_code) == (500, 401)
    log = logged_server.log_text()  # written unbuffered (PYTHONUNBUFFERED)

    secret_values = [
        secrets.subject,
        secrets.email,
        secrets.name,
        secrets.title,
        secrets.description,
        secrets.duplicate,
    ]
    for token in tokens.values():
        secret_values += [token, *token.split(".")]  # nor any part of it (header, claims, signature)
    leaked = [value for value in secret_values if value in log]
    assert leaked == [], f"user data in the log: {leaked}\n{log[-3000:]}"

    for request in ("email", "title", "duplicate"):
        assert ids[request] in log
        assert_traceback_logged(log, ids[request])


def assert_traceback_logged(log: str, request_id: str) -> None:
    """The error line carries the request id and a traceback naming the SQLSTATE."""
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("request_id") == request_id and entry.get("msg") == "unhandled error":
                assert "Traceback (most recent call last)" in entry["exc"]
                assert "SQLSTATE" in entry["exc"]
                return
    marker = f"unhandled error request_id={request_id}\nTraceback (most recent call last)"
    assert marker in log, f"no error line with a traceback for {request_id}"
    assert "SQLSTATE" in log.split(marker, 1)[1].split("\nerror ", 1)[0]
