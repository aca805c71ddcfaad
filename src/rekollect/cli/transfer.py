"""`rekollect export` and `rekollect restore`: a collection to a file and back.

Both commands work on a store directly (embeddings never cross the API), so they
take `--data-dir`/`--database-url`, not an endpoint; a file written from SQLite
restores into PostgreSQL and back (the format: `rekollect.cli.collection_file`).

Export reads one consistent snapshot. Restore is one write transaction, all or
nothing: it fills a new collection (or an existing one with no faces and no users)
with the same face ids, image ids and user associations, and writes the store's
change log as IndexFaces does, so every server's vector index finds the restored
faces on its next search. On SQLite, writers of a server on the same store wait
while a restore runs.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from rekollect import __version__
from rekollect.cli.collection_file import (
    FORMAT,
    VERSION,
    field,
    open_input,
    open_output,
    parse_face,
    parse_line,
    read_header,
    write_line,
)
from rekollect.cli.options import add_data_options, region_of
from rekollect.errors import RekollectError
from rekollect.service.associations import MAX_FACES_PER_USER
from rekollect.service.faces import face_record
from rekollect.storage import Database
from rekollect.storage import repository as repo
from rekollect.storage.database import translate_error
from rekollect.storage.records import (
    Collection,
    Face,
    NewFace,
    Scope,
    embedding_bytes,
)

if TYPE_CHECKING:
    from rekollect.config import Settings

PAGE = 1000
COLLECTION_ID = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export", help="write a collection (metadata and embeddings) to a file"
    )
    export.add_argument("--collection-id", required=True)
    export.add_argument(
        "-o",
        "--output",
        default="-",
        help="the file to write (default: standard output); gzip if it ends in .gz",
    )
    add_data_options(export)
    export.set_defaults(run=export_command)

    restore = commands.add_parser(
        "restore", help="read an exported collection into a new or empty collection"
    )
    restore.add_argument("file", metavar="FILE", help="an export ('-': stdin)")
    restore.add_argument(
        "--collection-id", help="the collection to fill (default: the exported one's)"
    )
    add_data_options(restore)
    restore.set_defaults(run=restore_command)


def export_command(args: argparse.Namespace) -> int:
    with (
        _store(args) as (database, scope, _),
        open_output(args.output) as out,
    ):
        header = export_collection(database, scope, args.collection_id, out)
    where = "standard output" if args.output == "-" else args.output
    print(
        f"Exported collection {args.collection_id} ({header['faces']} faces, "
        f"{header['users']} users) to {where}.",
        file=sys.stderr,
    )
    return 0


def restore_command(args: argparse.Namespace) -> int:
    from rekollect.engine.registry import model_version_of

    with (
        _store(args) as (database, scope, settings),
        open_input(args.file) as lines,
    ):
        header = read_header(next(lines, ""))
        exported = header["collection"]
        collection_id = args.collection_id or exported["CollectionId"]
        restore_collection(database, scope, header, lines, collection_id)
    engine_version = model_version_of(settings.engine)
    print(
        f"Restored {header['faces']} faces and {header['users']} users into "
        f"collection {collection_id} ({scope.region}).",
        file=sys.stderr,
    )
    if exported["FaceModelVersion"] != engine_version:
        print(
            f"Note: its faces are of FaceModelVersion {exported['FaceModelVersion']}; "
            f"this engine makes {engine_version}, so IndexFaces and searches by image "
            "refuse the collection.",
            file=sys.stderr,
        )
    return 0


def export_collection(
    database: Database, scope: Scope, collection_id: str, out: IO[str]
) -> dict[str, Any]:
    """Write the collection to `out`; the header line written."""
    with _snapshot(database) as conn:
        collection = repo.get_collection(conn, scope, collection_id)
        if collection is None:
            raise RekollectError(
                f"There is no collection {collection_id} in {scope.region} "
                f"(account {scope.account_id})."
            )
        header = _header(conn, scope, collection)
        write_line(out, header)
        for user_id in _user_ids(conn, collection.pk):
            write_line(out, {"user": {"UserId": user_id}})
        for face, vector in _faces(conn, collection.pk):
            embedding = base64.b64encode(vector).decode("ascii")
            record = face_record(face) | {"Embedding": embedding}
            write_line(out, {"face": record})
    return header


def _header(conn: Connection, scope: Scope, collection: Collection) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "rekollect": __version__,
        "exported_at": time.time(),
        "account_id": scope.account_id,
        "region": scope.region,
        "collection": {
            "CollectionId": collection.collection_id,
            "FaceModelVersion": collection.face_model_version,
            "CreationTimestamp": collection.created_at,
            "Tags": repo.get_tags(conn, collection.pk),
        },
        "users": repo.count_users(conn, collection.pk),
        "faces": repo.count_faces(conn, collection.pk),
    }


def _user_ids(conn: Connection, collection_pk: int) -> Iterator[str]:
    after = 0
    while page := repo.list_users(conn, collection_pk, after, PAGE):
        yield from (user.user_id for user in page)
        after = page[-1].pk


def _faces(conn: Connection, collection_pk: int) -> Iterator[tuple[Face, bytes]]:
    after = ""
    while page := repo.list_faces(conn, collection_pk, after_face_id=after, limit=PAGE):
        vectors = repo.face_embeddings(conn, [face.pk for face in page])
        yield from ((face, embedding_bytes(vectors[face.pk])) for face in page)
        after = page[-1].face_id


def restore_collection(
    database: Database,
    scope: Scope,
    header: dict[str, Any],
    lines: Iterator[str],
    collection_id: str,
) -> None:
    """Fill a new or empty collection from an export's lines, in one transaction."""
    if not COLLECTION_ID.fullmatch(collection_id):
        raise RekollectError(f"{collection_id!r} is not a valid CollectionId.")
    now = time.time()
    try:
        with database.write() as conn:
            collection = _empty_collection(conn, scope, collection_id, header)
            repo.put_tags(conn, collection.pk, header["collection"]["Tags"])
            _Loader(conn, collection.pk, now).load(lines, header)
    except IntegrityError as error:
        raise RekollectError(
            f"The export does not fit the store: {error.orig}"
        ) from None


