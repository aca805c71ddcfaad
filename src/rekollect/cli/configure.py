"""`rekollect configure`: rekollect's own settings, and profiles for remote servers.

`configure list|get|set|unset` read and write the `[rekollect]` section of
rekollect's settings file (`rekollect.cli.settings_file`: `$REKOLLECT_CONFIG_FILE`,
else e.g. ~/.config/rekollect/config.ini). Values are checked before they are
written, so a typo cannot break every later command.

`configure profile NAME --endpoint-url URL` writes an AWS profile, the way the aws
CLI keeps them: `endpoint_url` and `region` under `[profile NAME]` (`[default]` for
the default profile) in `$AWS_CONFIG_FILE` or ~/.aws/config, the keys under `[NAME]`
in `$AWS_SHARED_CREDENTIALS_FILE` or ~/.aws/credentials. Then
`rekollect --profile NAME <operation>` (and boto3 or the aws CLI with that profile)
talk to that server. Other sections and settings are kept; comments in those two
files are not (configparser drops them).
"""

from __future__ import annotations

import argparse
import configparser
import getpass
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from rekollect.cli.settings_file import (
    KEYS,
    config_path,
    read_settings,
    variable,
    write_settings,
)
from rekollect.errors import RekollectError

PROFILE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "configure", help="write rekollect settings and endpoint profiles"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    parser.set_defaults(run=list_command)

    actions.add_parser("list", help="every setting and its value").set_defaults(
        run=list_command
    )
    get = actions.add_parser("get", help="print one setting (exit 1 when unset)")
    get.add_argument("key", choices=KEYS)
    get.set_defaults(run=get_command)
    set_ = actions.add_parser("set", help="write one setting")
    set_.add_argument("key", choices=KEYS)
    set_.add_argument("value")
    set_.set_defaults(run=set_command)
    unset = actions.add_parser("unset", help="remove one setting")
    unset.add_argument("key", choices=KEYS)
    unset.set_defaults(run=unset_command)

    profile = actions.add_parser(
        "profile",
        help="write (or, with no options, show) an AWS profile for a remote server",
    )
    profile.add_argument("name", metavar="NAME")
    profile.add_argument("--endpoint-url", help="the server, e.g. http://host:9860")
    profile.add_argument("--region", help="the region the profile's requests use")
    profile.add_argument("--access-key-id", help="written to the credentials file")
    profile.add_argument(
        "--secret-access-key",
        help="written to the credentials file (asked for when only the key id is given)",
    )
    profile.set_defaults(run=profile_command)


def list_command(args: argparse.Namespace) -> int:
    path = config_path()
    values = read_settings(path)
    print(f"# {path}{'' if path.exists() else ' (no file yet)'}")
    for key in KEYS:
        value = values.get(key)
        line = f"{key} = {value}" if value is not None else f"# {key} (not set)"
        overridden = os.environ.get(variable(key))
        if overridden is not None and overridden != value:
            line += f"  # {variable(key)}={overridden} wins"
        print(line)
    return 0


def get_command(args: argparse.Namespace) -> int:
    value = read_settings(config_path()).get(args.key)
    if value is None:
        return 1
    print(value)
    return 0


def set_command(args: argparse.Namespace) -> int:
    value = CHECKS[args.key](args.value)
    path = config_path()
    write_settings(path, {args.key: value})
    print(f"{args.key} = {value}  ({path})")
    return 0


def unset_command(args: argparse.Namespace) -> int:
    path = config_path()
    if args.key in read_settings(path):
        write_settings(path, {args.key: None})
    return 0


def _data_dir(value: str) -> str:
    return str(Path(value).expanduser().absolute())


def _database_url(value: str) -> str:
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value)
    except ArgumentError:
        raise RekollectError(f"{value!r} is not a database URL.") from None
    return value


def _region(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]+", value):
        raise RekollectError(f"{value!r} is not a region name like us-east-1.")
    return value


