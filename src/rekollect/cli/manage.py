"""rekollect's own commands beside the Rekognition operations.

`serve` (in `rekollect.cli.serve`), `keys` (`rekollect.cli.keys`), `status`,
`configure`, `db upgrade`, `import` (`rekollect.cli.importer`), `export` and `restore`
(`rekollect.cli.transfer`). One
translation point: a `RekollectError` prints as one `rekollect: ...` line, exit 1.
"""

from __future__ import annotations

import argparse
import sys

from rekollect import __version__
from rekollect.cli import configure, importer, keys, serve, status, transfer
from rekollect.cli.options import add_store_options
from rekollect.errors import RekollectError


def run_command(argv: list[str]) -> int:
    """Run one management command; the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.parser = parser
    try:
        return int(args.run(args))
    except RekollectError as error:
        print(f"rekollect: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rekollect",
        description="A self-hosted Amazon Rekognition face collection service.",
    )
    parser.add_argument(
        "--version", action="version", version=f"rekollect {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve.add_parser(commands)
    keys.add_parser(commands)
    status.add_parser(commands)
    importer.add_parser(commands)
    transfer.add_parsers(commands)
    configure.add_parser(commands)
    _add_db_parser(commands)
    return parser


def _add_db_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    db = commands.add_parser("db", help="database maintenance")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser(
        "upgrade", help="apply the schema migrations this rekollect knows"
    )
    add_store_options(upgrade)
    upgrade.set_defaults(run=_db_upgrade)


def _db_upgrade(args: argparse.Namespace) -> int:
    from rekollect.config import load_settings
    from rekollect.storage.database import upgrade_database

    settings = load_settings(args.data_dir, database_url=args.database_url)
    found, left = upgrade_database(settings.database_url)
    if found == left:
        print(f"The database is up to date (revision {left}).")
    else:
        print(f"Upgraded the database from {found or 'empty'} to revision {left}.")
    return 0
