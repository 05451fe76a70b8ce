""" "Unavailable" is decided by SQLSTATE, not by the driver's exception class: a read-only,
shutting-down, overloaded or conflicting database gives 503 + `Retry-After`, never 500; a
serialization failure or deadlock is first retried once; every other database error stays a 500.

Against a PostgreSQL of the module's own: real faults (a read-only database, a real serialization
failure, a backend terminated mid-request, a server out of connection slots), and every SQLSTATE
class raised by the real server from a trigger, so each arrives through the real driver as the
exception class psycopg picks for it.
"""

from __future__ import annotations

import asyncio
import string
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.conftest import RunningApp, RunningAppFactory, todo_database
from tests.faults.servers import HANG, PostgresInstance, wait_until
from tests.faults.test_database_faults import assert_unavailable
from tests.keys import Signer

MAX_CONNECTIONS = 20
# Inserting a todo titled "raise <SQLSTATE>" makes the server raise that SQLSTATE; every attempt
# is counted in a sequence (sequences ignore rollbacks), so retries are visible.
RAISE_ON_REQUEST = """
CREATE SEQUENCE raise_attempts;
SELECT nextval('raise_attempts');
CREATE FUNCTION raise_requested_sqlstate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title LIKE 'raise %' THEN
        PERFORM nextval('raise_attempts');
        RAISE EXCEPTION 'raised on request' USING ERRCODE = substr(NEW.title, 7, 5);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER raise_requested BEFORE INSERT ON todos FOR EACH ROW EXECUTE FUNCTION raise_requested_sqlstate();
"""

# The contract, per SQLSTATE class and code (PostgreSQL appendix A).
UNAVAILABLE_CLASSES = {"08", "53", "57"}
UNAVAILABLE_CODES = {"25006", "25P03", "25P04", "40000", "40001", "40003", "40P01", "55P03", "58000", "58030"}
RETRIED_CODES = {"40001", "40P01"}
NAMED = {
    "25006": "read_only_sql_transaction",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "53300": "too_many_connections",
    "08006": "connection_failure",
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "57014": "query_canceled",
    "53100": "disk_full",
    "55P03": "lock_not_available",
    # ... and errors that are bugs, not outages: 500
    "23514": "check_violation",
    "22012": "division_by_zero",
    "40002": "transaction_integrity_constraint_violation",
    "42P01": "undefined_table",
    "54000": "program_limit_exceeded",
    "55000": "object_not_in_prerequisite_state",
    "XX000": "internal_error",
    "P0001": "raise_exception",
}
# Classes a server may send as an ERROR (00-02 are success, warning and "no data").
ERROR_CLASSES = [
    "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22", "23", "24", "25", "26", "27", "28",
    "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F", "40", "42", "44", "53", "54", "55", "57", "58", "72",
    "F0", "HV", "P0", "XX",
]  # fmt: skip


def expected_status(code: str) -> int:
    return 503 if code[:2] in UNAVAILABLE_CLASSES or code in UNAVAILABLE_CODES else 500


@pytest.fixture(scope="module")
def target() -> Iterator[PostgresInstance]:
    settings = {
        "max_connections": str(MAX_CONNECTIONS),
        "superuser_reserved_connections": "0",
        "reserved_connections": "0",
    }
    with todo_database("unavailable-", settings, RAISE_ON_REQUEST) as instance:
        yield instance


@pytest.fixture(scope="module")
async def app(target: PostgresInstance, running_app: RunningAppFactory) -> AsyncIterator[RunningApp]:
    async with running_app(database_url=target.tcp_url("todo")) as running:
        yield running


def attempts(target: PostgresInstance) -> int:
    return int(target.fetch("SELECT last_value FROM raise_attempts", database="todo")[0][0])


async def raise_through_the_api(
    client: httpx.AsyncClient, target: PostgresInstance, headers: dict[str, str], code: str
) -> tuple[httpx.Response, int]:
    before = attempts(target)
    response = await client.post("/api/todos", json={"title": f"raise {code}"}, headers=headers)
    return response, attempts(target) - before