def _empty_collection(
    conn: Connection, scope: Scope, collection_id: str, header: dict[str, Any]
) -> Collection:
    """The collection to restore into: created, or an existing empty one."""
    exported = header["collection"]
    collection = repo.get_collection(conn, scope, collection_id, lock=True)
    if collection is None:
        return repo.insert_collection(
            conn,
            scope,
            collection_id,
            exported["FaceModelVersion"],
            exported["CreationTimestamp"],
        )
    faces = repo.count_faces(conn, collection.pk)
    users = repo.count_users(conn, collection.pk)
    if faces or users:
        raise RekollectError(
            f"The collection {collection_id} already holds {faces} faces and {users} "
            "users; restore fills only a new or empty collection. Choose another "
            "with --collection-id, or delete this one first."
        )
    if collection.face_model_version != exported["FaceModelVersion"]:
        raise RekollectError(
            f"The collection {collection_id} is of FaceModelVersion "
            f"{collection.face_model_version}, the export of "
            f"{exported['FaceModelVersion']}."
        )
    return collection


class _Loader:
    """Reads user and face lines into one collection, inside the caller's transaction."""

    def __init__(self, conn: Connection, collection_pk: int, now: float) -> None:
        self.conn, self.collection_pk, self.now = conn, collection_pk, now
        self.users: set[str] = set()
        self.face_ids: set[str] = set()
        self.dimension: int | None = None
        # Faces waiting to be inserted with their user, and inserted ones by user.
        self.batch: list[tuple[NewFace, str | None]] = []
        self.owned: dict[str, list[int]] = {}

    def load(self, lines: Iterator[str], header: dict[str, Any]) -> None:
        for number, line in enumerate(lines, start=2):
            record = parse_line(line, number)
            if "user" in record:
                self.add_user(field(record, "user", dict, number), number)
            elif "face" in record:
                self.add_face(field(record, "face", dict, number), number)
            else:
                raise RekollectError(f"Line {number}: neither a user nor a face.")
        self.flush()
        counted = (len(self.users), len(self.face_ids))
        if counted != (header["users"], header["faces"]):
            raise RekollectError(
                f"The export holds {counted[0]} users and {counted[1]} faces; its "
                f"first line promises {header['users']} and {header['faces']}: "
                "is the file cut short?"
            )
        self.associate()

    def add_user(self, user: dict[str, Any], number: int) -> None:
        user_id = field(user, "UserId", str, number)
        if user_id in self.users:
            raise RekollectError(f"Line {number}: user {user_id} appears twice.")
        self.users.add(user_id)
        repo.insert_user(self.conn, self.collection_pk, user_id, self.now)

    def add_face(self, face: dict[str, Any], number: int) -> None:
        new = parse_face(face, number)
        if new.face_id in self.face_ids:
            raise RekollectError(f"Line {number}: face {new.face_id} appears twice.")
        if self.dimension not in (None, len(new.embedding)):
            raise RekollectError(
                f"Line {number}: an embedding of {len(new.embedding)} values among "
                f"ones of {self.dimension}."
            )
        self.dimension = len(new.embedding)
        self.face_ids.add(new.face_id)
        owner = field(face, "UserId", (str, type(None)), number)
        self.batch.append((new, owner))
        if len(self.batch) >= PAGE:
            self.flush()

    def flush(self) -> None:
        new_faces = [new for new, _ in self.batch]
        pks = repo.insert_faces(self.conn, self.collection_pk, new_faces, self.now)
        for (_, owner), pk in zip(self.batch, pks, strict=True):
            if owner is not None:
                self.owned.setdefault(owner, []).append(pk)
        self.batch = []

    def associate(self) -> None:
        for user_id, face_pks in self.owned.items():
            user = repo.get_user(self.conn, self.collection_pk, user_id)
            if user is None:
                raise RekollectError(
                    f"Faces belong to user {user_id}, not in the file."
                )
            if len(face_pks) > MAX_FACES_PER_USER:
                raise RekollectError(
                    f"User {user_id} has {len(face_pks)} faces; at most "
                    f"{MAX_FACES_PER_USER} are allowed."
                )
            repo.assign_faces(self.conn, face_pks, user.pk)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[tuple[Database, Scope, Settings]]:
    """The store the options name (migrated to this rekollect's schema), the scope
    of the collection, and the settings."""
    from rekollect.config import load_settings
    from rekollect.storage import open_database

    settings = load_settings(args.data_dir, database_url=args.database_url)
    scope = Scope(settings.account_id, region_of(args))
    database = open_database(settings.database_url)
    try:
        yield database, scope, settings
    finally:
        database.close()


@contextmanager
def _snapshot(database: Database) -> Iterator[Connection]:
    """A read transaction that sees one state of the store throughout.

    SQLite's read transactions do already; PostgreSQL's default, READ COMMITTED,
    takes a new snapshot per statement, so export asks for REPEATABLE READ.
    """
    if not database.is_postgresql:
        with database.read() as conn:
            yield conn
        return
    try:
        with database.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
    except Exception as error:
        translated = translate_error(error)
        if translated is None:
            raise
        raise translated from error
