"""Where rekollect keeps its data, and the settings every front end shares.

Settings come from arguments first, then from `REKOLLECT_*` environment variables
(`REKOLLECT_DATA_DIR`, `REKOLLECT_DATABASE_URL`, `REKOLLECT_ACCOUNT_ID`,
`REKOLLECT_REGION`), then from these defaults.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from rekollect.errors import RekollectError
from rekollect.service.context import DEFAULT_ACCOUNT_ID, DEFAULT_REGION
from rekollect.storage.database import sqlite_url

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

    def environment(self) -> dict[str, str]:
        """These settings as `REKOLLECT_*` variables, for processes started later."""
        return {
            f"{ENV_PREFIX}DATA_DIR": str(self.data_dir),
            f"{ENV_PREFIX}DATABASE_URL": self.database_url,
            f"{ENV_PREFIX}ACCOUNT_ID": self.account_id,
            f"{ENV_PREFIX}REGION": self.region,
        }


def load_settings(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    database_url: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
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
    return Settings(
        data_dir=directory,
        database_url=url,
        account_id=account,
        region=region or env.get(f"{ENV_PREFIX}REGION") or DEFAULT_REGION,
    )
