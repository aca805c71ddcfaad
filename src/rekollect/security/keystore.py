"""Access keys in the store: create, list, delete, and the ring a server verifies with.

An access key belongs to an account id (the account its requests run in) and a user
name (the IAM-style user ARN of AccessDenied messages), and may carry a policy. A
temporary key also has a session token, which requests must send as
`X-Amz-Security-Token`; only its SHA-256 is stored. Secrets are sealed with the
master key (`sealing`), bound to every other column of their row.

`KeyRing` holds the keys a server process verifies signatures with. It reads the
table again at most every `refresh_s` seconds (and at once for an unknown key id, at
most once a second), so keys created or deleted with `rekollect keys` take effect in
a running server within seconds, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Row, delete, func, insert, select

from rekollect.errors import KeyStoreError, PolicyError
from rekollect.security.policy import Policy, parse_policy
from rekollect.security.sealing import MasterKey, load_master_key
from rekollect.storage import Database
from rekollect.storage.schema import access_keys

logger = logging.getLogger(__name__)

PERMANENT_PREFIX = "AKRK"
TEMPORARY_PREFIX = "ASRK"
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
REFRESH_S = 2.0
_UNKNOWN_KEY_REFRESH_S = 1.0


@dataclass(frozen=True)
class AccessKey:
    """An access key without its secret."""

    access_key_id: str
    account_id: str
    user_name: str
    created_at: float
    policy: Policy | None = None
    temporary: bool = False
    expires_at: float | None = None

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{self.user_name}"


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only time its secret and session token are shown."""

    key: AccessKey
    secret: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class UnsealedKey:
    key: AccessKey
    secret: str = field(repr=False)
    session_token_sha256: str | None = field(default=None, repr=False)


def create_key(
    database: Database,
    master: MasterKey,
    *,
    account_id: str,
    user_name: str,
    policy: Policy | None = None,
    temporary: bool = False,
    lifetime_s: float | None = None,
    now: float | None = None,
) -> NewKey:
    """Create and store a new key; a temporary one gets a session token."""
    created_at = time.time() if now is None else now
    prefix = TEMPORARY_PREFIX if temporary else PERMANENT_PREFIX
    key = AccessKey(
        access_key_id=prefix
        + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        account_id=account_id,
        user_name=user_name,
        created_at=created_at,
        policy=policy,
        temporary=temporary,
        expires_at=None if lifetime_s is None else created_at + lifetime_s,
    )
    secret = secrets.token_urlsafe(30)
    token = secrets.token_urlsafe(64) if temporary else None
    token_sha256 = _sha256(token) if token is not None else None
    row = _columns(key, token_sha256)
    row["secret_sealed"] = master.seal(secret.encode(), _context(row))
    row["master_key_id"] = master.key_id
    with database.write() as conn:
        conn.execute(insert(access_keys), row)
    return NewKey(key, secret, token)


def list_keys(database: Database, known_actions: Iterable[str]) -> list[AccessKey]:
    """Every key, oldest first, without secrets."""
    names = list(known_actions)
    with database.read() as conn:
        rows = conn.execute(select(access_keys).order_by(access_keys.c.created_at))
        return [_key(row, names) for row in rows]


def delete_key(database: Database, access_key_id: str) -> bool:
    """Delete the key; False if there was none of that id."""
    with database.write() as conn:
        result = conn.execute(
            delete(access_keys).where(access_keys.c.access_key_id == access_key_id)
        )
    return bool(result.rowcount)


def count_keys(database: Database) -> int:
    with database.read() as conn:
        return int(
            conn.execute(select(func.count()).select_from(access_keys)).scalar_one()
        )


