"""Apply Alembic migrations programmatically (used by `todo-api migrate`, `dev` and the tests), and
tell whether a database is at their head (`todo-api healthcheck`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`; a no-op when it is already there."""
    command.upgrade(alembic_config(database_url), revision)


def applied_revisions(session: Session) -> tuple[str, ...]:
    """The revisions the database is at (Alembic's version table; empty before the first migration).
    A unit of work for `Database.run`."""
    return tuple(MigrationContext.configure(session.connection()).get_current_heads())


def schema_problem(applied: tuple[str, ...]) -> str | None:
    """Why a database at `applied` is not at this release's migration head, or None if it is."""
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    heads = set(scripts.get_heads())
    if set(applied) == heads:
        return None
    if not applied:
        return "the database has no migrations applied: run `todo-api migrate`"
    known = {script.revision for script in scripts.walk_revisions()}
    at = ", ".join(sorted(applied))
    if not set(applied) <= known:
        return f"database schema is at revision {at}, unknown to this release (migrated by a newer one?)"
    return f"database schema is at revision {at}, migrations head is {', '.join(sorted(heads))}: run `todo-api migrate`"
