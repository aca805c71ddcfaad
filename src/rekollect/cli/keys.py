"""`rekollect keys create | list | delete`: the access keys requests are signed with.

Once one key exists, `rekollect serve` answers only requests signed by a key (the
in-process client and `rekollect <operation>` without an endpoint read the store
directly and need none). `create` prints the secret once, as JSON; the store keeps
it sealed with the master key (see docs/security.md), which `create` makes on first
use. A key runs its requests in its account (`--account-id`), and may carry a policy
(`--policy`, an IAM-style JSON document, inline, from a file or `file://...`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rekollect.cli.options import add_store_options
from rekollect.config import Settings, load_settings
from rekollect.errors import PolicyError, RekollectError

if TYPE_CHECKING:
    from rekollect.security.keystore import AccessKey
    from rekollect.storage import Database

DEFAULT_USER = "rekollect"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="create, list and delete access keys")
    actions = keys.add_subparsers(dest="action", required=True)

    create = actions.add_parser(
        "create", help="create an access key; prints its secret"
    )
    create.add_argument(
        "--account-id",
        help="12-digit account its requests run in (default: the server's)",
    )
    create.add_argument(
        "--user",
        default=DEFAULT_USER,
        help=f"user name in ARNs (default {DEFAULT_USER})",
    )
    create.add_argument(
        "--policy",
        help="IAM-style policy: JSON, a file, or file://path (default: none, "
        "full access to the key's account)",
    )
    create.add_argument(
        "--temporary",
        action="store_true",
        help="a temporary key: requests must also send its session token",
    )
    create.add_argument(
        "--expires-in",
        type=float,
        metavar="SECONDS",
        help="lifetime of a temporary key",
    )
    _add_store_options(create)
    create.set_defaults(run=create_command)

    listing = actions.add_parser("list", help="list access keys (never their secrets)")
    _add_store_options(listing)
    listing.set_defaults(run=list_command)

    delete = actions.add_parser("delete", help="delete an access key")
    delete.add_argument("access_key_id")
    _add_store_options(delete)
    delete.set_defaults(run=delete_command)


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser)
    parser.add_argument(
        "--master-key-file",
        help="the key that seals secrets (default: master.key in the user config "
        "directory, or $REKOLLECT_MASTER_KEY_FILE)",
    )


def create_command(args: argparse.Namespace) -> int:
    from rekollect.protocol import model
    from rekollect.security.keystore import create_key
    from rekollect.security.policy import parse_policy
    from rekollect.security.sealing import load_or_create_master_key

    if args.expires_in is not None and not args.temporary:
        raise RekollectError("--expires-in is for --temporary keys.")
    if args.expires_in is not None and args.expires_in <= 0:
        raise RekollectError("--expires-in must be a positive number of seconds.")
    _check_user(args.user)
    settings = _settings(args, account_id=args.account_id)
    policy = None
    if args.policy is not None:
        policy = parse_policy(_policy_text(args.policy), model.operation_names())

    master = load_or_create_master_key(settings.master_key_file)
    database = _open(settings)
    try:
        new = create_key(
            database,
            master,
            account_id=settings.account_id,
            user_name=args.user,
            policy=policy,
            temporary=args.temporary,
            lifetime_s=args.expires_in,
        )
    finally:
        database.close()

    described: dict[str, Any] = {
        "AccessKeyId": new.key.access_key_id,
        "SecretAccessKey": new.secret,
    }
    if new.session_token is not None:
        described["SessionToken"] = new.session_token
    described |= _description(new.key)
    print(json.dumps({"AccessKey": described}, indent=4))
    print(
        "The secret is shown only now; rekollect keeps it sealed with the master key "
        f"{settings.master_key_file}.",
        file=sys.stderr,
    )
    return 0


def list_command(args: argparse.Namespace) -> int:
    from rekollect.protocol import model
    from rekollect.security.keystore import list_keys

    database = _open(_settings(args))
    try:
        keys = list_keys(database, model.operation_names())
    finally:
        database.close()
    listed = [{"AccessKeyId": key.access_key_id} | _description(key) for key in keys]
    print(json.dumps({"AccessKeys": listed}, indent=4))
    return 0


def delete_command(args: argparse.Namespace) -> int:
    from rekollect.security.keystore import delete_key

    database = _open(_settings(args))
    try:
        deleted = delete_key(database, args.access_key_id)
    finally:
        database.close()
    if not deleted:
        raise RekollectError(f"There is no access key {args.access_key_id}.")
    print(f"Deleted access key {args.access_key_id}.")
    return 0


def _settings(args: argparse.Namespace, account_id: str | None = None) -> Settings:
    return load_settings(
        args.data_dir,
        database_url=args.database_url,
        account_id=account_id,
        master_key_file=args.master_key_file,
    )


def _open(settings: Settings) -> Database:
    from rekollect.storage import open_database

    return open_database(settings.database_url)


def _description(key: AccessKey) -> dict[str, Any]:
    described: dict[str, Any] = {
        "AccountId": key.account_id,
        "UserName": key.user_name,
        "UserArn": key.user_arn,
        "Temporary": key.temporary,
        "CreateDate": _iso(key.created_at),
    }
    if key.expires_at is not None:
        described["Expiration"] = _iso(key.expires_at)
    described["Policy"] = json.loads(key.policy.document) if key.policy else None
    return described


def _policy_text(value: str) -> str:
    if value.lstrip().startswith("{"):
        return value
    path = Path(value.removeprefix("file://"))
    try:
        return path.read_text()
    except OSError as error:
        raise PolicyError(f"Cannot read the policy file {path}: {error}") from None


def _check_user(name: str) -> None:
    allowed = set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-"
    )
    if not 1 <= len(name) <= 64 or not set(name) <= allowed:
        raise RekollectError(
            "A user name has 1 to 64 letters, digits and the characters +=,.@_-."
        )


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")
