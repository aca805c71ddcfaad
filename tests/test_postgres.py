"""PostgreSQL specifics: what the store does when the database fails or conflicts,
and how `rekollect serve` starts against a database it cannot use.

A database that cannot be reached is answered as a retryable error without a
traceback; a deadlock is rolled back and reported as a conflict the wire layer runs
again; a server refuses a schema newer than it knows with one clear line.
"""

from __future__ import annotations

import logging
import subprocess
import threading

import pytest
from sqlalchemy import text

from rekollect.errors import DatabaseUnavailableError, TransactionConflictError
from rekollect.inprocess import service_client
from rekollect.service import Service
from rekollect.storage import open_database
from rekollect.storage.database import STATEMENT_TIMEOUT_MS, run_with_retries
from tests.conftest import (
    REGION,
    fresh_postgres_database,
    postgres_admin_url,
    serve_args,
)

pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg 3")

# Nothing listens on port 1 of the loopback interface.
UNREACHABLE = "postgresql://rekollect:rekollect@127.0.0.1:1/rekollect"


@pytest.fixture
def pg_url():
    postgres_admin_url()
    with fresh_postgres_database() as url:
        yield url


def test_an_unreachable_database_is_a_database_unavailable_error():
    database = open_database(UNREACHABLE, migrate=False)
    with pytest.raises(DatabaseUnavailableError, match="unavailable"):
        with database.read() as conn:
            conn.execute(text("SELECT 1"))
    database.close()


def test_an_unreachable_database_answers_a_retried_internal_server_error(
    pg_url, caplog
):
    service = Service(open_database(pg_url))
    working = service.database
    service.database = open_database(UNREACHABLE, migrate=False)
    rekognition = service_client(service, region_name=REGION)
    caplog.set_level(logging.WARNING)
    try:
        with pytest.raises(rekognition.exceptions.InternalServerError) as raised:
            rekognition.list_collections()
    finally:
        service.close()
        working.close()
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error["ResponseMetadata"]["RetryAttempts"] == 2  # boto3 retried it
    assert "database is unavailable" in error["Error"]["Message"]
    assert "Traceback" not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_sessions_run_with_a_statement_timeout(pg_url):
    database = open_database(pg_url)
    with database.read() as conn:
        shown = conn.execute(text("SHOW statement_timeout")).scalar_one()
    database.close()
    assert shown == f"{STATEMENT_TIMEOUT_MS // 1000}s"


def test_a_deadlock_is_rolled_back_and_run_again_until_it_succeeds(pg_url):
    database = open_database(pg_url)
    with database.write() as conn:
        conn.execute(text("INSERT INTO settings VALUES ('a', '0'), ('b', '0')"))
    barrier = threading.Barrier(2)
    attempts: list[str] = []
    errors: list[BaseException] = []

    def bump(first: str, second: str) -> None:
        attempts.append(first)
        with database.write() as conn:
            conn.execute(
                text("UPDATE settings SET value = value || '+' WHERE key = :k"),
                {"k": first},
            )
            if len(attempts) <= 2:
                barrier.wait(timeout=10)
            conn.execute(
                text("UPDATE settings SET value = value || '+' WHERE key = :k"),
                {"k": second},
            )

    def run(first: str, second: str) -> None:
        try:
            run_with_retries(lambda: bump(first, second))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=("a", "b")),
        threading.Thread(target=run, args=("b", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.read() as conn:
        rows = conn.execute(text("SELECT key, value FROM settings"))
        values = {row.key: row.value for row in rows}
    database.close()

    assert errors == []
    assert len(attempts) == 3  # the deadlock's victim ran once more
    assert values["a"] == values["b"] == "0++"


def test_a_conflict_past_the_attempts_is_raised():
    calls = []

    def conflict() -> None:
        calls.append(1)
        raise TransactionConflictError("deadlock")

    with pytest.raises(TransactionConflictError):
        run_with_retries(conflict, attempts=3)
    assert len(calls) == 3


def test_serve_against_an_unreachable_database_exits_with_one_clear_line(tmp_path):
    done = subprocess.run(
        serve_args(tmp_path, UNREACHABLE), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "rekollect: The database is unavailable" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_serve_refuses_a_schema_newer_than_it_knows(store_url, tmp_path):
    database = open_database(store_url)
    with database.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from-the-future'"))
    database.close()
    done = subprocess.run(
        serve_args(tmp_path, store_url), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "newer rekollect" in done.stderr
    assert "from-the-future" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
