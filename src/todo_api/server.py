"""The HTTP server process: uvicorn (httptools + uvloop), with three additions in this one module.

- Slow clients are cut off. uvicorn never closes a connection that sends nothing, or that sends its
  headers or body a byte at a time (its keep-alive timer only runs between requests and every byte
  cancels it). The protocol class below gives each request a deadline for its headers and one for
  its body; past it the client gets 408 and the connection is closed.
- A starting worker is not a hung worker. uvicorn pings workers with one timeout (5 s) from the
  moment they are spawned; a worker still importing on a busy machine cannot answer yet and was
  killed. `Supervisor` gives a worker `WORKER_STARTUP_TIMEOUT_SECONDS` to start and, once started,
  `WORKER_LIVENESS_TIMEOUT_SECONDS` to answer each check; it never blocks its loop waiting.
- SIGTERM closes the listener at once. With `--workers N` the parent keeps its copy of the listening
  socket until every worker has drained, so the kernel kept accepting connections nobody would
  answer; `Supervisor` closes its copy before it signals the workers (which close theirs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from todo_api.config import Settings

logger = logging.getLogger("todo_api.server")


# --- slow clients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientTimeouts:
    headers: float  # from the connection (or a request's first byte) to the end of its headers
    body: float  # from the end of the headers to the end of the body


class ServerConfig(uvicorn.Config):
    """uvicorn's Config plus the client timeouts; pickled as a whole into spawned workers."""

    def __init__(self, app: Any, *, client_timeouts: ClientTimeouts, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.client_timeouts = client_timeouts


class Phase(Enum):
    IDLE = "nothing"  # connection open, no request yet: closed silently when the time is up
    HEADERS = "headers"
    BODY = "body"


def _request_timeout_response() -> bytes:
    body = b'{"detail":"Request timeout"}'
    return b"".join(
        [
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n",
            b"content-length: %d\r\nconnection: close\r\n" % len(body),
            b"cache-control: no-store\r\nx-content-type-options: nosniff\r\n",
            b"x-request-id: %s\r\n\r\n" % os.urandom(16).hex().encode(),
            body,
        ]
    )


class HttpToolsWithDeadlines(HttpToolsProtocol):
    """uvicorn's httptools protocol (what `http="auto"` picks; `uvicorn[standard]` installs
    httptools) with a deadline for each request's headers and one for its body.

    The parser's callbacks say which part of a request is arriving; after each read the one timer
    of the connection is moved to that phase (a request that arrives in one read arms nothing).
    """

    def __init__(self, config: uvicorn.Config, server_state: ServerState, app_state: dict[str, Any], _loop: Any = None):
        super().__init__(config, server_state, app_state, _loop)
        if not isinstance(config, ServerConfig):
            raise TypeError("HttpToolsWithDeadlines needs a todo_api.server.ServerConfig")
        self.timeouts = config.client_timeouts
        self.receiving: Phase | None = None  # what the parser is in the middle of
        self.deadline_phase: Phase | None = None
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow(Phase.IDLE)

    def connection_lost(self, exc: Exception | None) -> None:
        self._follow(None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(self.receiving)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.receiving = Phase.HEADERS

    def on_headers_complete(self) -> None:
        self.receiving = Phase.BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.receiving = None
        super().on_message_complete()

    def _follow(self, phase: Phase | None) -> None:
        if phase is self.deadline_phase or (phase is Phase.HEADERS and self.deadline_phase is Phase.IDLE):
            self.deadline_phase = phase  # a connection's first headers count from when it opened
            return
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline, self.deadline_phase = None, phase
        if phase is not None and not self.transport.is_closing():
            seconds = self.timeouts.body if phase is Phase.BODY else self.timeouts.headers
            self.deadline = self.loop.call_later(seconds, self._expired)

    def _expired(self) -> None:
        """Close the connection; say 408 first when that is the answer to the request that timed
        out. A request still in progress sees `http.disconnect`, and its `send()` does nothing."""
        phase, self.deadline, self.deadline_phase = self.deadline_phase, None, None
        if phase is None or self.transport.is_closing():
            return
        cycle = self.cycle  # in the header phase: the previous request's, if any
        in_progress = cycle is not None and not cycle.response_complete
        if phase is Phase.HEADERS:
            answer = not in_progress  # never in the middle of (or ahead of) a pipelined response
        else:
            answer = phase is Phase.BODY and in_progress and not cycle.response_started
        if in_progress:
            cycle.disconnected = True
            cycle.message_event.set()
        logger.debug("closed a slow client: %s not received in time", phase.value)
        if answer:
            self.transport.write(_request_timeout_response())
        self.transport.close()


# --- worker supervision -------------------------------------------------------------------------


@dataclass
class _Health:
    """The supervisor's view of one worker: since when it is known, its last unanswered health
    check, and whether it has said that its server started."""

    seen: float = field(default_factory=time.monotonic)  # first check, within a tick of the spawn
    ping_sent: float | None = None
    started: bool = False


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor with separate allowances for starting (importing, building the
    app, the lifespan) and for answering health checks once started; checks never block the loop
    (signals are handled within its 0.5 s tick); and a listener that closes as soon as it stops."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], *, startup: float, liveness: float):
        super().__init__(config, sockets)
        self.startup_timeout = startup
        self.liveness_timeout = liveness
        self.health: dict[Process, _Health] = {}

    def terminate_all(self) -> None:
        # Runs once the supervisor stops (SIGTERM, SIGINT, a worker that cannot start). Without
        # its copy of the listening socket, the socket closes when the workers close theirs, so
        # new connections are refused instead of queueing in the kernel until the drain ends.
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        self.health = {process: self.health.get(process, _Health()) for process in self.processes}
        for index, process in enumerate(self.processes):
            problem = self._problem(process)
            if problem is None:
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # Broken app, TLS or socket: every restart would fail the same way.
                logger.error("Worker [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            logger.warning("Worker [%s] %s; starting a new one.", process.pid, problem)
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[index] = replacement

    def _problem(self, process: Process) -> str | None:
        """Why the worker must be replaced, or None. uvicorn's worker answers every ping, from a
        thread, with whether its server has started; a worker that is still importing cannot."""
        if not process.process.is_alive():
            return "died"
        health, now = self.health[process], time.monotonic()
        try:
            while process.parent_conn.poll():
                started, health.ping_sent = bool(process.parent_conn.recv()), None
                if started and not health.started:
                    health.started = True
                    logger.info("Worker [%s] ready after %.1f s.", process.pid, now - health.seen)
            if health.ping_sent is None:
                process.parent_conn.send(b"ping")
                health.ping_sent = now
        except (OSError, EOFError, pickle.UnpicklingError):
            return "stopped answering"
        if not health.started and now - health.seen > self.startup_timeout:
            return f"had not started after {now - health.seen:.0f} s"
        if health.started and now - health.ping_sent > self.liveness_timeout:
            return f"did not answer for {now - health.ping_sent:.0f} s"
        return None


# --- serving ------------------------------------------------------------------------------------


def serve(
    app: Any,
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = False,
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve `app` (an import string when `workers` > 1) until SIGTERM/SIGINT, like `uvicorn.run`;
    on `sockets` if given (already bound and listening), else on host and port."""
    config = ServerConfig(
        app,
        client_timeouts=ClientTimeouts(settings.http_header_timeout_seconds, settings.http_body_timeout_seconds),
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        http=HttpToolsWithDeadlines,
        ws="none",  # the API has no WebSocket routes
        log_config=None,
        log_level=settings.log_level,
        access_log=False,  # our own access line (todo_api.access) replaces uvicorn's
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        timeout_worker_healthcheck=settings.worker_startup_timeout_seconds,  # SIGHUP's rolling restart
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    if workers > 1:
        sockets = sockets or [config.bind_socket()]
        startup, liveness = settings.worker_startup_timeout_seconds, settings.worker_liveness_timeout_seconds
        Supervisor(config, sockets, startup=startup, liveness=liveness).run()
        return
    # One worker: uvicorn serves from this process and closes its listener itself on SIGTERM.
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