@pytest.mark.parametrize("code", list(NAMED), ids=[f"{code}-{name}" for code, name in NAMED.items()])
async def test_named_sqlstates(
    code: str, app: RunningApp, target: PostgresInstance, auth: Callable[..., dict[str, str]]
) -> None:
    response, tries = await raise_through_the_api(app.client, target, auth(), code)
    if expected_status(code) == 503:
        assert_unavailable(response)
    else:
        assert response.status_code == 500, response.text
        assert set(response.json()) == {"detail", "code", "request_id"}
    assert tries == (2 if code in RETRIED_CODES else 1)


sqlstates = st.builds(
    lambda klass, rest: klass + rest,
    st.sampled_from(ERROR_CLASSES),
    st.text(alphabet=string.digits + string.ascii_uppercase, min_size=3, max_size=3),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=sqlstates)
async def test_every_sqlstate_class(code: str, app: RunningApp, target: PostgresInstance, signer: Signer) -> None:
    """Whatever class psycopg maps a code to (known codes get their own class, unknown ones their
    class's base), the status follows the SQLSTATE."""
    headers = {"Authorization": f"Bearer {signer.token('every-class')}"}
    response, tries = await raise_through_the_api(app.client, target, headers, code)
    assert response.status_code == expected_status(code), (code, response.text)
    assert tries == (2 if code in RETRIED_CODES else 1), code


# --- real faults -----------------------------------------------------------------------------

type Call = Callable[[], Awaitable[httpx.Response]]


def writes(client: httpx.AsyncClient, headers: dict[str, str], todo_id: str, list_id: str) -> dict[str, Call]:
    return {
        "POST /todos": lambda: client.post("/api/todos", json={"title": "w"}, headers=headers),
        "PATCH /todos/{id}": lambda: client.patch(f"/api/todos/{todo_id}", json={"completed": True}, headers=headers),
        "PUT /todos/{id}": lambda: client.put(f"/api/todos/{todo_id}", json={"title": "put"}, headers=headers),
        "DELETE /todos/{id}": lambda: client.delete(f"/api/todos/{todo_id}", headers=headers),
        "POST /lists": lambda: client.post("/api/lists", json={"name": uuid.uuid4().hex}, headers=headers),
        "PATCH /lists/{id}": lambda: client.patch(f"/api/lists/{list_id}", json={"name": "renamed"}, headers=headers),
        "DELETE /lists/{id}": lambda: client.delete(f"/api/lists/{list_id}", headers=headers),
        "DELETE /users/me": lambda: client.delete("/api/users/me", headers=headers),
    }


