"""Graceful shutdown of the real `todo-api serve` process on SIGTERM (what every orchestrator sends).

The listener closes at once, with one worker or several (new connections are refused, so a load
balancer moves on; none is accepted and left unanswered), the request in flight is allowed to
finish and its write is committed, and the process exits on its own within SHUTDOWN_GRACE_SECONDS.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.servers import (
    HANG,
    ApiServer,
    holding,
    port_accepts,
    start_api_server,
    wait_for_lock_waiters,
    wait_until,
)

# Long, so that "refused at once" and "exited within the grace period" stay far apart even when the
# machine is busy (the suite runs on both cores): a refusal at the end of the grace period fails.
GRACE_SECONDS = 30
# After a graceful shutdown uvicorn re-raises the signal it caught; `todo-api serve` turns that
# into a normal exit, so a clean shutdown ends with status 0.
CLEAN_EXITS = {0}


@pytest.fixture
def serve(
    database_url: str, service_env: dict[str, str], auth: Callable[..., dict[str, str]]
) -> Iterator[Callable[..., ApiServer]]:
    """`serve(workers=1, **env)`: `todo-api serve` on the test database (INFO, text log unless
    overridden), running once it answers; stopped after the test."""
    started: list[ApiServer] = []

    def start(workers: int = 1, **env: str) -> ApiServer:
        base = {**service_env, "DATABASE_URL": database_url, "LOG_LEVEL": "info", "LOG_FORMAT": "text"}
        started.append(start_api_server({**base, **env}, auth("readiness"), workers=workers))
        return started[-1]

    yield start
    for server in started:
        server.stop()


# "At once": the supervisor handles signals on a 0.5 s tick, a worker on a 0.1 s tick. Generous for a
# busy machine, and still a fifth of the grace period.
REFUSED_WITHIN = 6.0


def first_contact(port: int, headers: dict[str, str]) -> tuple[str, float]:
    """What a client connecting right now gets (refused, an answer, or a closed connection) and
    after how long; a connection that is accepted but never answered fails after HANG."""
    started = time.monotonic()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    except ConnectionRefusedError:
        return "refused", time.monotonic() - started
    with sock:
        request = "GET /api/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        try:
            sock.sendall(request.encode())
            answer = sock.recv(64)
        except ConnectionResetError:
            answer = b""
    outcome = answer[:12].decode("latin-1") if answer else "closed without an answer"
    return outcome, time.monotonic() - started


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_refuses_new_connections_and_finishes_the_request_in_flight(
    serve: Callable[..., ApiServer], workers: int, db_engine: AsyncEngine, auth: Callable[..., dict[str, str]]
) -> None:
    # The held lock must not time the request out.
    server = await asyncio.to_thread(
        serve, workers=workers, SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS), DB_STATEMENT_TIMEOUT_MS="20000"
    )
    headers = auth()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as client:
        created = await client.post("/api/todos", json={"title": "before shutdown"}, headers=headers)
        assert created.status_code == 201, created.text
        todo_id = created.json()["id"]

        async with holding(db_engine, "SELECT id FROM todos WHERE id = :id FOR UPDATE", id=todo_id) as lock:
            in_flight = asyncio.create_task(
                client.patch(f"/api/todos/{todo_id}", json={"title": "patched during shutdown"}, headers=headers)
            )
            try:
                await wait_for_lock_waiters(db_engine)  # the PATCH is inside the server, stuck on our lock

                server.process.send_signal(signal.SIGTERM)
                sigterm_at = time.monotonic()
                # Right after the signal: served, refused or closed, but never left waiting.
                newcomer, newcomer_after = await asyncio.to_thread(first_contact, server.port, headers)
                refused_after = await asyncio.to_thread(
                    wait_until, lambda: not port_accepts(server.port), HANG, "the listener to close"
                )
                refused_after += newcomer_after
                with pytest.raises(httpx.ConnectError):
                    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as newcomer_client:
                        await newcomer_client.get("/api/users/me", headers=headers)
                assert not in_flight.done()
                assert server.process.poll() is None, "exited without waiting for the request in flight"

                await lock.rollback()  # the request in flight may now finish
                response = await asyncio.wait_for(in_flight, HANG)
                answered_after = time.monotonic() - sigterm_at
            finally:
                if not in_flight.done():
                    in_flight.cancel()

    assert response.status_code == 200, response.text
    assert response.json()["title"] == "patched during shutdown"
    returncode = await asyncio.to_thread(server.process.wait, GRACE_SECONDS + HANG)
    exited_after = time.monotonic() - sigterm_at

    async with db_engine.connect() as connection:
        title = (await connection.execute(text("SELECT title FROM todos WHERE id = :id"), {"id": todo_id})).scalar()
    log = server.log_text()
    print(
        f"\n[shutdown] --workers {workers}: SIGTERM -> a connection opened at once: {newcomer} after"
        f" {newcomer_after:.2f} s; new connections refused after {refused_after:.2f} s,"
        f" in-flight PATCH answered 200 after {answered_after:.2f} s (lock released then),"
        f" process exited with {returncode} after {exited_after:.2f} s (grace {GRACE_SECONDS} s)"
    )
    assert title == "patched during shutdown"
    assert newcomer_after < REFUSED_WITHIN, newcomer
    assert refused_after < REFUSED_WITHIN
    assert returncode in CLEAN_EXITS, log[-3000:]
    assert exited_after < GRACE_SECONDS, "the process did not finish its shutdown within the grace period"
    assert "Application shutdown complete" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


SHORT_GRACE_SECONDS = 2


@pytest.fixture
def impatient_server(serve: Callable[..., ApiServer]) -> ApiServer:
    return serve(SHUTDOWN_GRACE_SECONDS=str(SHORT_GRACE_SECONDS), DB_STATEMENT_TIMEOUT_MS="60000")


async def test_a_request_outliving_the_grace_period_is_cut_off_and_the_process_still_exits(
    impatient_server: ApiServer, db_engine: AsyncEngine, auth: Callable[..., dict[str, str]]
) -> None:
    server = impatient_server
    headers = auth()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as client:
        created = await client.post("/api/todos", json={"title": "before shutdown"}, headers=headers)
        assert created.status_code == 201, created.text
        todo_id = created.json()["id"]

        async with holding(db_engine, "SELECT id FROM todos WHERE id = :id FOR UPDATE", id=todo_id):
            in_flight = asyncio.create_task(
                client.patch(f"/api/todos/{todo_id}", json={"title": "never committed"}, headers=headers)
            )
            try:
                await wait_for_lock_waiters(db_engine)
                server.process.send_signal(signal.SIGTERM)
                sigterm_at = time.monotonic()
                # We keep the lock: the request cannot finish, the grace period runs out.
                returncode = await asyncio.to_thread(server.process.wait, SHORT_GRACE_SECONDS + HANG)
                exited_after = time.monotonic() - sigterm_at
                outcome = await asyncio.gather(asyncio.wait_for(in_flight, HANG), return_exceptions=True)
            finally:
                if not in_flight.done():
                    in_flight.cancel()

    async with db_engine.connect() as connection:
        title = (await connection.execute(text("SELECT title FROM todos WHERE id = :id"), {"id": todo_id})).scalar()
        waiting = (
            await connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
            )
        ).scalar_one()
    result = outcome[0]
    described = f"{result.status_code}" if isinstance(result, httpx.Response) else type(result).__name__
    print(
        f"\n[shutdown] request outliving the {SHORT_GRACE_SECONDS} s grace: process exited with {returncode}"
        f" after {exited_after:.2f} s; the client got {described}; write committed: {title != 'before shutdown'};"
        f" busy backends left behind: {waiting}"
    )
    assert returncode in CLEAN_EXITS, server.log_text()[-3000:]
    assert title == "before shutdown"  # cut off before its commit: not applied
    assert not (isinstance(result, httpx.Response) and result.status_code < 300)


async def test_spawned_workers_log_json_access_lines_and_stop_on_sigterm(
    serve: Callable[..., ApiServer], auth: Callable[..., dict[str, str]]
) -> None:
    """`--workers 2` spawns fresh interpreters: the parent's logging setup does not reach them."""
    server = await asyncio.to_thread(serve, workers=2, LOG_FORMAT="json")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as client:
        for _ in range(20):  # new connections, so both workers are likely to answer some
            response = await client.get("/api/users/me", headers={**auth(), "Connection": "close"})
            assert response.status_code == 200, response.text
    server.process.send_signal(signal.SIGTERM)
    returncode = await asyncio.to_thread(server.process.wait, HANG)
    log = server.log_text()
    access = [line for line in map(orjson.loads, log.splitlines()) if line.get("logger") == "todo_api.access"]
    assert len(access) >= 20, log[-3000:]
    assert {(line["route"], line["status"]) for line in access} == {("/api/users/me", 200)}
    assert returncode in CLEAN_EXITS, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
