"""`todo-api serve --workers 2`: a worker still starting is given WORKER_STARTUP_TIMEOUT_SECONDS
(uvicorn's fixed 5 s health check killed workers that were still importing on a busy machine), and
a started worker that stops answering is still replaced within WORKER_LIVENESS_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.servers import HANG, ApiServer, start_api_server, stop_process, wait_until

pytestmark = pytest.mark.slow

REPLACED = re.compile(r"died|did not answer|had not started|stopped answering|failed to start|not ready in time")
SLACK = 5.0  # generous: the supervisor checks every 0.5 s


@pytest.fixture
def serve(
    database_url: str, service_env: dict[str, str], auth: Callable[..., dict[str, str]]
) -> Iterator[Callable[..., ApiServer]]:
    """`serve(timeout, **env)`: `todo-api serve --workers 2` (INFO, text log), running once it answers."""
    started: list[ApiServer] = []

    def start(timeout: float = 120, **env: str) -> ApiServer:
        base = {**service_env, "DATABASE_URL": database_url, "LOG_LEVEL": "info", "LOG_FORMAT": "text"}
        started.append(start_api_server({**base, **env}, auth("readiness"), timeout=timeout, workers=2))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def workers_of(parent: int) -> list[int]:
    """uvicorn's worker processes: the children multiprocessing's spawn started (not its resource tracker)."""
    workers = []
    for pid in children(parent):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


def wait_for_log(server: ApiServer, text: str, count: int = 1, timeout: float = HANG) -> float:
    """Until the server's log holds `text` `count` times; the seconds that took. Fails with the log."""
    try:
        return wait_until(lambda: server.log_text().count(text) >= count, timeout, f"{count} x {text!r} in the log")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{server.log_text()[-3000:]}") from None


def served_on_fresh_connections(server: ApiServer, headers: dict[str, str], count: int = 20) -> None:
    for _ in range(count):
        response = httpx.get(
            f"{server.base_url}/api/users/me", headers={**headers, "Connection": "close"}, timeout=HANG
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def busy_cpus() -> Iterator[int]:
    """Two busy-looping processes per CPU, for as long as the test runs."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    yield len(burners)
    for burner in burners:
        stop_process(burner, first=signal.SIGKILL)


def test_workers_start_while_every_cpu_is_busy(
    serve: Callable[..., ApiServer], busy_cpus: int, auth: Callable[..., dict[str, str]]
) -> None:
    started = time.monotonic()
    server = serve(timeout=300)  # WORKER_STARTUP_TIMEOUT_SECONDS: the default
    wait_for_log(server, "] ready after", count=2, timeout=HANG * 4)
    ready_after = time.monotonic() - started
    served_on_fresh_connections(server, auth())
    log = server.log_text()
    workers_ready = ", ".join(re.findall(r"ready after [\d.]+ s", log))
    print(
        f"\n[workers] --workers 2, {busy_cpus} CPU burners on {os.cpu_count()} CPUs: serving after {ready_after:.1f} s"
        f" (from the spawn, workers {workers_ready})"
    )
    assert not REPLACED.search(log), log[-3000:]
    assert log.count("Started server process") == 2, log[-3000:]


def freeze_workers_as_they_spawn(count: int, seconds: float | None, frozen: list[int]) -> None:
    """SIGSTOP the first `count` workers of our server the moment they appear (while they are still
    importing), SIGCONT them `seconds` later (None: never): a start as slow as on a starved
    machine, on demand."""
    deadline = time.monotonic() + HANG * 4
    while len(frozen) < count and time.monotonic() < deadline:
        for parent in children(os.getpid()):
            for pid in workers_of(parent):
                if pid not in frozen and len(frozen) < count:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                        frozen.append(pid)
        time.sleep(0.005)
    if seconds is None:
        return
    time.sleep(seconds)
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):  # replaced meanwhile: the test then fails
            os.kill(pid, signal.SIGCONT)


def test_a_worker_slower_to_start_than_the_liveness_timeout_is_not_replaced(
    serve: Callable[..., ApiServer], auth: Callable[..., dict[str, str]]
) -> None:
    frozen: list[int] = []
    freeze_seconds = 7.0  # longer than uvicorn's 5 s and than the liveness timeout below
    freezer = threading.Thread(target=freeze_workers_as_they_spawn, args=(2, freeze_seconds, frozen))
    freezer.start()
    try:
        server = serve(WORKER_LIVENESS_TIMEOUT_SECONDS="2")
    finally:
        freezer.join()
    served_on_fresh_connections(server, auth())
    log = server.log_text()
    print(f"\n[workers] both workers frozen {freeze_seconds:g} s while starting (liveness timeout 2 s): kept")
    assert len(frozen) == 2
    assert sorted(workers_of(server.process.pid)) == sorted(frozen), log[-3000:]
    assert not REPLACED.search(log), log[-3000:]


def test_a_running_worker_that_stops_answering_is_replaced_within_the_liveness_timeout(
    serve: Callable[..., ApiServer], auth: Callable[..., dict[str, str]]
) -> None:
    liveness = 2
    server = serve(WORKER_LIVENESS_TIMEOUT_SECONDS=str(liveness))
    wait_for_log(server, "] ready after", count=2, timeout=HANG * 4)  # both started: liveness applies
    hung = workers_of(server.process.pid)[0]
    os.kill(hung, signal.SIGSTOP)
    replaced_after = wait_for_log(server, "did not answer")
    wait_for_log(server, "] ready after", count=3, timeout=HANG * 4)  # its replacement
    served_on_fresh_connections(server, auth())
    log = server.log_text()
    print(
        f"\n[workers] a running worker stopped (SIGSTOP): replaced after {replaced_after:.1f} s (liveness {liveness} s)"
    )
    assert hung not in workers_of(server.process.pid)
    assert f"Worker [{hung}] did not answer" in log, log[-3000:]
    assert replaced_after <= liveness + SLACK


def test_a_worker_that_never_finishes_starting_is_replaced_after_the_startup_timeout(
    serve: Callable[..., ApiServer], auth: Callable[..., dict[str, str]]
) -> None:
    startup = 25  # long enough for the other worker to start on a busy machine
    frozen: list[int] = []
    freezer = threading.Thread(target=freeze_workers_as_they_spawn, args=(1, None, frozen))
    freezer.start()
    try:
        server = serve(WORKER_STARTUP_TIMEOUT_SECONDS=str(startup))  # ready: the other worker answers
    finally:
        freezer.join()
    wait_for_log(server, "had not started", timeout=startup + HANG)
    wait_for_log(server, "] ready after", count=2, timeout=HANG * 4)  # the other worker and the replacement
    served_on_fresh_connections(server, auth())
    log = server.log_text()
    match = re.search(rf"Worker \[{frozen[0]}\] had not started after (\d+) s", log)
    print(f"\n[workers] a worker frozen while starting: replaced ({match and match.group(0)}; timeout {startup} s)")
    assert match is not None, log[-3000:]
    assert startup <= int(match.group(1)) <= startup + SLACK
    assert frozen[0] not in workers_of(server.process.pid)
