"""Structured logging: one JSON object per line (or plain text for humans in `dev`)."""

from __future__ import annotations

import logging
import sys
import textwrap
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from todo_api.config import LogFormat

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName", "color_message"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
# Names PostgreSQL reports with an error: identifiers from the schema, never values.
_DIAGNOSTIC_NAMES = ("schema_name", "table_name", "column_name", "datatype_name", "constraint_name")


def describe(exc: BaseException) -> str:
    """An exception's type, and for PostgreSQL errors its SQLSTATE and the names it reported."""
    kind = type(exc)
    line = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        names = [f"{name}={getattr(exc.diag, name)}" for name in _DIAGNOSTIC_NAMES if getattr(exc.diag, name)]
        line += f": SQLSTATE {exc.sqlstate}" + "".join(f" {name}" for name in names)
    return line


def _block(exc: BaseException) -> str:
    block = f"Traceback (most recent call last):\n{''.join(traceback.format_tb(exc.__traceback__))}{describe(exc)}\n"
    if isinstance(exc, BaseExceptionGroup):
        for number, inner in enumerate(exc.exceptions, 1):
            block += textwrap.indent(f"sub-exception {number}:\n{safe_traceback(inner)}\n", "  | ")
    return block


def safe_traceback(exc: BaseException | None) -> str:
    """The traceback with every chained exception, each told by `describe`: frames and types.

    Messages are left out because they quote data: PostgreSQL's (`Key (email)=(…) already exists`,
    `Failing row contains (…)`, `invalid input syntax for type uuid: "…"`), and SQLAlchemy's, which
    repeat them; so do pydantic's (`input_value=…`) and Python's own (`invalid literal for int()`).
    """
    blocks: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        blocks.append(_block(exc))
        if exc.__cause__ is not None:
            blocks.append(_CAUSE)
            exc = exc.__cause__
        elif exc.__context__ is not None and not exc.__suppress_context__:
            blocks.append(_CONTEXT)
            exc = exc.__context__
        else:
            exc = None
    return "".join(reversed(blocks)).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exc"] = safe_traceback(record.exc_info[1])
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()} {extra}".rstrip()
        if record.exc_info:
            line += "\n" + safe_traceback(record.exc_info[1])
        return line


def configure_logging(level: str, fmt: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our access line replaces uvicorn's (which would log raw paths and query strings).
    logging.getLogger("uvicorn.access").disabled = True
    # SQLAlchemy's INFO and DEBUG lines carry statement parameters and result rows: user data.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
