"""Where rekollect keeps its data, and the settings every front end shares.

Settings come from arguments first, then from `REKOLLECT_*` environment variables
(`REKOLLECT_DATA_DIR`, `REKOLLECT_DATABASE_URL`, `REKOLLECT_ACCOUNT_ID`,
`REKOLLECT_REGION`, `REKOLLECT_ENGINE`, `REKOLLECT_ENGINE_WORKERS`,
`REKOLLECT_IMAGE_TIMEOUT`, `REKOLLECT_MASTER_KEY_FILE`, `REKOLLECT_THUMBNAILS`), then
from these defaults.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from rekollect.engine.registry import EngineSpec
from rekollect.errors import RekollectError
from rekollect.security.sealing import MASTER_KEY_VARIABLE, default_master_key_file
from rekollect.service.context import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_IMAGE_TIMEOUT_S,
    DEFAULT_REGION,
    Service,
)
from rekollect.storage.database import Database, open_database, sqlite_url

if TYPE_CHECKING:
    from rekollect.security.access import AccessControl
    from rekollect.security.limits import Limits

ENV_PREFIX = "REKOLLECT_"


def default_data_dir() -> Path:
    """The platform's per-user data directory (e.g. ~/.local/share/rekollect)."""
    return Path(platformdirs.user_data_dir("rekollect", appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    account_id: str
    region: str
    engine: EngineSpec = EngineSpec()
    # None: the front end decides (the server: one per core; in-process: inline).
    engine_workers: int | None = None
    image_timeout_s: float = DEFAULT_IMAGE_TIMEOUT_S
    # Whether IndexFaces keeps a small JPEG crop of each face (the console shows them).
    thumbnails: bool = True
    # The key that seals access-key secrets; never inside the data directory.
    master_key_file: Path = field(default_factory=default_master_key_file)

    def environment(self) -> dict[str, str]:
        """These settings as `REKOLLECT_*` variables, for processes started later."""
        variables = {
            f"{ENV_PREFIX}DATA_DIR": str(self.data_dir),
            f"{ENV_PREFIX}DATABASE_URL": self.database_url,
            f"{ENV_PREFIX}ACCOUNT_ID": self.account_id,
            f"{ENV_PREFIX}REGION": self.region,
            f"{ENV_PREFIX}ENGINE": str(self.engine),
            f"{ENV_PREFIX}IMAGE_TIMEOUT": str(self.image_timeout_s),
            f"{ENV_PREFIX}THUMBNAILS": "true" if self.thumbnails else "false",
            MASTER_KEY_VARIABLE: str(self.master_key_file),
        }
        if self.engine_workers is not None:
            variables[f"{ENV_PREFIX}ENGINE_WORKERS"] = str(self.engine_workers)
        return variables

    def open_service(self, *, engine_workers: int = 0, migrate: bool = True) -> Service:
        """The service core on these settings; `engine_workers` unless set here."""
        workers = (
            self.engine_workers if self.engine_workers is not None else engine_workers
        )
        return Service(
            open_database(self.database_url, migrate=migrate),
            account_id=self.account_id,
            default_region=self.region,
            engine=self.engine,
            engine_workers=workers,
            image_timeout_s=self.image_timeout_s,
            thumbnails=self.thumbnails,
        )

    def access_control(
        self, database: Database, open_when_keyless: bool, limits: Limits
    ) -> AccessControl:
        """Access control on the store's keys; KeyStoreError if they do not open."""
        from rekollect.protocol import model
        from rekollect.security.access import AccessControl
        from rekollect.security.keystore import KeyRing
        from rekollect.security.limits import RateLimiter

        keys = KeyRing(database, self.master_key_file, model.operation_names())
        keys.load()
        rate = None
        if limits.rate_per_key > 0:
            rate = RateLimiter(limits.rate_per_key, limits.rate_burst)
        return AccessControl(
            keys,
            account_id=self.account_id,
            default_region=self.region,
            open_when_keyless=open_when_keyless,
            rate=rate,
        )


def load_settings(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    database_url: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
    engine: str | None = None,
    engine_workers: int | None = None,
    image_timeout_s: float | None = None,
    master_key_file: str | os.PathLike[str] | None = None,
    thumbnails: bool | None = None,
) -> Settings:
    """Settings from the arguments, the environment, then the defaults."""
    env = os.environ
    directory = Path(data_dir or env.get(f"{ENV_PREFIX}DATA_DIR") or default_data_dir())
    account = account_id or env.get(f"{ENV_PREFIX}ACCOUNT_ID") or DEFAULT_ACCOUNT_ID
    if not re.fullmatch(r"[0-9]{12}", account):
        raise RekollectError(f"The account id must be 12 digits, not {account!r}.")
    url = database_url or env.get(f"{ENV_PREFIX}DATABASE_URL")
    if url is None:
        directory.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(directory.resolve())
    workers_text = env.get(f"{ENV_PREFIX}ENGINE_WORKERS")
    if engine_workers is None and workers_text:
        engine_workers = _number(int, f"{ENV_PREFIX}ENGINE_WORKERS", workers_text)
    if engine_workers is not None and engine_workers < 0:
        raise RekollectError("The number of engine workers cannot be negative.")
    timeout_text = env.get(f"{ENV_PREFIX}IMAGE_TIMEOUT")
    if image_timeout_s is None and timeout_text:
        image_timeout_s = _number(float, f"{ENV_PREFIX}IMAGE_TIMEOUT", timeout_text)
    return Settings(
        data_dir=directory,
        database_url=url,
        account_id=account,
        region=region or env.get(f"{ENV_PREFIX}REGION") or DEFAULT_REGION,
        engine=EngineSpec.parse(engine or env.get(f"{ENV_PREFIX}ENGINE") or "dlib"),
        engine_workers=engine_workers,
        image_timeout_s=image_timeout_s or DEFAULT_IMAGE_TIMEOUT_S,
        master_key_file=Path(master_key_file or default_master_key_file()).expanduser(),
        thumbnails=_flag(f"{ENV_PREFIX}THUMBNAILS", thumbnails),
    )


def _number(kind: type[int] | type[float], name: str, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise RekollectError(f"{name} must be a number, not {text!r}.") from None


def _flag(name: str, given: bool | None, default: bool = True) -> bool:
    """`given`, else the variable `name` read as a yes or no, else `default`."""
    text = os.environ.get(name, "").strip().lower()
    if given is not None:
        return given
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise RekollectError(f"{name} must be true or false, not {text!r}.")
