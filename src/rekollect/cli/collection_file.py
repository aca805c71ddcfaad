"""The file `rekollect export` writes and `rekollect restore` reads.

JSON lines, gzip-compressed when the file's name ends in `.gz` (a reader tells by
the content). The first line describes the collection:

    {"format": "rekollect-collection", "version": 1, "rekollect": "0.1.0",
     "exported_at": <epoch s>, "account_id": ..., "region": ...,
     "collection": {"CollectionId", "FaceModelVersion", "CreationTimestamp", "Tags"},
     "users": <count>, "faces": <count>}

then one `{"user": {"UserId": ...}}` line per user and one `{"face": {...}}` line per
face, with the members of the API's Face shape (FaceId, ImageId, ExternalImageId,
BoundingBox, Confidence, IndexFacesModelVersion, UserId: the user it belongs to, or
null) plus `Embedding`: the face's vector as base64 of little-endian float32. The
counts on the first line let a reader tell a file cut short.

Everything read is checked; a line that does not fit is a `RekollectError` that
names the line.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from io import BufferedReader
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from rekollect.errors import RekollectError
from rekollect.storage.records import BoundingBox, Embedding, NewFace

FORMAT = "rekollect-collection"
VERSION = 1
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_header(line: str) -> dict[str, Any]:
    """The first line of an export, checked."""
    header = parse_line(line, 1)
    if header.get("format") != FORMAT:
        raise RekollectError("This is not a rekollect collection export.")
    if header.get("version") != VERSION:
        raise RekollectError(
            f"This export is of format version {header.get('version')}; this "
            f"rekollect reads version {VERSION}."
        )
    field(header, "users", int, 1)
    field(header, "faces", int, 1)
    collection = field(header, "collection", dict, 1)
    field(collection, "CollectionId", str, 1)
    field(collection, "FaceModelVersion", str, 1)
    field(collection, "CreationTimestamp", (int, float), 1)
    tags = field(collection, "Tags", dict, 1)
    if not all(isinstance(v, str) for v in tags.values()):
        raise RekollectError("Line 1: Tags must map strings to strings.")
    return header


def parse_face(face: dict[str, Any], number: int) -> NewFace:
    """The face a face line describes, checked (its UserId is the caller's)."""
    face_id = field(face, "FaceId", str, number)
    image_id = field(face, "ImageId", str, number)
    if not (UUID.fullmatch(face_id) and UUID.fullmatch(image_id)):
        raise RekollectError(f"Line {number}: FaceId and ImageId must be UUIDs.")
    box = field(face, "BoundingBox", dict, number)
    try:
        vector = base64.b64decode(field(face, "Embedding", str, number), validate=True)
        embedding = _embedding(vector)
        bounding_box = BoundingBox(
            float(box["Width"]),
            float(box["Height"]),
            float(box["Left"]),
            float(box["Top"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise RekollectError(f"Line {number}: {error!r}") from None
    external = face.get("ExternalImageId")
    return NewFace(
        face_id=face_id,
        image_id=image_id,
        external_image_id=None if external is None else str(external),
        box=bounding_box,
        confidence=float(field(face, "Confidence", (int, float), number)),
        model_version=field(face, "IndexFacesModelVersion", str, number),
        embedding=embedding,
    )


def _embedding(data: bytes) -> Embedding:
    if not data or len(data) % 4:
        raise ValueError("an embedding must be a whole number of float32 values")
    return np.frombuffer(data, dtype="<f4")


def field(record: dict[str, Any], name: str, kind: Any, number: int) -> Any:
    """`record[name]`, which must be an instance of `kind`, from line `number`."""
    value = record.get(name)
    if not isinstance(value, kind):
        raise RekollectError(f"Line {number}: {name} is missing or of the wrong type.")
    return value


def parse_line(line: str, number: int) -> dict[str, Any]:
    """Line `number` as a JSON object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise RekollectError(f"Line {number} is not JSON: {error}") from None
    if not isinstance(record, dict):
        raise RekollectError(f"Line {number} is not a JSON object.")
    return record


def write_line(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, separators=(",", ":")))
    out.write("\n")


@contextmanager
def open_output(name: str) -> Iterator[IO[str]]:
    """Standard output, or a file that appears under its name only once complete."""
    if name == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(name)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(partial, "wt", encoding="utf-8") as out:
            yield out
        os.replace(partial, path)
    except OSError as error:
        raise RekollectError(f"Cannot write {name}: {error.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def open_input(name: str) -> Iterator[Iterator[str]]:
    """The lines of an export, gzip-compressed or not; `-` is standard input."""
    try:
        raw = (
            open(name, "rb") if name != "-" else cast(BufferedReader, sys.stdin.buffer)
        )
    except OSError as error:
        raise RekollectError(f"Cannot read {name}: {error.strerror}") from None
    try:
        text: IO[str]
        if raw.peek(2)[:2] == b"\x1f\x8b":
            text = gzip.open(raw, "rt", encoding="utf-8")
        else:
            text = io.TextIOWrapper(raw, encoding="utf-8")
        try:
            yield iter(text)
        except (OSError, EOFError, UnicodeDecodeError) as error:
            raise RekollectError(f"Cannot read {name}: {error}") from None
    finally:
        if name != "-":
            raw.close()
