"""Idempotent operations: the same ClientRequestToken gets the first response back.

The record is written in the same transaction as the change it answers for, so a
token is either stored with its effect or not at all. Only successful responses are
kept: a retry after an error runs the request again. Tokens are scoped to the
account, region and operation, and honoured for `Service.idempotency_ttl_s`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from rekollect.errors import IdempotentParameterMismatchException
from rekollect.service.context import Service
from rekollect.storage.kv import (
    IdempotencyRecord,
    get_idempotency_record,
    lock_idempotency_key,
    purge_idempotency_records,
    put_idempotency_record,
)
from rekollect.storage.records import Scope

logger = logging.getLogger(__name__)

_PURGE_EVERY_S = 600.0
_last_purge = 0.0

Result = dict[str, Any]


def run_once(
    svc: Service,
    conn: Connection,
    scope: Scope,
    operation: str,
    token: str | None,
    params: dict[str, Any],
    run: Callable[[Connection], Result],
) -> Result:
    """Run `run(conn)` unless `token` already answered this request; store its result."""
    if token is None:
        return run(conn)

    now = svc.clock()
    digest = _request_digest(params)
    lock_idempotency_key(conn, scope, operation, token)
    record = get_idempotency_record(conn, scope, operation, token)
    if record is not None and record.created_at >= now - svc.idempotency_ttl_s:
        if record.request_sha256 != digest:
            raise IdempotentParameterMismatchException(
                f"The ClientRequestToken: {token} you have supplied is already in use."
            )
        stored: Result = json.loads(record.response)
        return stored

    result = run(conn)
    put_idempotency_record(
        conn,
        scope,
        operation,
        token,
        IdempotencyRecord(digest, json.dumps(result), now),
        replace=record is not None,
    )
    _purge_now_and_then(svc, conn, now)
    return result


def _request_digest(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _purge_now_and_then(svc: Service, conn: Connection, now: float) -> None:
    global _last_purge
    if now - _last_purge < _PURGE_EVERY_S:
        return
    _last_purge = now
    purged = purge_idempotency_records(conn, now - svc.idempotency_ttl_s)
    if purged:
        logger.info("Purged %d expired idempotency records", purged)
