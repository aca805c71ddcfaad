"""The master key that seals access-key secrets, kept outside the data directory.

SigV4 verification needs each secret itself, so secrets cannot be hashed; instead
they are encrypted with AES-256-GCM under a key-encryption key (the master key) that
lives in its own file: by default `master.key` in the platform's per-user config
directory (e.g. ~/.config/rekollect), or wherever `REKOLLECT_MASTER_KEY_FILE` points.
A copy of the data directory or a dump of the database therefore reveals no secret.

The file holds 32 random bytes as 64 hex digits, is created with mode 0600 (its
directory 0700) the first time a key is created, and is refused when other users can
read it. Each sealed secret is bound to its row (key id, account, user, policy, ...)
as associated data, so a row edited in the database no longer opens.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path

import platformdirs

from rekollect.errors import KeyStoreError

logger = logging.getLogger(__name__)

MASTER_KEY_VARIABLE = "REKOLLECT_MASTER_KEY_FILE"
_KEY_BYTES = 32
_NONCE_BYTES = 12


def default_master_key_file() -> Path:
    """`$REKOLLECT_MASTER_KEY_FILE`, else `master.key` in the per-user config dir."""
    configured = os.environ.get(MASTER_KEY_VARIABLE)
    if configured:
        return Path(configured)
    return (
        Path(platformdirs.user_config_dir("rekollect", appauthor=False)) / "master.key"
    )


class MasterKey:
    """An AES-256-GCM key that seals and opens secrets."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != _KEY_BYTES:
            raise KeyStoreError(f"A master key has {_KEY_BYTES} bytes, not {len(key)}.")
        self._aead = AESGCM(key)
        # Names the key in the store without revealing it.
        self.key_id = hashlib.sha256(b"rekollect master key\0" + key).hexdigest()[:32]

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """`plaintext` encrypted and bound to `context`: nonce, ciphertext, tag."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        """The plaintext of `seal(plaintext, context)`; KeyStoreError if it was not."""
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context
            )
        except (InvalidTag, ValueError):
            raise KeyStoreError(
                "A sealed secret does not open with this master key."
            ) from None


def load_master_key(path: Path) -> MasterKey:
    """The master key in `path`; KeyStoreError if it is missing, unsafe or malformed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyStoreError(
            f"The master key file {path} does not exist: access keys were created "
            f"with another one (set {MASTER_KEY_VARIABLE} to its path)."
        ) from None
    with os.fdopen(fd) as file:
        _check_private(path, os.fstat(file.fileno()))
        text = file.read().strip()
    try:
        return MasterKey(bytes.fromhex(text))
    except ValueError:
        raise KeyStoreError(
            f"The master key file {path} does not hold {2 * _KEY_BYTES} hex digits."
        ) from None


def load_or_create_master_key(path: Path) -> MasterKey:
    """The master key in `path`, created (mode 0600) if there is none yet."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_master_key(path)
    with os.fdopen(fd, "w") as file:
        file.write(key.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    logger.info("Created the master key file %s", path)
    return MasterKey(key)


def _check_private(path: Path, status: os.stat_result) -> None:
    if os.name == "nt":
        return
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"The master key file {path} is accessible by other users; "
            f"run: chmod 600 {path}"
        )
