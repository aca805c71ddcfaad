"""Opening the store: engine set-up, migrations, and read and write transactions.

On SQLite every write transaction starts with `BEGIN IMMEDIATE`, so writers queue on
the database lock up front instead of failing when a reader upgrades; reads run in
WAL mode beside them. Writers also queue on a lock of their own first, a thread lock
plus an advisory file lock beside the database (so server processes sharing the file
queue too): SQLite makes a writer that finds the database locked sleep for growing
intervals before it retries, which under concurrent writes costs more than the writes.

`synchronous=NORMAL` in WAL mode keeps every committed transaction through a process
crash; only a power loss may lose the last ones.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

try:
    import fcntl
except ImportError:  # Windows: writers of other processes wait in SQLite itself.
    fcntl = None  # type: ignore[assignment]

from rekollect.storage.migrate import upgrade

logger = logging.getLogger(__name__)

DATABASE_FILE = "rekollect.db"
_BUSY_TIMEOUT_MS = 30_000
_WRITE = "rekollect_write"


class Database:
    """An engine plus the transaction discipline every query runs under."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_lock: AbstractContextManager[object] = nullcontext()
        if engine.dialect.name == "sqlite":
            self._write_lock = _WriterQueue(engine.url.database)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for consistent reads (one transaction, rolled back)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, else rolled back."""
        with self._write_lock, self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()


class _WriterQueue:
    """One SQLite writer at a time: a thread lock, then a file lock across processes."""

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._lock_path = None
        if fcntl is not None and database and database != ":memory:":
            self._lock_path = f"{database}-writer.lock"
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._lock_path is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the database at `url`, bringing its schema up to date first."""
    engine = create_engine(url, **_engine_options(url))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    database = Database(engine)
    if migrate:
        with database.write() as conn:
            upgrade(conn)
    return database


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")
