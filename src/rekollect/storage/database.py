"""Opening the store: engine set-up, migrations, and read and write transactions.

On SQLite every write transaction starts with `BEGIN IMMEDIATE`, so writers queue on
the database lock up front instead of failing when a reader upgrades; reads run in
WAL mode beside them. Writers also queue on a lock of their own first, a thread lock
plus an advisory file lock beside the database (so server processes sharing the file
queue too): SQLite makes a writer that finds the database locked sleep for growing
intervals before it retries, which under concurrent writes costs more than the writes.

`synchronous=NORMAL` in WAL mode keeps every committed transaction through a process
crash; only a power loss may lose the last ones.

On PostgreSQL (psycopg 3; a plain `postgresql://` URL is read as psycopg's) every
transaction runs at READ COMMITTED from a connection pool; the queries take row locks
where an invariant needs them (see `repository`). Each session gets a statement
timeout, so a stuck lock wait ends with an error instead of a hung request. Failures
are translated at this boundary: a deadlock or serialization failure becomes
`TransactionConflictError` (run the request again: `run_with_retries`), a database that
cannot be reached or answers too slowly `DatabaseUnavailableError`; both are rolled
back whole.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

try:
    import fcntl
except ImportError:  # Windows: writers of other processes wait in SQLite itself.
    fcntl = None  # type: ignore[assignment]

from rekollect.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    TransactionConflictError,
)
from rekollect.storage.migrate import upgrade

logger = logging.getLogger(__name__)

DATABASE_FILE = "rekollect.db"
_BUSY_TIMEOUT_MS = 30_000
_WRITE = "rekollect_write"

POSTGRES_DRIVER = "postgresql+psycopg"
# Per server process: connections kept open, extra ones opened under load, and how
# long a request waits for a free one before it is answered with a retryable error.
POOL_SIZE = 10
POOL_MAX_OVERFLOW = 20
POOL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 30_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
# Attempts of a request whose transaction hit a deadlock or serialization failure.
MAX_ATTEMPTS = 5
_RETRY_BASE_S = 0.005

# SQLSTATEs: serialization_failure, deadlock_detected, lock_not_available.
_CONFLICT_STATES = {"40001", "40P01", "55P03"}
# query_canceled (the statement timeout), admin_shutdown, crash_shutdown,
# cannot_connect_now; every state of class 08 (connection) and 53 (resources).
_UNAVAILABLE_STATES = {"57014", "57P01", "57P02", "57P03"}

T = TypeVar("T")


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

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for consistent reads (one transaction, rolled back)."""
        with _Translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, else rolled back."""
        with _Translated(), self._write_lock, self.engine.connect() as conn:
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


class _Translated:
    """Turns the driver's failures that a retry may cure into rekollect's own errors,
    after the transaction inside has been rolled back."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            return
        translated = translate_error(error)
        if translated is not None:
            raise translated from error


def translate_error(error: BaseException) -> DatabaseError | None:
    """The rekollect error a driver failure stands for; None: not a database outage."""
    if isinstance(error, sa_exc.TimeoutError):
        return DatabaseUnavailableError(
            "Every database connection of this server stayed busy for "
            f"{POOL_TIMEOUT_S:g} s."
        )
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    state = getattr(error.orig, "sqlstate", None)
    reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error)
    if state in _CONFLICT_STATES:
        return TransactionConflictError(f"Transaction conflict ({state}): {reason}")
    unavailable = (
        error.connection_invalidated
        or state in _UNAVAILABLE_STATES
        or (isinstance(state, str) and state[:2] in ("08", "53"))
        or (
            isinstance(error, sa_exc.OperationalError)
            and state is None
            and _is_postgresql_error(error)
        )
        or _is_sqlite_unavailable(error)
    )
    if unavailable:
        return DatabaseUnavailableError(f"The database is unavailable: {reason}")
    return None


def _is_postgresql_error(error: sa_exc.DBAPIError) -> bool:
    return type(error.orig).__module__.startswith("psycopg")


def _is_sqlite_unavailable(error: sa_exc.DBAPIError) -> bool:
    if not isinstance(error, sa_exc.OperationalError):
        return False
    if type(error.orig).__module__ != "sqlite3":
        return False
    message = str(error.orig)
    return "database is locked" in message or "unable to open" in message


def run_with_retries(call: Callable[[], T], *, attempts: int = MAX_ATTEMPTS) -> T:
    """`call()`, run again (after a short random pause) while its transaction ends in
    a deadlock or serialization failure, at most `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TransactionConflictError as conflict:
            if attempt == attempts:
                raise
            pause = _RETRY_BASE_S * (2**attempt) * random.uniform(0.5, 1.5)
            logger.debug("Attempt %d: %s; retrying", attempt, conflict)
            time.sleep(pause)
    raise AssertionError("unreachable")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def normalize_url(url: str) -> str:
    """`url` with PostgreSQL URLs on psycopg 3, whichever way they name the dialect."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return f"{POSTGRES_DRIVER}://{url[len(prefix) :]}"
    return url


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the database at `url`, bringing its schema up to date first."""
    database = _connect(url)
    if migrate:
        try:
            with database.write() as conn:
                upgrade(conn)
        except BaseException:
            database.close()
            raise
    return database


def upgrade_database(url: str) -> tuple[str | None, str]:
    """Apply every migration this rekollect knows to the database at `url`.

    Returns the revision found (None: an empty database) and the one left, which are
    equal when there was nothing to do. Raises `SchemaTooNewError` for a database
    written by a newer rekollect, `DatabaseUnavailableError` when it cannot be reached.
    """
    database = _connect(url)
    try:
        with database.write() as conn:
            return upgrade(conn)
    finally:
        database.close()


def _connect(url: str) -> Database:
    url = normalize_url(url)
    engine = create_engine(url, **_engine_options(url))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return Database(engine)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if not url.startswith("postgresql"):
        return options
    query = make_url(url).query
    connect_args: dict[str, Any] = {"application_name": "rekollect"}
    if "connect_timeout" not in query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    if "options" not in query:
        connect_args["options"] = (
            f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
            f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        )
    return options | {
        "pool_size": POOL_SIZE,
        "max_overflow": POOL_MAX_OVERFLOW,
        "pool_timeout": POOL_TIMEOUT_S,
        "pool_recycle": 1800,
        "connect_args": connect_args,
    }


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
