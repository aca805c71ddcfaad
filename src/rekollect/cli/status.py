"""`rekollect status`: where the data is, what it holds, and whether a server answers.

Prints the data directory and the database URL (without its password), the schema
revision, every collection of every account and region with its faces and users, and
whether a server answers at `--endpoint-url` (else `AWS_ENDPOINT_URL_REKOGNITION`,
else rekollect's default address, http://127.0.0.1:9860).

Status only looks: it creates no data directory or database file, and does not
migrate the schema (a database behind this rekollect's schema is reported, with the
command that upgrades it). Exit status 1 when the store cannot be read.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, func, make_url, select

from rekollect.cli.options import (
    add_data_options,
    add_endpoint_option,
    configured_endpoint,
    region_of,
)
from rekollect.cli.serve import DEFAULT_PORT
from rekollect.errors import RekollectError

DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"
PROBE_TIMEOUT_S = 1


@dataclass(frozen=True)
class CollectionSummary:
    account_id: str
    region: str
    collection_id: str
    face_model_version: str
    faces: int
    users: int


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status", help="data directory, collections, faces, users, a running server"
    )
    add_data_options(parser)
    add_endpoint_option(parser)
    parser.set_defaults(run=status_command)


def status_command(args: argparse.Namespace) -> int:
    import os

    from rekollect.config import default_data_dir
    from rekollect.storage.database import DATABASE_FILE, sqlite_url

    console = Console()
    data_dir = Path(
        args.data_dir or os.environ.get("REKOLLECT_DATA_DIR") or default_data_dir()
    )
    url = args.database_url or os.environ.get("REKOLLECT_DATABASE_URL")
    console.print(f"Data directory: {data_dir}{_exists(data_dir)}")
    if url is None:
        url = sqlite_url(data_dir.resolve())
    console.print(f"Database: {make_url(url).render_as_string(hide_password=True)}")

    status = 0
    if _missing_sqlite_file(url):
        console.print(
            f"No database yet: the first command that stores something creates "
            f"{DATABASE_FILE}."
        )
    else:
        try:
            _print_store(console, url)
        except RekollectError as error:
            console.print(f"The database cannot be read: {error}")
            status = 1

    endpoint = configured_endpoint(args) or DEFAULT_ENDPOINT
    console.print(f"Server at {endpoint}: {probe(endpoint, region_of(args))}")
    return status


def _exists(path: Path) -> str:
    return "" if path.is_dir() else " (not created yet)"


def _missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return False
    return parsed.database not in (None, "", ":memory:") and not (
        Path(parsed.database or "").exists()
    )


def _print_store(console: Console, url: str) -> None:
    from rekollect.cli.serve import access_summary
    from rekollect.security.keystore import count_keys
    from rekollect.storage.database import open_database
    from rekollect.storage.migrate import current_revision, head_revision

    database = open_database(url, migrate=False)
    try:
        with database.read() as conn:
            found, head = current_revision(conn), head_revision()
            if found is None:
                console.print("Schema: none yet (an empty database).")
                return
            if found != head:
                console.print(
                    f"Schema: revision {found}; this rekollect's is {head}. "
                    "`rekollect db upgrade` brings an older one up to date."
                )
                return
            console.print(f"Schema: revision {found} (current).")
            summaries = collection_summaries(conn)
        keys = count_keys(database)
    finally:
        database.close()
    console.print(summary_table(summaries))
    # What a server on loopback does with this store's keys (a server that listens
    # elsewhere refuses to start without keys unless told otherwise).
    console.print(access_summary(keys, loopback=True, host="127.0.0.1")[1])


def collection_summaries(conn: Connection) -> list[CollectionSummary]:
    """Every collection of every account and region, with its face and user counts."""
    from rekollect.storage.schema import collections, faces, users

    face_count = (
        select(func.count())
        .where(faces.c.collection_pk == collections.c.pk)
        .scalar_subquery()
    )
    user_count = (
        select(func.count())
        .where(users.c.collection_pk == collections.c.pk)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            collections.c.account_id,
            collections.c.region,
            collections.c.collection_id,
            collections.c.face_model_version,
            face_count,
            user_count,
        ).order_by(
            collections.c.account_id, collections.c.region, collections.c.collection_id
        )
    )
    return [CollectionSummary(*row) for row in rows]


def summary_table(summaries: list[CollectionSummary]) -> Table:
    faces = sum(summary.faces for summary in summaries)
    users = sum(summary.users for summary in summaries)
    table = Table(
        title=f"{len(summaries)} collection(s), {faces} face(s), {users} user(s)"
    )
    for column in ("Account", "Region", "Collection", "Model"):
        table.add_column(column)
    table.add_column("Faces", justify="right")
    table.add_column("Users", justify="right")
    for summary in summaries:
        table.add_row(
            summary.account_id,
            summary.region,
            summary.collection_id,
            summary.face_model_version,
            str(summary.faces),
            str(summary.users),
        )
    return table


def probe(endpoint: str, region: str) -> str:
    """Whether a Rekognition server answers ListCollections at `endpoint`, quickly."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from rekollect.cli.options import http_client

    config = Config(
        connect_timeout=PROBE_TIMEOUT_S,
        read_timeout=5,
        retries={"total_max_attempts": 1},
    )
    try:
        answer = http_client(endpoint, region, config).list_collections()
    except ClientError as error:
        return f"answers, with an error: {error.response['Error'].get('Code')}"
    except (BotoCoreError, ValueError) as error:
        return f"no answer ({error})"
    count = len(answer["CollectionIds"])
    more = "+" if answer.get("NextToken") else ""
    return f"answers ({count}{more} collection(s) in {region})"
