"""Server logs: count the access lines, keep everything else (warnings, tracebacks) next to the JSON.

At the default log level every request writes one access line, so a run's logs grow by hundreds of
megabytes; only the lines worth reading are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

ACCESS_LOGGERS = frozenset({"todo_api.access", "floor.access"})
QUIET_LEVELS = frozenset({"debug", "info"})
KEEP_LINES = 500


def _kind(line: bytes) -> str:
    """'access', 'quiet' (other info lines: startup) or 'keep' (warnings, errors, non-JSON lines)."""
    if line.startswith(b"{"):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return "keep"
        if isinstance(entry, dict):
            if entry.get("logger") in ACCESS_LOGGERS:
                return "access"
            if entry.get("level") in QUIET_LEVELS and "died" not in str(entry.get("msg")):
                return "quiet"  # but uvicorn's "Child process [n] died" (a worker replaced) is kept
    elif line.startswith(b"INFO:"):  # uvicorn's own plain-text startup lines
        return "quiet"
    return "keep"


def digest(log_path: Path, output: Path, requests: int) -> dict[str, Any]:
    """Access lines per request sent, and the kept lines copied to `<output stem>-<server>.log`."""
    access, kept = 0, list[bytes]()
    if log_path.exists():
        with log_path.open("rb") as log:
            for line in log:
                kind = _kind(line)
                access += kind == "access"
                if kind == "keep" and len(kept) < KEEP_LINES:
                    kept.append(line)
    summary: dict[str, Any] = {
        "access_lines": access,
        "requests_sent": requests,
        "access_lines_per_request": round(access / requests, 3) if requests else None,
    }
    if kept:
        destination = output.with_name(f"{output.stem}-{log_path.stem}.log")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(b"".join(kept))
        summary["kept"] = str(destination)
    log_path.unlink(missing_ok=True)
    return summary
