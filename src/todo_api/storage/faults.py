"""Database faults: what PostgreSQL's errors mean for a request, and a client-side bound on
every transaction for a server that stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import socket
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session

logger = logging.getLogger("todo_api.database")

# Beyond its statement timeout, a transaction gets this long (plus at most one sweep) before the
# client gives up on the server: together under the promised second.
DEADLINE_GRACE_SECONDS = 0.75
SWEEP_SECONDS = 0.1
EXPIRED = math.inf  # a deadline that has passed and was acted on
# A transaction the server aborted (it rolled everything back) and that may well succeed if run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


SECOND_RUN = "second_run"  # `Session.info` key: this unit of work is a run again (`Database`)


class Rerun(Exception):
    """The unit of work read a snapshot a concurrent write made stale, and a constraint caught it:
    run it again (a second run is told so by `is_second_run`, and may read more carefully)."""


def is_second_run(session: Session) -> bool:
    return bool(session.info.get(SECOND_RUN))


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL sent with an error (None for the driver's own errors, e.g. a lost connection)."""
    if isinstance(exc, sa_exc.DBAPIError):
        exc = exc.orig if exc.orig is not None else exc
    state = getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None
    return state if isinstance(state, str) else None


def is_unreachable(exc: BaseException) -> bool:
    """No connection in time, none could be opened, or it broke: the database itself failed, not a
    statement, so any other transaction would fail the same way now."""
    if isinstance(exc, sa_exc.TimeoutError):  # pool wait or transaction deadline
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    lost = isinstance(exc.orig, (psycopg.OperationalError, psycopg.InterfaceError)) and sqlstate(exc) is None
    return exc.connection_invalidated or lost


# Why a connection could not be opened. libpq reports connection failures (its own, and the
# server's FATAL during startup) as text only, with no SQLSTATE: the first cause whose pattern is in
# that text (quoted host, user and database names removed) names it. Only these fixed phrases are
# ever shown, never the text. Password failures come first: with `sslmode=prefer` libpq appends the
# failure of its second, unencrypted attempt (`no pg_hba.conf entry … no encryption`).
CONNECTION_CAUSES = (
    ("authentication failed", ("password authentication failed", "authentication failed", "no password supplied")),
    ("TLS required or refused", ("ssl", "tls", "certificate", "no encryption", "channel binding")),
    ("authentication failed", ("no pg_hba.conf entry", 'role "" does not exist', "not permitted to log in")),
    ("database does not exist", ('database "" does not exist',)),
    ("connection refused", ("connection refused",)),
    ("timeout", ("timeout expired", "timed out")),
    ("host not found", ("could not translate host name", "resolve host", "name or service not known")),
    ("network unreachable", ("no route to host", "network is unreachable")),
    ("too many connections", ("too many clients", "too many connections", "remaining connection slots")),
    ("server starting up or shutting down", ("starting up", "shutting down", "in recovery mode")),
)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_CONNECTING = ("connection failed", "failed to resolve host", "connection to server")


def connection_cause(exc: BaseException) -> str | None:
    """The cause class of a failure to open a connection (None when `exc` is not one)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if not isinstance(exc, psycopg.OperationalError) or exc.sqlstate is not None:
        return None
    text = _QUOTED.sub('""', str(exc).lower())
    if not text.startswith(_CONNECTING):
        return None
    return next((cause for cause, patterns in CONNECTION_CAUSES if any(p in text for p in patterns)), "unknown cause")


def describe(exc: BaseException) -> str:
    """A database error for a log line or an operator, without anything it may carry (values, SQL,
    host or user names): the cause class of a connection failure, else the exception type and
    SQLSTATE."""
    cause = connection_cause(exc)
    if cause is not None:
        return f"cannot connect: {cause}"
    if isinstance(exc, DatabaseDeadline):
        return "no answer within the transaction deadline"
    if isinstance(exc, sa_exc.TimeoutError):
        return "no connection free in the pool"
    state = sqlstate(exc)
    return type(exc).__name__ if state is None else f"{type(exc).__name__} (SQLSTATE {state})"


class DatabaseDeadline(sa_exc.TimeoutError):
    """The database did not answer a transaction within its deadline (503, like an exhausted pool)."""


class TransactionDeadlines:
    """A client-side bound on every transaction: its statement timeout plus under a second.

    The statement timeout is enforced by the server, so it never fires when the server cannot
    answer at all (frozen, partitioned, overloaded past accepting work): the driver then waits
    forever. Each transaction gets a deadline at BEGIN, dropped at COMMIT/ROLLBACK; one sweep per
    event loop, every `SWEEP_SECONDS` while transactions are open, shuts down the socket of each
    connection past its deadline. The waiting call fails at once as a lost connection, so
    SQLAlchemy invalidates the connection (never reused) and closing it sends nothing. Cancelling
    the task instead would make psycopg send a cancel request to the unresponsive server and wait
    for it (~11 s for a 1 s `asyncio.timeout`). A sweep, not a timer per transaction: a dict entry
    costs a fraction of a timer's heap push and cancel.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds  # None: no statement timeout, no deadline
        self._deadlines: dict[Any, float] = {}  # adapted connection → loop time; EXPIRED once dropped
        self._swept_loop: asyncio.AbstractEventLoop | None = None

    def arm(self, dbapi_connection: Any) -> None:
        if self.seconds is None:
            return
        loop = asyncio.get_running_loop()
        self._deadlines[dbapi_connection] = loop.time() + self.seconds
        if self._swept_loop is not loop:
            self._swept_loop = loop
            loop.call_later(SWEEP_SECONDS, self._sweep, loop)

    def disarm(self, dbapi_connection: Any) -> None:
        if isinstance(dbapi_connection, PoolProxiedConnection):
            dbapi_connection = dbapi_connection.dbapi_connection
        self._deadlines.pop(dbapi_connection, None)

    def expired(self, dbapi_connection: Any) -> bool:
        return self._deadlines.get(dbapi_connection) == EXPIRED

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._swept_loop is not loop:
            return
        now = loop.time()
        late = [connection for connection, deadline in self._deadlines.items() if deadline <= now]
        for connection in late:
            self._deadlines[connection] = EXPIRED
            logger.warning("database did not answer within %g s: dropping the connection", self.seconds)
            _shut_down(connection.driver_connection)
        if any(deadline != EXPIRED for deadline in self._deadlines.values()):
            loop.call_later(SWEEP_SECONDS, self._sweep, loop)
        else:
            self._swept_loop = None


def _shut_down(connection: psycopg.AsyncConnection[Any]) -> None:
    """Shut the socket down through a duplicate: psycopg keeps (and later closes) its own descriptor."""
    with contextlib.suppress(psycopg.Error, OSError), socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)
