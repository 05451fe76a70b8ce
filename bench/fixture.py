"""The data every session needs: a fresh migrated database, the seed, a signing key and tokens."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import DATA_DIR, pg, servers
from bench.seed import Seed, seed
from bench.tokens import Signer


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Prepared:
    server: pg.Server
    database_url: str
    seed: Seed
    signer: Signer
    tokens: dict[str, str]  # seed user key -> bearer token
    workdir: Path  # scratch directory: server cwd (no stray `.env`), logs, Lua scripts


def migrate(database_url: str, workdir: Path) -> None:
    """`todo-api migrate`, exactly as a deployment runs it."""
    argv = [servers.executable("todo-api"), "migrate"]
    env = servers.clean_env({"DATABASE_URL": database_url})
    completed = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"bench: `todo-api migrate` failed:\n{completed.stderr or completed.stdout}")


@contextmanager
def prepared(database_url: str | None, plan: Mapping[str, int], *, keep: bool = False) -> Iterator[Prepared]:
    server = pg.server(database_url, DATA_DIR)
    say(f"PostgreSQL: {server.description}")
    with (
        tempfile.TemporaryDirectory(prefix="todo-api-bench-") as tmp,
        pg.fresh_database(server.url, keep=keep) as url,
    ):
        workdir = Path(tmp)
        name = url.rsplit("/", 1)[-1].split("?")[0]
        say(f"database {name}{' (kept)' if keep else ''}: migrating, seeding {sum(plan.values())} todos")
        migrate(url, workdir)
        sown = seed(url, dict(plan))
        say(f"seeded {sown.rows} rows in {sown.seconds:.1f} s")
        signer = Signer.generate()
        tokens = {key: signer.token(user.subject) for key, user in sown.users.items()}
        yield Prepared(server, url, sown, signer, tokens, workdir)
