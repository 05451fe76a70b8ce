"""Slow clients against a real `todo-api serve --workers 2` with 2-second deadlines.

A connection that sends nothing, or its headers or body a byte at a time, is closed once its
deadline passes (408 when a request had begun); normal clients are served meanwhile, also with
200 such connections open. The deadlines are uvicorn protocol timers (todo_api.server).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.faults.servers import HANG, ApiServer, start_api_server
from tests.faults.slowloris import FILLER, slow_body, slow_headers
from tests.keys import Signer

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
EARLY = 0.25  # timers may fire a little early; the client must still get (almost) all its time
SLACK = 3.0  # generous: a deadline that fires this late is broken, not slow
KEEP_ALIVE = 5.0  # uvicorn's idle keep-alive timeout, which the README promises
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(database_url: str, service_env: dict[str, str], signer: Signer) -> Iterator[ApiServer]:
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "HTTP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    started = start_api_server(env, {"Authorization": f"Bearer {signer.token('readiness')}"}, workers=2, timeout=120)
    yield started
    started.stop()


async def dribble_until_closed(port: int, head: bytes, payload: bytes, interval: float = 0.1) -> tuple[float, bytes]:
    """Send `head` at once, then `payload` a byte every `interval` until the server closes the
    connection; return the seconds that took and everything the server sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(head)
        received = asyncio.create_task(reader.read(-1))  # until the server closes
        for index in range(len(payload)):
            if received.done() or time.monotonic() - started > HANG:
                break
            writer.write(payload[index : index + 1])
            await asyncio.wait({received}, timeout=interval)
        answer = await asyncio.wait_for(received, max(0.1, HANG - (time.monotonic() - started)))
        return time.monotonic() - started, answer
    finally:
        writer.close()


def post_head(token: str | None, length: int) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /api/todos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def assert_request_timeout(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"connection: close" in head.lower()
    assert orjson.loads(body) == {"detail": "Request timeout"}


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server: ApiServer) -> None:
    elapsed, answer = await dribble_until_closed(server.port, b"", b"")
    print(f"\n[slow clients] silent connection closed after {elapsed:.2f} s (timeout {HEADER_TIMEOUT:g} s)")
    assert answer == b""
    assert HEADER_TIMEOUT - EARLY <= elapsed <= HEADER_TIMEOUT + SLACK


async def test_headers_sent_byte_by_byte_get_408_after_the_header_timeout(server: ApiServer) -> None:
    elapsed, answer = await dribble_until_closed(server.port, b"", slow_headers())
    print(f"\n[slow clients] byte-by-byte headers: 408 and closed after {elapsed:.2f} s (timeout {HEADER_TIMEOUT:g} s)")
    assert_request_timeout(answer)
    assert HEADER_TIMEOUT - EARLY <= elapsed <= HEADER_TIMEOUT + SLACK


