"""rekollect's own settings file, a layer between `REKOLLECT_*` variables and defaults.

The file is INI with one `[rekollect]` section whose keys are the `REKOLLECT_*`
variable names without the prefix, in lower case (`data_dir`, `database_url`,
`region`, `account_id`, `engine`, `engine_workers`, `image_timeout`). It lives at
`$REKOLLECT_CONFIG_FILE`, else in the platform's per-user configuration directory
(e.g. `~/.config/rekollect/config.ini`). The command line copies its values into
the environment of variables not already set, so arguments win over variables, which
win over the file, which wins over the defaults, for every front end it starts.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

import platformdirs

from rekollect.errors import RekollectError

# rekollect.config.ENV_PREFIX; not imported, as that loads botocore before awscli.
ENV_PREFIX = "REKOLLECT_"
CONFIG_FILE_VARIABLE = f"{ENV_PREFIX}CONFIG_FILE"
SECTION = "rekollect"
KEYS = (
    "data_dir",
    "database_url",
    "region",
    "account_id",
    "engine",
    "engine_workers",
    "image_timeout",
)


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the settings file is, whether or not it exists."""
    explicit = environ.get(CONFIG_FILE_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir("rekollect", appauthor=False)) / (
        "config.ini"
    )


def read_settings(path: Path) -> dict[str, str]:
    """The settings in the file at `path` (none if there is no file)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise RekollectError(f"Cannot read {path}: {error}") from None
    if not parser.has_section(SECTION):
        return {}
    values = dict(parser.items(SECTION))
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise RekollectError(
            f"{path} has unknown settings: {', '.join(unknown)} "
            f"(known: {', '.join(KEYS)})."
        )
    return values


def apply_to_environment(environ: MutableMapping[str, str] = os.environ) -> Path:
    """Copy the file's settings into `environ` where no variable is set."""
    path = config_path(environ)
    for key, value in read_settings(path).items():
        environ.setdefault(variable(key), value)
    return path


def write_settings(path: Path, changes: Mapping[str, str | None]) -> None:
    """Set (or, with None, remove) settings in the file, keeping the others."""
    unknown = sorted(set(changes) - set(KEYS))
    if unknown:
        raise RekollectError(f"Unknown settings: {', '.join(unknown)}.")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    if not parser.has_section(SECTION):
        parser.add_section(SECTION)
    for key, value in changes.items():
        if value is None:
            parser.remove_option(SECTION, key)
        else:
            parser.set(SECTION, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        parser.write(file)


def variable(key: str) -> str:
    """The environment variable of setting `key`: `data_dir` → `REKOLLECT_DATA_DIR`."""
    return f"{ENV_PREFIX}{key.upper()}"
