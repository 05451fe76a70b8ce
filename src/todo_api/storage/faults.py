"""Database faults: what PostgreSQL's errors mean for a request, and a client-side bound on
every transaction for a server that stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import PoolProxiedConnection

logger = logging.getLogger("todo_api.database")

# Beyond its statement timeout, a transaction gets this long before the client gives up on the server.
DEADLINE_GRACE_SECONDS = 1.0
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
    """A client-side bound on every transaction: its statement timeout plus a grace second.

    The statement timeout is enforced by the server, so it never fires when the server cannot
    answer at all (frozen, partitioned, overloaded past accepting work): the driver then waits
    forever. A timer armed at BEGIN and disarmed at COMMIT/ROLLBACK shuts the connection's socket
    down when it fires. The waiting call fails at once as a lost connection, so SQLAlchemy
    invalidates the connection (never reused) and closing it sends nothing. Cancelling the task
    instead would make psycopg send a cancel request to the unresponsive server and wait for it.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds  # None: no statement timeout, no deadline
        self._timers: dict[Any, asyncio.TimerHandle | None] = {}  # adapted connection → timer, None once fired

    def arm(self, dbapi_connection: Any) -> None:
        self.disarm(dbapi_connection)
        if self.seconds is None:
            return
        loop = asyncio.get_running_loop()
        self._timers[dbapi_connection] = loop.call_later(self.seconds, self._expire, dbapi_connection)

    def disarm(self, dbapi_connection: Any) -> None:
        if isinstance(dbapi_connection, PoolProxiedConnection):
            dbapi_connection = dbapi_connection.dbapi_connection
        timer = self._timers.pop(dbapi_connection, None)
        if timer is not None:
            timer.cancel()

    def expired(self, dbapi_connection: Any) -> bool:
        return dbapi_connection in self._timers and self._timers[dbapi_connection] is None

    def _expire(self, dbapi_connection: Any) -> None:
        self._timers[dbapi_connection] = None
        logger.warning("database did not answer within %g s: dropping the connection", self.seconds)
        driver: psycopg.AsyncConnection[Any] = dbapi_connection.driver_connection
        # Shut down a duplicate of the socket: psycopg keeps (and later closes) its own descriptor.
        with contextlib.suppress(psycopg.Error, OSError), socket.socket(fileno=os.dup(driver.fileno())) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
