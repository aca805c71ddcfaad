"""The `rekollect` command: management commands, else an aws CLI Rekognition operation.

`rekollect serve|status|import|export|restore|configure|db ...` are rekollect's own
commands (argparse, in `rekollect.cli.manage`); everything else is handed to the aws
CLI's driver as `aws rekognition ...` (`rekollect.cli.driver`). Nothing here imports
botocore: the driver must import awscli first.
"""

from __future__ import annotations

import sys

from rekollect.cli.settings_file import apply_to_environment
from rekollect.errors import RekollectError

MANAGEMENT_COMMANDS = (
    "serve",
    "status",
    "import",
    "export",
    "restore",
    "configure",
    "keys",
    "db",
)

OVERVIEW = """\
usage: rekollect <operation> [parameters]      (as `aws rekognition <operation>`)
       rekollect <command> [options]

Operations run in this process on the local data directory, or over HTTP with
--endpoint-url (or a configured endpoint); `rekollect help` lists them.

Commands:
  serve       run the Rekognition-compatible HTTP server
  status      data directory, collections, faces, users, and a running server
  import      index a folder of per-user photo folders into a collection
  export      write a collection (metadata and embeddings) to a file
  restore     read an exported collection into a new or empty collection
  configure   write rekollect settings and endpoint profiles
  keys        create, list and delete access keys (signed requests)
  db          database maintenance (upgrade)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        apply_to_environment()
    except RekollectError as error:
        print(f"rekollect: {error}", file=sys.stderr)
        return 2
    if not args or args[0] in ("-h", "--help"):
        print(OVERVIEW, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] in MANAGEMENT_COMMANDS:
        from rekollect.cli.manage import run_command

        return run_command(args)

    from rekollect.cli.driver import run

    return run(args)
