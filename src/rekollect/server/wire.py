"""One AWS JSON 1.1 exchange, independent of the transport that carried it.

`WireHandler.handle` takes the request headers and body and returns the status,
headers and body to answer with. The HTTP server and the in-process client both go
through it, so both behave alike byte for byte. Steps: resolve the operation from
`X-Amz-Target`, check the content type, decode the JSON, validate it against the
model, run the service operation, encode the result by its output shape. Every
failure becomes an AWS error body; anything unexpected is logged once with its
traceback and answered as `InternalServerError`.

With an `AccessControl` (the HTTP server's), each request is authenticated and
rate-limited once its operation and content type are known, and authorized by the
signing key's policy once its parameters are valid; image operations then take one
of the `JobSlots`. Without one (the in-process client, which has the store at hand
anyway) the credential scope only selects the region.

An operation whose transaction ends in a deadlock or serialization failure (only on
PostgreSQL) is run again, a few times at most, then answered as `ThrottlingException`;
a database that cannot be reached is answered as `InternalServerError` with a message
that says so, logged as one warning line. Both are errors boto3 and the aws CLI retry,
and neither leaves anything half-written: the transaction was rolled back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore import xform_name
from botocore.model import OperationModel, Shape

from rekollect.errors import (
    DatabaseError,
    ImageTooLargeException,
    InternalServerError,
    InvalidParameterException,
    SerializationException,
    ServiceError,
    ThrottlingException,
    TransactionConflictError,
    UnknownOperationException,
    UnsupportedOperationException,
)
from rekollect.protocol import model
from rekollect.protocol.encode import encode
from rekollect.protocol.sigv4 import HttpRequest, parse_authorization
from rekollect.protocol.validate import validate
from rekollect.security.access import AccessControl, Caller
from rekollect.security.limits import JobSlots, check_nesting
from rekollect.service import OPERATIONS, Service
from rekollect.storage.database import run_with_retries
from rekollect.storage.records import Scope

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
# Room for every non-blob member of any request (4,096 face ids take 160 kB).
_BASE_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class WireResponse:
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)


class WireHandler:
    def __init__(
        self,
        service: Service,
        access: AccessControl | None = None,
        image_slots: JobSlots | None = None,
    ) -> None:
        self.service = service
        self.access = access
        self.image_slots = image_slots

    def body_limit(self, target: str | None) -> int:
        """The largest legal request body for `target`, in bytes."""
        operation = _operation(target)
        if operation is None:
            return _BASE_BODY_BYTES
        return _BASE_BODY_BYTES + _blob_budget(operation.input_shape)

    def too_large(self, target: str | None, size: int) -> WireResponse:
        """The answer to a body over `body_limit`, refused before it is read."""
        limit = self.body_limit(target)
        operation = _operation(target)
        if operation is not None and _blob_budget(operation.input_shape):
            error: ServiceError = ImageTooLargeException(
                f"Image size is too large: the request body of {size} bytes exceeds "
                f"the {limit} bytes a {operation.name} request can take."
            )
        else:
            error = InvalidParameterException(
                f"The request body of {size} bytes exceeds the {limit} bytes a request "
                "can take."
            )
        return self.error(error)

    def error(self, error: ServiceError, request_id: str | None = None) -> WireResponse:
        """The AWS error body and headers for `error`."""
        request_id = request_id or str(uuid.uuid4())
        body = {
            "__type": error.code,
            "Code": error.code,
            "Message": error.message,
            "Logref": request_id,
        }
        headers = _headers(request_id) | {"x-amzn-ErrorType": error.code}
        return WireResponse(error.status_code, headers, json.dumps(body).encode())

    def handle(
        self, headers: Mapping[str, str], body: bytes, http: HttpRequest | None = None
    ) -> WireResponse:
        """Answer one request; `headers` must have lower-case names.

        `http` is the request as it arrived (method, path, query, every header line),
        which a signature covers; without it, `POST /` with `headers` is assumed.
        """
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        target = headers.get("x-amz-target")
        params: dict[str, Any] = {}
        caller: Caller | None = None
        try:
            operation = _require_operation(target)
            _check_content_type(headers.get("content-type", ""))
            caller = self._caller(headers, body, http)
            params = validate(operation.input_shape, _decode(body))
            if self.access is not None:
                self.access.authorize(caller, operation.name, params)
            response = self._call(operation, caller.scope, params, request_id)
        except ServiceError as error:
            response = self.error(error, request_id)
        except DatabaseError as error:
            logger.warning("Request %s (%s): %s", request_id, target, error)
            response = self.error(_database_error(error), request_id)
        except Exception:
            logger.exception("Request %s (%s) failed", request_id, target)
            response = self.error(InternalServerError(), request_id)

        logger.info(
            "%s %s collection=%s status=%d %.1fms%s",
            request_id,
            (target or "-").rpartition(".")[2],
            params.get("CollectionId", "-"),
            response.status,
            (time.perf_counter() - started) * 1000,
            f" key={caller.key_id}" if caller is not None and caller.key else "",
        )
        return response

    def _caller(
        self, headers: Mapping[str, str], body: bytes, http: HttpRequest | None
    ) -> Caller:
        if self.access is None:
            return Caller(self._scope(headers))
        if http is None:
            http = HttpRequest("POST", "/", "", tuple(headers.items()), body)
        return self.access.admit(http)

    def _scope(self, headers: Mapping[str, str]) -> Scope:
        authorization = headers.get("authorization")
        region = self.service.default_region
        if authorization:
            region = parse_authorization(authorization).region
        return Scope(self.service.account_id, region)

    def _call(
        self,
        operation: OperationModel,
        scope: Scope,
        params: dict[str, Any],
        request_id: str,
    ) -> WireResponse:
        result = run_operation(self.service, operation, scope, params, self.image_slots)
        body = json.dumps(encode(operation.output_shape, result), separators=(",", ":"))
        return WireResponse(200, _headers(request_id), body.encode())


def run_operation(
    service: Service,
    operation: OperationModel,
    scope: Scope,
    params: dict[str, Any],
    image_slots: JobSlots | None = None,
) -> dict[str, Any]:
    """Run the service function of `operation` on validated `params`: holding one of
    `image_slots` when the operation carries an image, and running it again after a
    deadlock or serialization failure. The console calls it too."""
    implementation = OPERATIONS.get(operation.name)
    if implementation is None:
        raise UnsupportedOperationException(
            f"rekollect does not implement {operation.name}; docs/compatibility.md "
            "lists the operations it does."
        )
    kwargs = {xform_name(name): value for name, value in params.items()}
    slots = image_slots if _blob_budget(operation.input_shape) else None
    with slots or contextlib.nullcontext():
        return run_with_retries(lambda: implementation(service, scope, **kwargs))


def _database_error(error: DatabaseError) -> ServiceError:
    if isinstance(error, TransactionConflictError):
        return ThrottlingException(
            "The request kept conflicting with concurrent requests; retry it."
        )
    return InternalServerError(
        "The service's database is unavailable; retry the request."
    )


def _headers(request_id: str) -> dict[str, str]:
    return {"content-type": CONTENT_TYPE, "x-amzn-RequestId": request_id}


def _operation(target: str | None) -> OperationModel | None:
    prefix, dot, name = (target or "").partition(".")
    if not dot or prefix != model.target_prefix():
        return None
    return model.operation_model(name)


def _require_operation(target: str | None) -> OperationModel:
    operation = _operation(target)
    if operation is None:
        shown = f"'{target}'" if target else "missing"
        raise UnknownOperationException(
            f"The X-Amz-Target header is {shown}; expected "
            f"{model.target_prefix()}.<Operation>."
        )
    return operation


def _check_content_type(content_type: str) -> None:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise SerializationException(
            f"Content-Type must be {CONTENT_TYPE}, not '{content_type}'."
        )


def _decode(body: bytes) -> Any:
    if not body.strip():
        return {}
    check_nesting(body)
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise SerializationException(
            f"The request body is not valid JSON: {error}"
        ) from None
    if not isinstance(document, dict):
        raise SerializationException("The request body must be a JSON object.")
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _blob_budget(shape: Shape | None) -> int:
    """Bytes the base64-encoded blobs reachable from `shape` may take at most."""
    if shape is None or shape.type_name != "structure":
        return 0
    total = 0
    for member in shape.members.values():
        if member.type_name == "blob":
            total += 4 * math.ceil(member.metadata.get("max", 0) / 3)
        else:
            total += _blob_budget(member)
    return total
