"""Small key-value records: server settings and idempotency records."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from rekollect.storage.records import Scope
from rekollect.storage.schema import idempotency_records, settings


def get_or_create_setting(conn: Connection, key: str, default: str) -> str:
    """The setting's value, storing `default` first if it has none."""
    value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    if value is None:
        conn.execute(insert(settings).values(key=key, value=default))
        return default
    return str(value)


@dataclass(frozen=True)
class IdempotencyRecord:
    request_sha256: str
    response: str
    created_at: float


def get_idempotency_record(
    conn: Connection, scope: Scope, operation: str, token: str
) -> IdempotencyRecord | None:
    row = conn.execute(
        select(idempotency_records).where(*_key(scope, operation, token))
    ).first()
    if row is None:
        return None
    return IdempotencyRecord(row.request_sha256, row.response, row.created_at)


def put_idempotency_record(
    conn: Connection,
    scope: Scope,
    operation: str,
    token: str,
    record: IdempotencyRecord,
) -> None:
    conn.execute(delete(idempotency_records).where(*_key(scope, operation, token)))
    conn.execute(
        insert(idempotency_records).values(
            account_id=scope.account_id,
            region=scope.region,
            operation=operation,
            token=token,
            request_sha256=record.request_sha256,
            response=record.response,
            created_at=record.created_at,
        )
    )


def purge_idempotency_records(conn: Connection, older_than: float) -> int:
    result = conn.execute(
        delete(idempotency_records).where(idempotency_records.c.created_at < older_than)
    )
    return result.rowcount


def _key(scope: Scope, operation: str, token: str) -> tuple:  # type: ignore[type-arg]
    return (
        idempotency_records.c.account_id == scope.account_id,
        idempotency_records.c.region == scope.region,
        idempotency_records.c.operation == operation,
        idempotency_records.c.token == token,
    )
