"""Why a database connection failed, as the healthcheck and the server log say it: the cause class
from libpq's text (it gives no SQLSTATE for connection failures), never the text itself. Real
failures are in tests/test_cli.py (refused, no such database or role, TLS required, unknown host);
these are libpq's messages for the ones this machine's PostgreSQL cannot produce."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc

from todo_api.storage.faults import CONNECTION_CAUSES, DatabaseDeadline, connection_cause, describe

AT = 'connection failed: connection to server at "db.ssl-tls.example" (10.0.0.7), port 5432 failed: '


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ('FATAL:  password authentication failed for user "tls_user"', "authentication failed"),
        (
            'FATAL:  password authentication failed for user "u"\nconnection to server at "h" (10.0.0.7), port 5432 '
            'failed: FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "u", database "d", no encryption',
            "authentication failed",
        ),
        ("fe_sendauth: no password supplied", "authentication failed"),
        (
            'FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "u", database "d", no encryption',
            "TLS required or refused",
        ),
        ("SSL error: certificate verify failed", "TLS required or refused"),
        ("server does not support SSL, but SSL was required", "TLS required or refused"),
        (
            "channel binding is required, but server did not offer an authentication method that supports it",
            "TLS required or refused",
        ),
        ('FATAL:  database "ssl_database" does not exist', "database does not exist"),
        ('FATAL:  role "database" does not exist', "authentication failed"),
        (
            "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
            "connection refused",
        ),
        ("timeout expired", "timeout"),
        ("No route to host", "network unreachable"),
        ("FATAL:  sorry, too many clients already", "too many connections"),
        ("FATAL:  the database system is starting up", "server starting up or shutting down"),
        ("something new", "unknown cause"),
    ],
)
def test_libpq_connection_failures_are_named_by_their_cause(message: str, cause: str) -> None:
    """Host, user and database names (here full of misleading words) do not decide the cause."""
    error = psycopg.OperationalError(AT + message)
    assert connection_cause(error) == cause
    wrapped = sa_exc.OperationalError("SELECT 1", {}, error)
    assert describe(wrapped) == f"cannot connect: {cause}"


def test_an_unresolvable_host() -> None:
    error = psycopg.OperationalError("failed to resolve host 'db.example': [Errno -2] Name or service not known")
    assert describe(error) == "cannot connect: host not found"


def test_other_database_errors_are_their_type_and_sqlstate() -> None:
    assert describe(DatabaseDeadline("late")) == "no answer within the transaction deadline"
    assert describe(sa_exc.TimeoutError("pool")) == "no connection free in the pool"
    assert describe(psycopg.OperationalError("consuming input failed: server closed the connection")) == (
        "OperationalError"
    )
    assert connection_cause(ValueError("connection failed: connection refused")) is None


@given(st.text(max_size=200))
def test_nothing_of_the_message_is_ever_repeated(text: str) -> None:
    phrases = {cause for cause, _ in CONNECTION_CAUSES} | {"unknown cause"}
    cause = connection_cause(psycopg.OperationalError(AT + text))
    assert cause in phrases
