"""Who sent a request (SigV4 and the key ring), and whether they may do what it asks.

Two modes, decided on every request from whether any access key exists:

* No key, and the server is allowed to run open (it listens on loopback only, or
  `--allow-unauthenticated-remote`): every request is accepted, unsigned or signed
  with anything, as before keys existed; the credential scope only names the
  region, and requests run in the server's account.
* Otherwise every request must carry a valid signature by a known key. The key's
  account id is the account the request runs in; the signing region is its region.
  A key's policy, if it has one, must allow the operation on its resource.

Refusals are logged at WARNING with the key id and the error code, never a secret.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rekollect.errors import (
    AccessDeniedException,
    ExpiredTokenException,
    MissingAuthenticationTokenException,
    ServiceError,
    UnrecognizedClientException,
)
from rekollect.protocol import sigv4
from rekollect.protocol.sigv4 import HttpRequest
from rekollect.security.keystore import AccessKey, KeyRing, session_token_sha256
from rekollect.security.limits import RateLimiter
from rekollect.security.policy import Decision
from rekollect.service.collection import collection_arn
from rekollect.storage.records import Scope

logger = logging.getLogger(__name__)

SERVICE_PREFIX = "rekognition:"
_ANONYMOUS = "-"


@dataclass(frozen=True)
class Caller:
    """Where a request runs, and the key that signed it (None: unauthenticated)."""

    scope: Scope
    key: AccessKey | None = None

    @property
    def key_id(self) -> str:
        return self.key.access_key_id if self.key is not None else _ANONYMOUS


class AccessControl:
    """Authenticates, rate-limits and authorizes requests for one server process."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        account_id: str,
        default_region: str,
        open_when_keyless: bool,
        rate: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.account_id = account_id
        self.default_region = default_region
        self.open_when_keyless = open_when_keyless
        self.rate = rate
        self.clock = clock

    @property
    def is_open(self) -> bool:
        """Whether requests are accepted without a valid signature right now."""
        return self.open_when_keyless and self.keys.count() == 0

    def admit(self, request: HttpRequest) -> Caller:
        """The caller of `request`, once authenticated and within its rate."""
        caller = self.authenticate(request)
        if self.rate is not None:
            try:
                self.rate.take(caller.key_id)
            except ServiceError as error:
                logger.warning("Throttled key %s: %s", caller.key_id, error.code)
                raise
        return caller

    def authenticate(self, request: HttpRequest) -> Caller:
        authorization = request.header("authorization")
        if self.is_open:
            region = self.default_region
            if authorization:
                region = sigv4.parse_authorization(authorization).region
            return Caller(Scope(self.account_id, region))

        key_id = "none"
        try:
            if not authorization:
                raise MissingAuthenticationTokenException()
            credential = sigv4.parse_authorization(authorization)
            key_id = credential.access_key
            key = self._verified(credential, request)
        except ServiceError as error:
            logger.warning(
                "Refused a request (access key %s): %s: %s",
                key_id,
                error.code,
                error.message.partition("\n")[0],
            )
            raise
        return Caller(Scope(key.account_id, credential.region), key)

    def authorize(
        self, caller: Caller, operation: str, params: Mapping[str, Any]
    ) -> None:
        """Raise AccessDeniedException unless the caller's policy allows the call."""
        key = caller.key
        if key is None or key.policy is None:
            return
        action = SERVICE_PREFIX + operation
        resource = resource_of(caller.scope, params)
        decision = key.policy.decide(action, resource)
        if decision is Decision.ALLOW:
            return
        reason = (
            "with an explicit deny in an identity-based policy"
            if decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {action} action"
        )
        logger.warning("Denied %s to key %s on %s", action, key.access_key_id, resource)
        raise AccessDeniedException(
            f"User: {key.user_arn} is not authorized to perform: {action} on resource: "
            f"{resource} {reason}"
        )

    def _verified(
        self, credential: sigv4.Credential, request: HttpRequest
    ) -> AccessKey:
        found = self.keys.find(credential.access_key)
        if found is None:
            raise UnrecognizedClientException()
        token = request.header("x-amz-security-token")
        if found.session_token_sha256 is None:
            if token is not None:
                raise UnrecognizedClientException()
        elif token is None or not hmac.compare_digest(
            session_token_sha256(token), found.session_token_sha256
        ):
            raise UnrecognizedClientException()
        now = self.clock()
        expires_at = found.key.expires_at
        if expires_at is not None and now >= expires_at:
            raise ExpiredTokenException()
        sigv4.verify(credential, request, found.secret, now)
        return found.key


def resource_of(scope: Scope, params: Mapping[str, Any]) -> str:
    """The ARN an operation acts on: its collection's, its `ResourceArn`, else `*`."""
    collection_id = params.get("CollectionId")
    if isinstance(collection_id, str):
        return collection_arn(scope, collection_id)
    resource_arn = params.get("ResourceArn")
    if isinstance(resource_arn, str):
        return resource_arn
    return "*"
