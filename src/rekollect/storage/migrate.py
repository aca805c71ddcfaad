"""Alembic migrations, run programmatically on a connection the caller owns."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from rekollect.errors import SchemaTooNewError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


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


def upgrade(conn: Connection) -> None:
    """Migrate to the newest schema this rekollect knows; refuse a newer database."""
    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(conn)
    if current is not None and not _known(script, current):
        raise SchemaTooNewError(
            f"The database schema is at revision {current}, which this version of "
            "rekollect does not know: it was written by a newer rekollect. "
            "Upgrade rekollect."
        )
    if current == script.get_current_head():
        return
    logger.info("Migrating the database schema from %s to %s", current, "head")
    command.upgrade(alembic_config(conn), "head")


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
