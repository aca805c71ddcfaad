"""The store on SQLite and PostgreSQL: migrations, explicit upgrades, refusing a schema
that is too new, and the SQLite settings."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from rekollect.errors import SchemaTooNewError
from rekollect.storage import open_database
from rekollect.storage.database import normalize_url, sqlite_url, upgrade_database
from rekollect.storage.kv import get_or_create_setting
from rekollect.storage.migrate import current_revision, head_revision
from rekollect.storage.schema import metadata


def test_migrations_build_exactly_the_declared_schema(store_url):
    database = open_database(store_url)
    try:
        with database.read() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
            assert differences == []
            assert current_revision(conn) == head_revision()
    finally:
        database.close()


def test_sqlite_store_runs_in_wal_mode_with_foreign_keys(tmp_path):
    database = open_database(sqlite_url(tmp_path))
    with database.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.close()
    assert (tmp_path / "rekollect.db").exists()


def test_opening_twice_migrates_once(store_url):
    open_database(store_url).close()
    database = open_database(store_url)
    with database.read() as conn:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    database.close()
    assert [row[0] for row in rows] == [head_revision()]


def test_upgrade_database_reports_the_revisions_it_went_between(store_url):
    assert upgrade_database(store_url) == (None, head_revision())
    assert upgrade_database(store_url) == (head_revision(), head_revision())


def test_servers_starting_at_once_on_an_empty_store_migrate_it_once(store_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            open_database(store_url).close()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert upgrade_database(store_url) == (head_revision(), head_revision())


def test_a_setting_created_by_many_at_once_has_one_value(store_url):
    open_database(store_url).close()
    values: list[str] = []
    barrier = threading.Barrier(4)

    def create(number: int) -> None:
        database = open_database(store_url, migrate=False)
        barrier.wait()
        with database.write() as conn:
            values.append(get_or_create_setting(conn, "shared", f"value-{number}"))
        database.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(values) == 4
    assert len(set(values)) == 1


def test_a_schema_newer_than_this_rekollect_is_refused(store_url):
    database = open_database(store_url)
    with database.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from-the-future'"))
    database.close()
    with pytest.raises(SchemaTooNewError, match="newer rekollect"):
        open_database(store_url)
    with pytest.raises(SchemaTooNewError, match="newer rekollect"):
        upgrade_database(store_url)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db/r", "postgresql+psycopg://u:p@db/r"),
        ("postgres://u:p@db/r", "postgresql+psycopg://u:p@db/r"),
        ("postgresql+psycopg://u@db/r", "postgresql+psycopg://u@db/r"),
        ("sqlite:////data/rekollect.db", "sqlite:////data/rekollect.db"),
    ],
    ids=["postgresql", "postgres", "explicit-driver", "sqlite"],
)
def test_postgresql_urls_run_on_psycopg_3(given, used):
    assert normalize_url(given) == used
