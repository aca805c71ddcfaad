"""Console sessions: who is signed in, kept in a signed cookie, and their CSRF token.

A session is a cookie, `<payload>.<mac>` in base64url: the access key id (none for
the open console of a keyless loopback server, or before sign-in), the region, when
it was issued and a random nonce. The MAC is an HMAC-SHA256 under a key kept in the
store, so every server process sharing the store accepts the others' sessions, and
it also covers a digest of the access key's secret: deleting the key (or creating a
new one with the same id) ends its sessions at once. Sessions last `LIFETIME_S` and
never outlive a temporary key.

Every form carries the session's CSRF token (an HMAC of the nonce), checked on every
POST; the cookie is HttpOnly and SameSite=Strict, so another site can neither read it
nor send it. Signing in issues a new nonce, so a session id planted before sign-in
is worth nothing after.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rekollect.security.access import AccessControl
from rekollect.security.keystore import AccessKey, session_token_sha256
from rekollect.service.context import Service
from rekollect.storage.kv import get_or_create_setting
from rekollect.storage.records import Scope

COOKIE = "rekollect_console"
LIFETIME_S = 12 * 3600
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")


@dataclass(frozen=True)
class Session:
    """A console visitor: signed in when `signed_in`, with a key unless the console
    is open (no access key exists and the server listens on loopback only)."""

    scope: Scope
    key: AccessKey | None
    signed_in: bool
    nonce: str
    issued_at: float
    csrf_token: str
    # Where `authorize` asks whether the key's policy allows an action.
    access: AccessControl | None = field(default=None, repr=False, compare=False)

    @property
    def who(self) -> str:
        if self.key is not None:
            return f"{self.key.user_name} ({self.key.access_key_id})"
        return "anyone on this machine"


class SignInError(Exception):
    """The key id, secret or session token given at sign-in do not match a key."""


class Sessions:
    """Issues and reads session cookies for one console."""

    def __init__(
        self,
        service: Service,
        access: AccessControl | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.access = access
        self.clock = clock
        with service.database.write() as conn:
            key = get_or_create_setting(
                conn, "console_session_key", secrets.token_hex(32)
            )
        self._key = bytes.fromhex(key)

    @property
    def is_open(self) -> bool:
        """Whether the console needs no sign-in right now."""
        return self.access is None or self.access.is_open

    def read(self, cookie: str | None) -> Session:
        """The session of `cookie`: signed in, or (if missing, forged, stale or its
        key gone) a fresh one that is not, unless the console is open."""
        fields = self._fields(cookie) if cookie else None
        if fields is not None:
            key_id, region, issued_at, nonce = fields
            session = self._session(key_id, region, issued_at, nonce, cookie or "")
            if session is not None:
                return session
        return self.anonymous()

    def anonymous(self, region: str | None = None) -> Session:
        """A new session, signed in only if the console is open."""
        scope = Scope(self._account_id(), region or self.service.default_region)
        nonce = secrets.token_urlsafe(18)
        csrf = self._csrf(nonce)
        return Session(
            scope, None, self.is_open, nonce, self.clock(), csrf, self.access
        )

    def sign_in(
        self, key_id: str, secret: str, session_token: str, region: str
    ) -> Session:
        """A signed-in session for the key, or SignInError."""
        region = region.strip() or self.service.default_region
        if not _REGION.fullmatch(region):
            raise SignInError(f"'{region}' is not a region name, e.g. us-east-1.")
        found = self.access.keys.find(key_id.strip()) if self.access else None
        if found is None or not hmac.compare_digest(
            secret.strip().encode(), found.secret.encode()
        ):
            raise SignInError("The access key id or the secret is not right.")
        expected_token = found.session_token_sha256
        if expected_token is not None and not hmac.compare_digest(
            session_token_sha256(session_token.strip()), expected_token
        ):
            raise SignInError("A temporary key needs its session token.")
        if self._expired(found.key, self.clock()):
            raise SignInError("The access key has expired.")
        nonce = secrets.token_urlsafe(18)
        scope = Scope(found.key.account_id, region)
        csrf = self._csrf(nonce)
        return Session(scope, found.key, True, nonce, self.clock(), csrf, self.access)

    def cookie(self, session: Session) -> str:
        """The cookie value that carries `session`."""
        key_id = session.key.access_key_id if session.key is not None else ""
        payload = json.dumps(
            [key_id, session.scope.region, session.issued_at, session.nonce],
            separators=(",", ":"),
        )
        body = _b64(payload.encode())
        return f"{body}.{_b64(self._mac(body, self._secret_digest(key_id)))}"

    def csrf_matches(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(session.csrf_token.encode(), token.encode())

    def _session(
        self, key_id: str, region: str, issued_at: float, nonce: str, cookie: str
    ) -> Session | None:
        now = self.clock()
        if not (0 <= now - issued_at < LIFETIME_S) or not _REGION.fullmatch(region):
            return None
        body, _, mac = cookie.partition(".")
        digest = self._secret_digest(key_id)
        if digest is None or not self._genuine(body, mac, digest):
            return None
        csrf = self._csrf(nonce)
        if not key_id:
            scope = Scope(self._account_id(), region)
            return Session(
                scope, None, self.is_open, nonce, issued_at, csrf, self.access
            )
        found = self.access.keys.find(key_id) if self.access else None
        if found is None or self._expired(found.key, now):
            return None
        scope = Scope(found.key.account_id, region)
        return Session(scope, found.key, True, nonce, issued_at, csrf, self.access)

    def seal(self, session: Session, text: str) -> str:
        """`text` signed for this session only (a message for its next page)."""
        body = _b64(text.encode())
        return f"{body}.{_b64(self._mac(body, session.nonce.encode()))}"

    def unseal(self, session: Session, sealed: str) -> str | None:
        """The text `seal` signed for this session, or None."""
        body, _, mac = sealed.partition(".")
        if not self._genuine(body, mac, session.nonce.encode()):
            return None
        try:
            return _unb64(body).decode()
        except (ValueError, binascii.Error):
            return None

    def _genuine(self, body: str, mac: str, bound_to: bytes) -> bool:
        try:
            given = _unb64(mac)
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(given, self._mac(body, bound_to))

    def _fields(self, cookie: str) -> tuple[str, str, float, str] | None:
        body = cookie.partition(".")[0]
        try:
            key_id, region, issued_at, nonce = json.loads(_unb64(body))
        except (ValueError, TypeError, binascii.Error):
            return None
        if not all(isinstance(v, str) for v in (key_id, region, nonce)):
            return None
        if not isinstance(issued_at, int | float):
            return None
        return key_id, region, float(issued_at), nonce

    def _secret_digest(self, key_id: str) -> bytes | None:
        """What binds a session to its key's secret (b"" without a key; None if the
        key is gone)."""
        if not key_id:
            return b""
        found = self.access.keys.find(key_id) if self.access else None
        if found is None:
            return None
        return hashlib.sha256(found.secret.encode()).digest()

    def _mac(self, body: str, secret_digest: bytes | None) -> bytes:
        message = body.encode() + b"\0" + (secret_digest or b"")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _csrf(self, nonce: str) -> str:
        mac = hmac.new(self._key, b"csrf\0" + nonce.encode(), hashlib.sha256)
        return mac.hexdigest()[:40]

    def _account_id(self) -> str:
        return self.access.account_id if self.access else self.service.account_id

    @staticmethod
    def _expired(key: AccessKey, now: float) -> bool:
        return key.expires_at is not None and now >= key.expires_at


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
