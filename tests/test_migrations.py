"""The migrations and the models agree, and every migration's downgrade undoes its upgrade:
stepping down one revision and up again leaves the schema exactly as it was (tables, columns,
constraints, indexes, triggers, functions), and down to the base leaves nothing of ours behind. An
operator can roll a release back."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from todo_api.models import metadata
from todo_api.storage import migrate
from todo_api.storage.database import driver_url

# The parts of a schema a migration may change, as PostgreSQL describes them.
SCHEMA_QUERIES = {
    "tables": "SELECT relname, relpersistence FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    " AND relkind IN ('r', 'p') ORDER BY 1",
    "columns": "SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, collation_name"
    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), condeferrable, condeferred"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE NOT tgisinternal ORDER BY 1, 2",
    "functions": "SELECT proname, pg_get_functiondef(oid) FROM pg_proc"
    " WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
    "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
    "types": "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd')"
    " ORDER BY 1",
}

Schema = dict[str, list[tuple[object, ...]]]


def schema(url: str) -> Schema:
    """The schema, without Alembic's own version table (which stays at the base)."""
    with psycopg.connect(url) as connection:
        return {
            name: [row for row in connection.execute(query).fetchall() if "alembic_version" not in row[:2]]
            for name, query in SCHEMA_QUERIES.items()
        }


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    name = f"todo_api_migrations_{uuid.uuid4().hex[:10]}"
    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_migration_downgrades_to_the_schema_before_it_and_upgrades_again(scratch_url: str) -> None:
    config = migrate.alembic_config(scratch_url)
    revisions = [script.revision for script in ScriptDirectory(str(migrate.MIGRATIONS_DIR)).walk_revisions()]
    revisions.reverse()  # base first
    assert len(revisions) >= 7
    before = schema(scratch_url)  # nothing applied
    assert not any(before.values())
    snapshots: list[Schema] = []
    for revision in revisions:
        migrate.upgrade(scratch_url, revision)
        snapshots.append(schema(scratch_url))
    at_head = snapshots[-1]
    for index in reversed(range(len(revisions))):
        below = revisions[index - 1] if index else "base"
        command.downgrade(config, below)
        expected = snapshots[index - 1] if index else before
        assert schema(scratch_url) == expected, f"downgrading {revisions[index]} left a different schema"
    assert not any(schema(scratch_url).values()), "the base is not empty"
    migrate.upgrade(scratch_url)
    assert schema(scratch_url) == at_head


def test_the_migrated_schema_is_what_the_models_declare(scratch_url: str) -> None:
    """Alembic's autogenerate finds nothing to change between the models and the migrated schema,
    except what SQLAlchemy cannot reflect: the `xid8` type of the `change_xid` columns, whose
    defaults it therefore cannot compare."""
    migrate.upgrade(scratch_url)
    engine = create_engine(driver_url(scratch_url), poolclass=NullPool)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Did not recognize type 'xid8'", sa_exc.SAWarning)
            with engine.connect() as connection:
                context = MigrationContext.configure(
                    connection, opts={"compare_type": True, "compare_server_default": True}
                )
                differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    unreflected = [
        difference
        for difference in differences
        if isinstance(difference, list)
        and all(change[0] == "modify_default" and change[3] == "change_xid" for change in difference)
    ]
    assert [difference for difference in differences if difference not in unreflected] == []
    assert len(unreflected) == 3  # lists, todos, sync_tombstones
