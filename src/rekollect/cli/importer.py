"""`rekollect import DIR --collection-id C`: enrol a folder of per-user photo folders.

Each sub-folder of DIR is a user, named by the folder (the UserId); every file under
it (hidden ones aside) is a photo of that user. The collection and the users are
created when missing; each photo is indexed (IndexFaces, MaxFaces=1, ExternalImageId
`<user>:<path in the folder>`) and its face associated with the user (AssociateFaces),
through a real boto3 Rekognition client: in this process on the local store, or over
HTTP to a running server, so the service's own checks and errors apply.

A photo ends up either as one face of its user, or with nothing of it left in the
collection and a reason in the closing table: not a JPEG or PNG, no face found, the
face too poor for the quality filter, a group photo (more than one face passes the
filter, and which one is the user's is not known, so none is kept), or an association
refused (a face too unlike the faces the user already has: AssociateFaces' match
threshold; a user at the limit of 100 faces).

Running the command again resumes it: IndexFaces of the same bytes under the same
ExternalImageId returns the faces stored the first time, and a face that is already
the user's is left as it is, so nothing is stored twice. The import only adds: photos
removed from DIR since an earlier run stay in the collection.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rekollect.cli.options import (
    add_data_options,
    add_endpoint_option,
    rekognition_client,
)
from rekollect.errors import RekollectError

# The largest Image.Bytes the API takes (the model's ImageBlob maximum).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Errors about one photo; any other error stops the import.
PHOTO_ERRORS = {
    "InvalidImageFormatException": "not a JPEG or PNG image",
    "ImageTooLargeException": "image too large",
    "InvalidParameterException": "refused",
    "ValidationException": "refused",
}
RESUME = "What went in so far stays in; run the command again to continue."
NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_.\-:]")
MAX_EXTERNAL_IMAGE_ID = 255

DESCRIPTION = """\
Index a folder of per-user photo folders into a collection: DIR/<UserId>/<photos>.

Each photo's face (IndexFaces, MaxFaces=1) is associated with the folder's user. A
photo leaves nothing in the collection when it is no JPEG or PNG, shows no face good
enough for the quality filter, shows several faces (a group photo: whose face is
the user's is not known), or when AssociateFaces refuses its face (too unlike the
user's faces so far, or the user has 100 faces).

Exit status: 0 when every photo's face belongs to its user (on this run or an earlier
one), 1 when anything was skipped (the closing table says what and why), 130 when
interrupted. Run the same command again to resume: nothing is stored twice.
"""


@dataclass(frozen=True)
class Photo:
    user_id: str
    path: Path
    name: str  # the path inside the user's folder

    @property
    def external_image_id(self) -> str:
        return external_image_id(self.user_id, self.name)


@dataclass(frozen=True)
class Outcome:
    user_id: str
    name: str
    face_id: str | None  # None: skipped
    note: str  # why skipped, or how it went in


@dataclass(frozen=True)
class Plan:
    users: list[str]
    photos: list[Photo]
    skipped: list[Outcome]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "import",
        help="index a folder of per-user photo folders into a collection",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", metavar="DIR", help="one sub-folder per user")
    parser.add_argument("--collection-id", required=True, help="created if missing")
    add_data_options(parser)
    add_endpoint_option(parser)
    parser.set_defaults(run=import_command)


def import_command(args: argparse.Namespace) -> int:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    directory = Path(args.directory)
    if not directory.is_dir():
        raise RekollectError(f"{directory} is not a folder.")
    # Standard retries cover a busy server (throttling, a database briefly away).
    config = Config(read_timeout=120, retries={"mode": "standard", "max_attempts": 3})
    started = False
    try:
        with rekognition_client(args, config) as rekognition:
            plan = scan(directory, _user_id_pattern(rekognition))
            prepare(rekognition, args.collection_id, plan.users)
            started = True
            outcomes = plan.skipped + run_plan(rekognition, args.collection_id, plan)
    except (BotoCoreError, ClientError) as error:
        then = f" {RESUME}" if started else ""
        raise RekollectError(f"The import stopped: {error}.{then}") from None
    except KeyboardInterrupt:
        Console(stderr=True).print(f"Interrupted. {RESUME}")
        raise

    report(Console(), args.collection_id, plan, outcomes)
    return 0 if all(outcome.face_id for outcome in outcomes) else 1


def scan(directory: Path, user_id_pattern: re.Pattern[str]) -> Plan:
    """The users and photos under `directory`, and what cannot be imported."""
    users: list[str] = []
    photos: list[Photo] = []
    skipped: list[Outcome] = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(Outcome("", entry.name, None, "not in a user folder"))
        elif not user_id_pattern.fullmatch(entry.name):
            reason = "not a valid UserId (at most 128 of: letters, digits, _ . - :)"
            skipped.append(Outcome(entry.name, "(folder)", None, reason))
        else:
            users.append(entry.name)
            photos += [
                Photo(entry.name, path, path.relative_to(entry).as_posix())
                for path in _files(entry)
            ]
    return Plan(users, photos, skipped)


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def external_image_id(user_id: str, name: str) -> str:
    """`<user>:<name>` with characters the API refuses as `_`, at most 255 long."""
    text = NOT_ALLOWED.sub("_", f"{user_id}:{name}")
    if len(text) <= MAX_EXTERNAL_IMAGE_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: MAX_EXTERNAL_IMAGE_ID - 17]}-{digest}"


def _user_id_pattern(rekognition: Any) -> re.Pattern[str]:
    """The service model's UserId constraints (pattern and length) as one pattern."""
    shape = rekognition.meta.service_model.shape_for("UserId").metadata
    return re.compile(
        rf"(?=.{{{shape['min']},{shape['max']}}}\Z)(?:{shape['pattern']})"
    )


