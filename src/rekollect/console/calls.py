"""What the console does, as API operations: validated by the model, authorized by
the signed-in key's policy, run by the same service functions with the same retries,
and failing with the same errors, told in words.

`authorize` is the one check every console page and action goes through, with the
Rekognition action it amounts to (the collections page is ListCollections, a
collection's page ListFaces and ListUsers, a thumbnail ListFaces, ...) and the
collection's ARN, so a policy means the same on the console as on the API.
"""

from __future__ import annotations

import logging
from typing import Any

from rekollect.console.session import Session
from rekollect.errors import (
    AccessDeniedException,
    DatabaseError,
    ServiceError,
    TransactionConflictError,
    UnsupportedOperationException,
)
from rekollect.protocol import model
from rekollect.protocol.validate import validate
from rekollect.security.access import Caller
from rekollect.security.limits import JobSlots
from rekollect.server.wire import run_operation
from rekollect.service import Service
from rekollect.service.collection import collection_arn

logger = logging.getLogger(__name__)

Result = dict[str, Any]


def authorize(session: Session, action: str, resource_arn: str) -> None:
    """Raise AccessDeniedException unless the session may do `action` (an operation
    name, e.g. ListFaces) on `resource_arn` (a collection's ARN, or `*`)."""
    if not session.signed_in:
        raise AccessDeniedException("Sign in to use the console.")
    if session.access is None:
        return
    caller = Caller(session.scope, session.key)
    session.access.authorize(caller, action, {"ResourceArn": resource_arn})


def arn_of(session: Session, collection_id: str | None) -> str:
    """The ARN a console action on `collection_id` (None: on none) acts on."""
    if collection_id is None:
        return "*"
    return collection_arn(session.scope, collection_id)


def call(
    service: Service,
    session: Session,
    operation: str,
    params: dict[str, Any],
    image_slots: JobSlots | None = None,
) -> Result:
    """Run one operation for the session, exactly as the API would run it."""
    operation_model = model.operation_model(operation)
    if operation_model is None:
        raise UnsupportedOperationException(
            f"rekollect does not implement {operation}."
        )
    clean = validate(operation_model.input_shape, params)
    authorize(session, operation, arn_of(session, clean.get("CollectionId")))
    result = run_operation(service, operation_model, session.scope, clean, image_slots)
    logger.info(
        "console %s collection=%s key=%s",
        operation,
        clean.get("CollectionId", "-"),
        session.key.access_key_id if session.key is not None else "-",
    )
    return result


def in_words(error: Exception) -> str:
    """What to tell the person whose action failed with `error`."""
    if isinstance(error, ServiceError):
        return f"{error.message} ({error.code})"
    if isinstance(error, TransactionConflictError):
        return "The change collided with another one at the same moment; try again."
    if isinstance(error, DatabaseError):
        return "The service's database is unavailable; try again in a moment."
    logger.error("Console action failed", exc_info=error)
    return "Something went wrong on the server (InternalServerError); see its log."
