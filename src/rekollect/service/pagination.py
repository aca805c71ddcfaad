"""Opaque, tamper-evident pagination tokens.

A token carries the position after the last item of a page, bound to the operation
and to the request it continues (collection, filters): `<payload>.<mac>`, both
base64url, the MAC an HMAC-SHA256 under a key kept in the store, so every process on
the same store accepts the others' tokens. Any change to a token, or its use with
another request, gives `InvalidPaginationTokenException`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from rekollect.errors import InvalidPaginationTokenException

_MAC_BYTES = 12


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, operation: str, binding: Any, position: Any) -> str:
        """A token that resumes `operation` for `binding` after `position`."""
        payload = json.dumps(
            [operation, _digest(binding), position], separators=(",", ":")
        )
        body = _b64(payload.encode())
        return f"{body}.{_b64(self._mac(body))}"

    def position(self, token: str, operation: str, binding: Any) -> Any:
        """The position `token` resumes from, if it is genuine and for this request."""
        body, _, mac = token.partition(".")
        try:
            genuine = hmac.compare_digest(_unb64(mac), self._mac(body))
            if genuine:
                op, digest, position = json.loads(_unb64(body))
        except (ValueError, TypeError, binascii.Error):
            genuine = False
        if not genuine or op != operation or digest != _digest(binding):
            raise InvalidPaginationTokenException()
        return position

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def _digest(binding: Any) -> str:
    canonical = json.dumps(binding, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