def prepare(rekognition: Any, collection_id: str, user_ids: list[str]) -> None:
    """Create the collection and the users that do not exist yet."""
    try:
        rekognition.create_collection(CollectionId=collection_id)
    except rekognition.exceptions.ResourceAlreadyExistsException:
        pass
    for user_id in user_ids:
        try:
            rekognition.create_user(CollectionId=collection_id, UserId=user_id)
        except rekognition.exceptions.ConflictException:
            pass


def run_plan(rekognition: Any, collection_id: str, plan: Plan) -> list[Outcome]:
    """Enrol every photo of the plan, with a progress bar on stderr."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[current]}"),
    )
    outcomes = []
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("Importing", total=len(plan.photos), current="")
        for photo in plan.photos:
            progress.update(task, current=f"{photo.user_id}/{photo.name}")
            outcomes.append(enrol(rekognition, collection_id, photo))
            progress.advance(task)
        progress.update(task, current="")
    return outcomes


def enrol(rekognition: Any, collection_id: str, photo: Photo) -> Outcome:
    """Index one photo and give its face to its user, or say why not."""
    from botocore.exceptions import ClientError

    try:
        if photo.path.stat().st_size > MAX_IMAGE_BYTES:
            return _skip(photo, "larger than 5 MiB, the most IndexFaces takes")
        data = photo.path.read_bytes()
    except OSError as error:
        return _skip(photo, f"cannot be read: {error.strerror}")
    try:
        answer = rekognition.index_faces(
            CollectionId=collection_id,
            Image={"Bytes": data},
            ExternalImageId=photo.external_image_id,
            MaxFaces=1,
        )
    except ClientError as error:
        code, message = error.response["Error"]["Code"], error.response["Error"]
        if code not in PHOTO_ERRORS:
            raise
        return _skip(photo, f"{PHOTO_ERRORS[code]}: {message.get('Message', code)}")

    records, unindexed = answer["FaceRecords"], answer["UnindexedFaces"]
    if not records:
        return _skip(photo, _no_face(unindexed))
    face = records[0]["Face"]
    others = sum("EXCEEDS_MAX_FACES" in other["Reasons"] for other in unindexed)
    if others:
        _discard(rekognition, collection_id, face)
        return _skip(
            photo, f"group photo: {others + 1} faces, none known as the user's"
        )
    if face.get("UserId") == photo.user_id:
        return Outcome(photo.user_id, photo.name, face["FaceId"], "already in")
    return associate(rekognition, collection_id, photo, face)


def associate(
    rekognition: Any, collection_id: str, photo: Photo, face: dict[str, Any]
) -> Outcome:
    """Give the photo's face to its user; discard the face if that is refused."""
    try:
        answer = rekognition.associate_faces(
            CollectionId=collection_id, UserId=photo.user_id, FaceIds=[face["FaceId"]]
        )
    except rekognition.exceptions.ServiceQuotaExceededException as error:
        _discard(rekognition, collection_id, face)
        return _skip(
            photo, f"association refused: {error.response['Error']['Message']}"
        )
    for failure in answer["UnsuccessfulFaceAssociations"]:
        _discard(rekognition, collection_id, face)
        reason = ", ".join(failure["Reasons"])
        if "Confidence" in failure:
            reason += f" (similarity to the user {failure['Confidence']:.0f}%)"
        elif failure.get("UserId"):
            reason += f" (user {failure['UserId']})"
        return _skip(photo, f"association refused: {reason}")
    # Not associated now and no failure: the face was the user's already.
    note = "indexed" if answer["AssociatedFaces"] else "already in"
    return Outcome(photo.user_id, photo.name, face["FaceId"], note)


def _discard(rekognition: Any, collection_id: str, face: dict[str, Any]) -> None:
    """Delete a face no user holds (DeleteFaces keeps a face a user holds)."""
    if not face.get("UserId"):
        rekognition.delete_faces(CollectionId=collection_id, FaceIds=[face["FaceId"]])


def _no_face(unindexed: list[dict[str, Any]]) -> str:
    reasons = sorted({reason for face in unindexed for reason in face["Reasons"]})
    if not reasons:
        return "no face found"
    return f"face too poor for the quality filter: {', '.join(reasons)}"


def _skip(photo: Photo, reason: str) -> Outcome:
    return Outcome(photo.user_id, photo.name, None, reason)


def report(
    console: Console, collection_id: str, plan: Plan, outcomes: list[Outcome]
) -> None:
    """Per-user counts, then every photo or folder skipped and why."""
    done = Counter(o.user_id for o in outcomes if o.face_id)
    new = Counter(o.user_id for o in outcomes if o.face_id and o.note == "indexed")
    missed = Counter(o.user_id for o in outcomes if not o.face_id)
    users = Table(title=f"Users of collection {collection_id}")
    for column in ("User", "Photos", "Faces", "New", "Skipped"):
        users.add_column(column, justify="left" if column == "User" else "right")
    for user_id in plan.users:
        photos = done[user_id] + missed[user_id]
        users.add_row(
            user_id, *map(str, (photos, done[user_id], new[user_id], missed[user_id]))
        )
    console.print(users)

    skipped = [outcome for outcome in outcomes if not outcome.face_id]
    if skipped:
        table = Table(title="Not imported")
        for column in ("User", "Photo", "Reason"):
            table.add_column(column, overflow="fold")
        for outcome in skipped:
            table.add_row(outcome.user_id or "-", outcome.name, outcome.note)
        console.print(table)
    console.print(
        f"{sum(done.values())} of {len(plan.photos)} photos are faces of their users "
        f"({sum(new.values())} new); {len(skipped)} skipped."
    )
