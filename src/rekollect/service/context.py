"""The service core every front end shares: the store, the settings, the clock, and
the parts image operations need (the engine that analyses images, the vector indexes,
where S3 objects come from)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from rekollect.engine.registry import EngineSpec
from rekollect.service.pagination import TokenSigner
from rekollect.storage import Database
from rekollect.storage.kv import get_or_create_setting

if TYPE_CHECKING:
    from rekollect.engine.pool import Analyzer
    from rekollect.index import CollectionIndexes
    from rekollect.service.images import S3Settings

DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
# Idempotency tokens are honoured for at least this long (AWS documents no window).
IDEMPOTENCY_TTL_S = 24 * 3600
DEFAULT_IMAGE_TIMEOUT_S = 60.0


@dataclass
class Service:
    """Everything an operation needs besides its parameters."""

    database: Database
    account_id: str = DEFAULT_ACCOUNT_ID
    default_region: str = DEFAULT_REGION
    idempotency_ttl_s: float = IDEMPOTENCY_TTL_S
    clock: Callable[[], float] = time.time
    # The face engine, and how many worker processes run it (0: inline, in the
    # calling thread).
    engine: EngineSpec = field(default_factory=EngineSpec)
    engine_workers: int = 0
    image_timeout_s: float = DEFAULT_IMAGE_TIMEOUT_S
    # Where S3Object images are read from (None: from REKOLLECT_S3_* variables).
    s3: S3Settings | None = None
    # Whether IndexFaces keeps a small JPEG crop of each face (`service.thumbnails`).
    thumbnails: bool = True
    signer: TokenSigner = field(init=False)

    def __post_init__(self) -> None:
        with self.database.write() as conn:
            key = get_or_create_setting(conn, "pagination_key", secrets.token_hex(32))
        self.signer = TokenSigner(bytes.fromhex(key))

    @cached_property
    def analyzer(self) -> Analyzer:
        """Runs image jobs; engine worker processes start on the first image."""
        from rekollect.engine.pool import EnginePool, InlineAnalyzer

        if self.engine_workers == 0:
            return InlineAnalyzer(self.engine)
        return EnginePool(
            self.engine, self.engine_workers, timeout_s=self.image_timeout_s
        )

    @property
    def face_model_version(self) -> str:
        """The FaceModelVersion of collections created here: the engine's."""
        return self.analyzer.model_version

    @cached_property
    def indexes(self) -> CollectionIndexes:
        from rekollect.index import CollectionIndexes

        return CollectionIndexes(self.database)

    @cached_property
    def s3_settings(self) -> S3Settings:
        from rekollect.service.images import S3Settings

        return self.s3 or S3Settings.from_environment()

    def close(self) -> None:
        """Stop engine workers and release the store."""
        if "analyzer" in self.__dict__:
            self.analyzer.close()
        self.database.close()