def _account_id(value: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", value):
        raise RekollectError(f"The account id must be 12 digits, not {value!r}.")
    return value


def _engine(value: str) -> str:
    from rekollect.engine.registry import EngineSpec

    return str(EngineSpec.parse(value))


def _engine_workers(value: str) -> str:
    if not value.isdigit():
        raise RekollectError(f"engine_workers must be 0 or more, not {value!r}.")
    return str(int(value))


def _image_timeout(value: str) -> str:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise RekollectError(f"image_timeout must be seconds above 0, not {value!r}.")
    return value


CHECKS: dict[str, Callable[[str], str]] = {
    "data_dir": _data_dir,
    "database_url": _database_url,
    "region": _region,
    "account_id": _account_id,
    "engine": _engine,
    "engine_workers": _engine_workers,
    "image_timeout": _image_timeout,
}


def profile_command(args: argparse.Namespace) -> int:
    name = args.name
    if not PROFILE_NAME.fullmatch(name):
        raise RekollectError(f"{name!r} is not a profile name (letters, digits, _.-).")
    config_file, credentials_file = aws_config_paths()
    settings = {"endpoint_url": args.endpoint_url, "region": args.region}
    keys = _keys(args)
    if not any(settings.values()) and not keys:
        return show_profile(name, config_file, credentials_file)

    if args.endpoint_url:
        _check_endpoint(args.endpoint_url)
    if args.region:
        _region(args.region)
    section = name if name == "default" else f"profile {name}"
    update_ini(config_file, section, settings)
    if keys:
        update_ini(credentials_file, name, keys, private=True)
    print(f"Profile {name} written to {config_file}", end="")
    print(f" and {credentials_file}." if keys else ".")
    print(f"Use it: rekollect --profile {name} list-collections")
    return 0


def aws_config_paths() -> tuple[Path, Path]:
    """The aws CLI's config and credentials files, as it finds them."""
    config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(config).expanduser(), Path(credentials).expanduser()


def _keys(args: argparse.Namespace) -> dict[str, str | None]:
    key_id, secret = args.access_key_id, args.secret_access_key
    if secret and not key_id:
        raise RekollectError("--secret-access-key needs --access-key-id.")
    if key_id and not secret:
        if not sys.stdin.isatty():
            raise RekollectError("--access-key-id needs --secret-access-key.")
        secret = getpass.getpass("Secret access key: ")
    if not key_id:
        return {}
    return {"aws_access_key_id": key_id, "aws_secret_access_key": secret}


def _check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RekollectError(f"{url!r} is not an http:// or https:// URL.")


def update_ini(
    path: Path, section: str, values: dict[str, str | None], *, private: bool = False
) -> None:
    """Set the values given (None: leave as is) in one section, keeping the rest."""
    parser = _ini()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise RekollectError(f"Cannot read {path}: {error}") from None
    if not parser.has_section(section):
        parser.add_section(section)
    for key, value in values.items():
        if value is not None:
            parser.set(section, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Credentials are for their owner's eyes only, as the aws CLI leaves them.
    mode = 0o600 if private or not path.exists() else path.stat().st_mode & 0o777
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(
            os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w"
        ) as out:
            parser.write(out)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def show_profile(name: str, config_file: Path, credentials_file: Path) -> int:
    config, credentials = _ini(), _ini()
    config.read(config_file, encoding="utf-8")
    credentials.read(credentials_file, encoding="utf-8")
    section = name if name == "default" else f"profile {name}"
    if not config.has_section(section) and not credentials.has_section(name):
        raise RekollectError(f"There is no profile {name} in {config_file}.")
    for key in ("endpoint_url", "region"):
        print(f"{key} = {config.get(section, key, fallback='(not set)')}")
    has_keys = credentials.has_option(name, "aws_access_key_id")
    print(f"keys: {'in ' + str(credentials_file) if has_keys else '(none)'}")
    return 0


def _ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    return parser
