"""The store: migrations, SQLite settings, and refusing a schema that is too new."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from rekollect.errors import SchemaTooNewError
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from rekollect.storage.migrate import current_revision, head_revision
from rekollect.storage.schema import metadata


def test_migrations_build_exactly_the_declared_schema(tmp_path):
    database = open_database(sqlite_url(tmp_path))
    with database.read() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []
        assert current_revision(conn) == head_revision()


def test_sqlite_store_runs_in_wal_mode_with_foreign_keys(tmp_path):
    database = open_database(sqlite_url(tmp_path))
    with database.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (tmp_path / "rekollect.db").exists()


def test_opening_twice_migrates_once(tmp_path):
    open_database(sqlite_url(tmp_path)).close()
    database = open_database(sqlite_url(tmp_path))
    with database.read() as conn:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    assert [row[0] for row in rows] == [head_revision()]


def test_a_schema_newer_than_this_rekollect_is_refused(tmp_path):
    database = open_database(sqlite_url(tmp_path))
    with database.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from-the-future'"))
    database.close()
    with pytest.raises(SchemaTooNewError, match="newer rekollect"):
        open_database(sqlite_url(tmp_path))
