"""Alembic migrations, run programmatically on a connection the caller owns.

On PostgreSQL the migration runs in the caller's transaction (PostgreSQL's DDL is
transactional) under an advisory lock, so several servers starting at once against an
empty database migrate it once, and a failed migration leaves nothing half-done.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text

from rekollect.errors import SchemaTooNewError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key of migrations: b"rekollec" as a big-endian int64.
MIGRATION_LOCK_KEY = 0x72656B6F6C6C6563


def alembic_config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    revision: str | None = MigrationContext.configure(conn).get_current_revision()
    return revision


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Migrate to the newest schema this rekollect knows; refuse a newer database.

    Returns the revision found and the one left (the head).
    """
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    current = current_revision(conn)
    if current is not None and not _known(script, current):
        raise SchemaTooNewError(
            f"The database schema is at revision {current}, which this version of "
            "rekollect does not know: it was written by a newer rekollect. "
            "Upgrade rekollect."
        )
    if current == head:
        return current, head
    logger.info("Migrating the database schema from %s to %s", current, head)
    command.upgrade(alembic_config(conn), "head")
    return current, head


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
