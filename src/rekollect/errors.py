"""Every error rekollect knows, in two families.

`ServiceError` and its subclasses are what a client may see: each class is named
exactly as the AWS error shape, so the class name is the `__type` on the wire, and
each knows its HTTP status. `RekollectError` is the internal family (storage,
configuration): it never reaches the wire directly; the server turns anything that is
not a `ServiceError` into `InternalServerError`.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error a client sees, answered as `{"__type": <class name>, ...}`."""

    status_code = 400
    sender_fault = True
    default_message = "Request has invalid parameters."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return type(self).__name__


class AccessDeniedException(ServiceError):
    default_message = "You are not authorized to perform this action."


class ConflictException(ServiceError):
    default_message = "The request conflicts with the current state of the user."


class IdempotentParameterMismatchException(ServiceError):
    pass


class ImageTooLargeException(ServiceError):
    default_message = "Image size is too large."


class InvalidImageFormatException(ServiceError):
    default_message = "Request has invalid image format."


class InvalidPaginationTokenException(ServiceError):
    default_message = "Invalid Pagination Token"


class InvalidParameterException(ServiceError):
    pass


class InvalidS3ObjectException(ServiceError):
    default_message = "Request has invalid S3 object."


class ProvisionedThroughputExceededException(ServiceError):
    default_message = "Provisioned Rate exceeded."


class ResourceAlreadyExistsException(ServiceError):
    pass


class ResourceNotFoundException(ServiceError):
    pass


class ServiceQuotaExceededException(ServiceError):
    pass


class InternalServerError(ServiceError):
    status_code = 500
    sender_fault = False
    default_message = "Internal server error"


class ThrottlingException(ServiceError):
    status_code = 500
    sender_fault = False
    default_message = "Slow down; sudden increase in rate of requests."


# Protocol-level errors: not in Rekognition's model, so botocore surfaces them as a
# plain ClientError carrying this code, as it does for the real service.


class SerializationException(ServiceError):
    default_message = "The request body could not be read as JSON."


class UnknownOperationException(ServiceError):
    default_message = "The requested operation is not recognized by the service."


class UnsupportedOperationException(ServiceError):
    """A Rekognition operation that rekollect does not implement (see the docs)."""


# Authentication errors, as AWS's JSON-protocol services name them; all HTTP 400
# (see docs/security.md for the choice of codes and statuses).


class IncompleteSignatureException(ServiceError):
    default_message = "The request signature does not conform to AWS standards."


class InvalidSignatureException(ServiceError):
    default_message = (
        "The request signature we calculated does not match the signature you "
        "provided. Check your AWS Secret Access Key and signing method."
    )


class UnrecognizedClientException(ServiceError):
    default_message = "The security token included in the request is invalid."


class ExpiredTokenException(ServiceError):
    default_message = "The security token included in the request is expired"


class MissingAuthenticationTokenException(ServiceError):
    default_message = "Missing Authentication Token"


class RequestTimeoutException(ServiceError):
    """The client sent its request body too slowly; SDKs retry this code."""

    status_code = 408
    default_message = (
        "The request body was not received within the time allowed; send it again."
    )


class RekollectError(Exception):
    """Internal failures (storage, configuration); never sent to a client as is."""


class SchemaTooNewError(RekollectError):
    """The database was migrated by a newer rekollect than this one."""


class DatabaseError(RekollectError):
    """The database failed in a way a later attempt may not: the server answers a
    retryable 5xx error for these, without a traceback."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached, refused the connection, or timed out."""


class TransactionConflictError(DatabaseError):
    """A serialization failure or deadlock: the transaction was rolled back and may
    simply be run again."""


class KeyStoreError(RekollectError):
    """Access keys cannot be stored or read: no master key, or the wrong one."""


class PolicyError(RekollectError):
    """An access key's policy document is not in the supported subset of IAM."""