async def test_a_body_sent_byte_by_byte_gets_408_and_writes_nothing(server: ApiServer, signer: Signer) -> None:
    token = signer.token()
    head, body = slow_body(token)
    elapsed, answer = await dribble_until_closed(server.port, head, body)
    print(f"\n[slow clients] byte-by-byte body: 408 and closed after {elapsed:.2f} s (timeout {BODY_TIMEOUT:g} s)")
    assert_request_timeout(answer)
    assert BODY_TIMEOUT - EARLY <= elapsed <= BODY_TIMEOUT + SLACK
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as client:
        listed = await client.get("/api/todos", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


async def test_a_body_still_dribbling_after_the_answer_is_cut_off_too(server: ApiServer) -> None:
    """Anonymous: the 401 goes out at once, without reading the body; the connection stays bounded."""
    elapsed, answer = await dribble_until_closed(server.port, post_head(None, FILLER), b" " * FILLER)
    print(f"\n[slow clients] body dribbled after a 401: closed after {elapsed:.2f} s (timeout {BODY_TIMEOUT:g} s)")
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
    assert b" 408 " not in answer
    assert BODY_TIMEOUT - EARLY <= elapsed <= BODY_TIMEOUT + SLACK


async def test_each_request_on_a_kept_alive_connection_gets_its_own_header_deadline(
    server: ApiServer, signer: Signer
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        first = f"GET /api/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {signer.token()}\r\n\r\n"
        writer.write(first.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG)
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = next(
            int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
        )
        await reader.readexactly(length)
        await asyncio.sleep(HEADER_TIMEOUT * 0.75)  # idle between requests is the keep-alive timeout's business
        started = time.monotonic()
        received = asyncio.create_task(reader.read(-1))
        for byte in slow_headers():
            if received.done() or time.monotonic() - started > HANG:
                break
            writer.write(bytes([byte]))
            await asyncio.wait({received}, timeout=0.1)
        answer = await asyncio.wait_for(received, HANG)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    print(f"\n[slow clients] second request's headers dribbled: 408 after {elapsed:.2f} s from its first byte")
    assert_request_timeout(answer)
    assert HEADER_TIMEOUT - EARLY <= elapsed <= HEADER_TIMEOUT + SLACK


async def test_a_slow_client_within_both_deadlines_is_served(server: ApiServer, signer: Signer) -> None:
    """Headers and body each take 65 % of their deadline, together more than either: the body's
    deadline starts when the headers are complete. Each byte goes out on a schedule from the part's
    start (a sleep per byte would add the loop's overhead per byte: on a loaded machine, 600 bytes
    of headers overran the deadline)."""
    body = orjson.dumps({"title": "slow but fine", "description": "x" * 40})
    head = post_head(signer.token(), len(body))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for part, seconds in ((head, HEADER_TIMEOUT * 0.65), (body, BODY_TIMEOUT * 0.65)):
            started = time.monotonic()
            for index in range(len(part)):
                writer.write(part[index : index + 1])
                await asyncio.sleep(max(0.0, started + seconds * (index + 1) / len(part) - time.monotonic()))
            assert time.monotonic() - started < seconds + EARLY, "the client itself overran the schedule"
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 201 "), answer


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def normal_latencies(server: ApiServer, signer: Signer, count: int) -> list[float]:
    """`count` authenticated GET /api/users/me, each on a new connection (so both workers answer)."""
    headers = {"Authorization": f"Bearer {signer.token('normal-client')}"}
    limits = httpx.Limits(max_keepalive_connections=0)
    seconds = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG, limits=limits) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = await client.get("/api/users/me", headers=headers)
            seconds.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return seconds


@pytest.mark.slow
async def test_two_hundred_slow_clients_do_not_stop_normal_clients(server: ApiServer, signer: Signer) -> None:
    count = 300
    await normal_latencies(server, signer, 20)  # warm-up: pools, caches, the user row
    unloaded = await normal_latencies(server, signer, count)
    attacker = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.faults.slowloris", "--port", str(server.port), "--token", signer.token()),
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert attacker.stdout is not None
        ready = await asyncio.wait_for(attacker.stdout.readline(), HANG)
        assert ready.strip() == b"ready", ready
        await asyncio.sleep(HEADER_TIMEOUT + 1)  # let the attackers reach their steady state
        loaded = await normal_latencies(server, signer, count)
        attacker.terminate()
        summary = orjson.loads(await asyncio.wait_for(attacker.stdout.readline(), HANG))
    finally:
        with contextlib.suppress(ProcessLookupError):
            attacker.kill()
        await attacker.wait()
    figures = {
        name: (percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000)
        for name, samples in (("unloaded", unloaded), ("with 200 slow clients", loaded))
    }
    print(
        f"\n[slow clients] {count} normal requests each, p50 / p99 ms: "
        + ", ".join(f"{name} {p50:.1f} / {p99:.1f}" for name, (p50, p99) in figures.items())
        + f" (mean loaded {statistics.mean(loaded) * 1000:.1f}); attacker: {summary}"
    )
    assert summary["closed_by_server"] > 0
    assert summary["closed_after_max"] <= max(HEADER_TIMEOUT, BODY_TIMEOUT) + SLACK
    # The target is < 10x; on a shared 2-core machine only a far worse figure is a failure.
    unloaded_p99, loaded_p99 = figures["unloaded"][1], figures["with 200 slow clients"][1]
    assert loaded_p99 < max(10 * unloaded_p99, 2000), figures


async def test_an_idle_kept_alive_connection_is_closed_after_five_seconds(server: ApiServer, signer: Signer) -> None:
    """README, "Slow clients": an idle kept-alive connection is closed after 5 s (operators keep
    their proxy's idle timeout below it). It stays open meanwhile: a second request on it is served."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = f"GET /api/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {signer.token()}\r\n\r\n"

    async def served() -> None:
        writer.write(request.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"connection: close" not in head.lower()
        length = next(
            int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
        )
        await reader.readexactly(length)

    try:
        await served()
        await asyncio.sleep(1.0)
        await served()  # still open after a second idle
        started = time.monotonic()
        rest = await asyncio.wait_for(reader.read(-1), HANG)  # until the server closes it
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    print(f"\n[slow clients] idle kept-alive connection closed after {elapsed:.2f} s (keep-alive 5 s)")
    assert rest == b""
    assert KEEP_ALIVE - EARLY <= elapsed <= KEEP_ALIVE + SLACK
