"""The service core every front end shares: the store, the settings, the clock."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rekollect.engine import DEFAULT_FACE_MODEL_VERSION
from rekollect.service.pagination import TokenSigner
from rekollect.storage import Database
from rekollect.storage.kv import get_or_create_setting

DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
# Idempotency tokens are honoured for at least this long (AWS documents no window).
IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass
class Service:
    """Everything an operation needs besides its parameters."""

    database: Database
    account_id: str = DEFAULT_ACCOUNT_ID
    default_region: str = DEFAULT_REGION
    face_model_version: str = DEFAULT_FACE_MODEL_VERSION
    idempotency_ttl_s: float = IDEMPOTENCY_TTL_S
    clock: Callable[[], float] = time.time
    signer: TokenSigner = field(init=False)

    def __post_init__(self) -> None:
        with self.database.write() as conn:
            key = get_or_create_setting(conn, "pagination_key", secrets.token_hex(32))
        self.signer = TokenSigner(bytes.fromhex(key))
