"""Database faults: what PostgreSQL's errors mean for a request, and a client-side bound on
every transaction for a server that stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import PoolProxiedConnection

logger = logging.getLogger("todo_api.database")

# Beyond its statement timeout, a transaction gets this long (plus at most one sweep) before the
# client gives up on the server: together under the promised second.
DEADLINE_GRACE_SECONDS = 0.75
SWEEP_SECONDS = 0.1
EXPIRED = math.inf  # a deadline that has passed and was acted on
# A transaction the server aborted (it rolled everything back) and that may well succeed if run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


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