async def test_read_only_database_refuses_writes_with_503_and_still_serves_reads(
    target: PostgresInstance, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """What a hot standby, a failover in progress or `default_transaction_read_only` look like: 25006."""
    headers = auth()
    url = target.tcp_url("todo")
    async with running_app(database_url=url) as running:
        todo = await running.client.post("/api/todos", json={"title": "kept"}, headers=headers)
        a_list = await running.client.post("/api/lists", json={"name": "kept"}, headers=headers)
        assert todo.status_code == a_list.status_code == 201
    todo_id, list_id = todo.json()["id"], a_list.json()["id"]

    target.admin("ALTER DATABASE todo SET default_transaction_read_only = on")
    try:
        async with running_app(database_url=url) as running:  # new connections: read-only sessions
            client = running.client
            for name in ("/api/users/me", "/api/todos", f"/api/todos/{todo_id}", "/api/lists", f"/api/lists/{list_id}"):
                response = await client.get(name, headers=headers)
                assert response.status_code == 200, (name, response.text)
            for name, write in writes(client, headers, todo_id, list_id).items():
                response = await write()
                assert response.status_code == 503, (name, response.text)
                assert_unavailable(response)
    finally:
        target.admin("ALTER DATABASE todo RESET default_transaction_read_only")

    async with running_app(database_url=url) as running:  # writable again: the same writes succeed
        for name, write in writes(running.client, headers, todo_id, list_id).items():
            response = await write()
            assert response.status_code in {200, 201, 204}, (name, response.text)


async def test_serialization_failure_is_retried_once_and_succeeds(
    target: PostgresInstance, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """A real 40001: under SERIALIZABLE, a PATCH whose row another transaction updates and commits
    while the PATCH waits for it. The server aborts the PATCH's transaction; the retry succeeds."""
    headers = auth()
    url = target.tcp_url("todo")
    target.admin("ALTER DATABASE todo SET default_transaction_isolation = 'serializable'")
    try:
        async with running_app(database_url=url) as running:
            client = running.client
            created = await client.post("/api/todos", json={"title": "before"}, headers=headers)
            assert created.status_code == 201, created.text
            todo_id = created.json()["id"]
            async with await psycopg.AsyncConnection.connect(url) as other:
                await other.execute("UPDATE todos SET description = 'concurrent' WHERE id = %s", [todo_id])
                patch = asyncio.create_task(
                    client.patch(f"/api/todos/{todo_id}", json={"title": "after"}, headers=headers)
                )
                await asyncio.to_thread(wait_until, lambda: lock_waiters(target) > 0, HANG, "the PATCH to wait")
                await other.commit()  # the PATCH's snapshot predates this commit: 40001
            patched = await asyncio.wait_for(patch, HANG)
    finally:
        target.admin("ALTER DATABASE todo RESET default_transaction_isolation")
    assert patched.status_code == 200, patched.text
    assert (patched.json()["title"], patched.json()["description"]) == ("after", "concurrent")


async def test_backend_terminated_mid_request_gives_503_then_recovers(
    target: PostgresInstance, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """A real 57P01 (FATAL: terminating connection due to administrator command), as in a restart."""
    headers = auth()
    async with running_app(database_url=target.tcp_url("todo")) as running:
        client = running.client
        created = await client.post("/api/todos", json={"title": "t"}, headers=headers)
        todo_id = created.json()["id"]
        async with await psycopg.AsyncConnection.connect(target.tcp_url("todo")) as other:
            await other.execute("SELECT 1 FROM todos WHERE id = %s FOR UPDATE", [todo_id])
            patch = asyncio.create_task(client.patch(f"/api/todos/{todo_id}", json={"title": "u"}, headers=headers))
            await asyncio.to_thread(wait_until, lambda: lock_waiters(target) > 0, HANG, "the PATCH to wait")
            target.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            response = await asyncio.wait_for(patch, HANG)
        assert_unavailable(response)
        again = await client.patch(f"/api/todos/{todo_id}", json={"title": "u"}, headers=headers)
        assert again.status_code == 200, again.text


async def test_server_out_of_connection_slots_gives_503_then_recovers(
    target: PostgresInstance, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """A real 53300 (FATAL: sorry, too many clients already) when the pool opens a connection."""
    headers = auth()
    url = target.tcp_url("todo")
    hogs: list[psycopg.AsyncConnection[Any]] = []
    try:
        while (hog := await connect_unless_full(url)) is not None:  # take every slot the server has
            hogs.append(hog)
            assert len(hogs) <= MAX_CONNECTIONS
        async with running_app(database_url=url) as running:
            response = await running.client.get("/api/todos", headers=headers)
            assert_unavailable(response)
            await hogs.pop().close()
            response = await running.client.get("/api/todos", headers=headers)
            assert response.status_code == 200, response.text
    finally:
        for hog in hogs:
            await hog.close()


async def connect_unless_full(url: str) -> psycopg.AsyncConnection[Any] | None:
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        if "too many clients" in str(exc):
            return None
        raise


def lock_waiters(instance: PostgresInstance) -> int:
    rows = instance.fetch("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'", database="todo")
    return int(rows[0][0])