class KeyRing:
    """The store's keys, unsealed, as a server process verifies signatures with them."""

    def __init__(
        self,
        database: Database,
        master_key_file: Path,
        known_actions: Iterable[str],
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._master_key_file = master_key_file
        self._master: MasterKey | None = None
        self._actions = list(known_actions)
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, UnsealedKey] = {}
        self._sealed: dict[str, bytes] = {}
        self._loaded_at = -float("inf")
        self._refused: set[str] = set()

    def count(self) -> int:
        """How many keys exist (as of at most `refresh_s` ago), usable or not."""
        self._refresh_if_older_than(self._refresh_s)
        return len(self._sealed)

    def find(self, access_key_id: str) -> UnsealedKey | None:
        self._refresh_if_older_than(self._refresh_s)
        found = self._keys.get(access_key_id)
        if found is None and access_key_id not in self._sealed:
            self._refresh_if_older_than(_UNKNOWN_KEY_REFRESH_S)
            found = self._keys.get(access_key_id)
        return found

    def load(self) -> int:
        """Read every key now; KeyStoreError if any does not open with the master key."""
        self._refresh_if_older_than(0.0)
        if self._refused:
            raise KeyStoreError(
                f"{len(self._refused)} access key(s) do not open with the master key "
                f"{self._master_key_file}: it is not the one they were created with."
            )
        return len(self._sealed)

    def _refresh_if_older_than(self, age_s: float) -> None:
        if self._clock() - self._loaded_at < age_s:
            return
        with self._lock:
            if self._clock() - self._loaded_at < age_s:
                return
            with self._database.read() as conn:
                rows = conn.execute(select(access_keys)).all()
            self._reload(rows)
            self._loaded_at = self._clock()

    def _reload(self, rows: Sequence[Row[Any]]) -> None:
        keys: dict[str, UnsealedKey] = {}
        sealed: dict[str, bytes] = {}
        refused, self._refused = self._refused, set()
        for row in rows:
            sealed[row.access_key_id] = row.secret_sealed
            previous = self._keys.get(row.access_key_id)
            if previous is not None and self._sealed.get(row.access_key_id) == (
                row.secret_sealed
            ):
                keys[row.access_key_id] = previous
                continue
            unsealed = self._unseal(row, warn=row.access_key_id not in refused)
            if unsealed is not None:
                keys[row.access_key_id] = unsealed
        self._keys, self._sealed = keys, sealed

    def _unseal(self, row: Row[Any], *, warn: bool) -> UnsealedKey | None:
        try:
            if self._master is None:
                self._master = load_master_key(self._master_key_file)
            columns = row._asdict()
            secret = self._master.unseal(row.secret_sealed, _context(columns))
            key = _key(row, self._actions)
        except KeyStoreError as error:
            if warn:
                logger.warning(
                    "Access key %s is unusable: %s", row.access_key_id, error
                )
            self._refused.add(row.access_key_id)
            return None
        return UnsealedKey(key, secret.decode(), row.session_token_sha256)


def session_token_sha256(token: str) -> str:
    return _sha256(token)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _columns(key: AccessKey, token_sha256: str | None) -> dict[str, object]:
    return {
        "access_key_id": key.access_key_id,
        "account_id": key.account_id,
        "user_name": key.user_name,
        "session_token_sha256": token_sha256,
        "expires_at": key.expires_at,
        "policy": key.policy.document if key.policy is not None else None,
        "created_at": key.created_at,
    }


def _context(columns: dict[str, object]) -> bytes:
    """What a sealed secret is bound to: every column of its row but itself."""
    names = (
        "access_key_id",
        "account_id",
        "user_name",
        "session_token_sha256",
        "expires_at",
        "policy",
        "created_at",
    )
    return "\0".join(f"{name}={columns[name]!r}" for name in names).encode()


def _key(row: Row[Any], known_actions: list[str]) -> AccessKey:
    policy = row.policy
    try:
        parsed = parse_policy(policy, known_actions) if policy is not None else None
    except PolicyError as error:
        raise KeyStoreError(f"Access key {row.access_key_id}: {error}") from None
    return AccessKey(
        access_key_id=row.access_key_id,
        account_id=row.account_id,
        user_name=row.user_name,
        created_at=row.created_at,
        policy=parsed,
        temporary=row.session_token_sha256 is not None,
        expires_at=row.expires_at,
    )
