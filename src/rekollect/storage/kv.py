"""Small key-value records: server settings and idempotency records.

Both are safe with several server processes on one PostgreSQL: a setting is created
with `ON CONFLICT DO NOTHING` and read back, so servers starting at once agree on it,
and an idempotency token is locked (`lock_idempotency_key`) before its record is read,
so two requests with one token on two servers run one after the other and the second
finds the first's record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from rekollect.storage.records import Scope
from rekollect.storage.schema import idempotency_records, settings


def get_or_create_setting(conn: Connection, key: str, default: str) -> str:
    """The setting's value, storing `default` first if it has none."""
    query = select(settings.c.value).where(settings.c.key == key)
    value = conn.execute(query).scalar()
    if value is not None:
        return str(value)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(settings).values(key=key, value=default).on_conflict_do_nothing()
    )
    return str(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class IdempotencyRecord:
    request_sha256: str
    response: str
    created_at: float


_key = (
    idempotency_records.c.account_id == bindparam("account_id"),
    idempotency_records.c.region == bindparam("region"),
    idempotency_records.c.operation == bindparam("operation"),
    idempotency_records.c.token == bindparam("token"),
)
_get_record = select(idempotency_records).where(*_key)
_delete_record = delete(idempotency_records).where(*_key)
_insert_record = insert(idempotency_records)


_advisory_lock = text("SELECT pg_advisory_xact_lock(:key)")


def lock_idempotency_key(
    conn: Connection, scope: Scope, operation: str, token: str
) -> None:
    """Hold the token until the transaction ends (PostgreSQL; SQLite's writers are
    one at a time already)."""
    if conn.dialect.name != "postgresql":
        return
    name = "\0".join((scope.account_id, scope.region, operation, token)).encode()
    key = int.from_bytes(
        hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True
    )
    conn.execute(_advisory_lock, {"key": key})


def get_idempotency_record(
    conn: Connection, scope: Scope, operation: str, token: str
) -> IdempotencyRecord | None:
    row = conn.execute(_get_record, _key_values(scope, operation, token)).first()
    if row is None:
        return None
    return IdempotencyRecord(row.request_sha256, row.response, row.created_at)


def put_idempotency_record(
    conn: Connection,
    scope: Scope,
    operation: str,
    token: str,
    record: IdempotencyRecord,
    *,
    replace: bool = False,
) -> None:
    """Store the record; `replace` removes an expired record of the same key first."""
    key = _key_values(scope, operation, token)
    if replace:
        conn.execute(_delete_record, key)
    conn.execute(
        _insert_record,
        {
            **key,
            "request_sha256": record.request_sha256,
            "response": record.response,
            "created_at": record.created_at,
        },
    )


def purge_idempotency_records(conn: Connection, older_than: float) -> int:
    result = conn.execute(
        delete(idempotency_records).where(idempotency_records.c.created_at < older_than)
    )
    return result.rowcount


def _key_values(scope: Scope, operation: str, token: str) -> dict[str, str]:
    return {
        "account_id": scope.account_id,
        "region": scope.region,
        "operation": operation,
        "token": token,
    }
