"""IndexFaces: detect the faces of an image and store the ones worth keeping.

The image is analysed before any transaction opens (it takes tens to hundreds of
milliseconds); the faces are then stored in one write transaction, which also writes
the change log every process's vector index catches up from, and (when the service
keeps thumbnails) a small JPEG crop of each new face.

ImageId is derived from the image's bytes, so indexing the same image again under the
same ExternalImageId finds the faces it stored the first time and stores nothing new,
as AWS promises ("no duplicate face metadata").
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from rekollect.engine.base import AnalyzedFace
from rekollect.engine.pool import ImageAnalysis
from rekollect.errors import InvalidParameterException
from rekollect.service.collection import require_collection
from rekollect.service.context import Service
from rekollect.service.face_detail import bounding_box, face_detail, select_faces
from rekollect.service.faces import face_record
from rekollect.service.images import image_bytes
from rekollect.storage import repository as repo
from rekollect.storage.records import BoundingBox, Collection, Face, NewFace, Scope
from rekollect.storage.thumbnails import insert_thumbnails

Result = dict[str, Any]

# Namespace of the UUIDv5 image ids (a fixed random UUID, so ids are stable).
_IMAGE_NAMESPACE = uuid.UUID("6f1c1d0e-5a53-4f0f-9d55-3c1b8f3f6a2e")


def index_faces(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    image: dict[str, Any],
    external_image_id: str | None = None,
    detection_attributes: list[str] | None = None,
    max_faces: int | None = None,
    quality_filter: str | None = None,
) -> Result:
    # DetectionAttributes only ever adds attributes the engine cannot estimate.
    del detection_attributes
    with svc.database.read() as conn:
        require_same_model(svc, require_collection(conn, scope, collection_id))

    data = image_bytes(image, svc.s3_settings)
    analysis = svc.analyzer.analyze(data, embed=True, thumbnails=svc.thumbnails)
    width, height = analysis.width, analysis.height
    selection = select_faces(
        analysis.faces,
        width,
        height,
        quality_filter=quality_filter or "AUTO",
        max_faces=max_faces,
    )
    image_id = str(uuid.uuid5(_IMAGE_NAMESPACE, hashlib.sha256(data).hexdigest()))

    with svc.database.write() as conn:
        collection = require_collection(conn, scope, collection_id, share=True)
        stored = repo.faces_of_image(conn, collection.pk, image_id, external_image_id)
        if stored:
            pairs = _pair_with_stored(selection.kept, stored, width, height)
        else:
            new_faces = [
                _new_face(face, width, height, image_id, external_image_id, svc)
                for face in selection.kept
            ]
            pks = repo.insert_faces(conn, collection.pk, new_faces, svc.clock())
            insert_thumbnails(conn, pks, _thumbnails(selection.kept, analysis))
            pairs = [
                (face, face_record(new))
                for face, new in zip(selection.kept, new_faces, strict=True)
            ]

    return {
        "FaceRecords": [
            {"Face": record, "FaceDetail": face_detail(face, width, height)}
            for face, record in pairs
        ],
        "FaceModelVersion": collection.face_model_version,
        "UnindexedFaces": [
            {"Reasons": reasons, "FaceDetail": face_detail(face, width, height)}
            for face, reasons in selection.rejected
        ],
    }


def require_same_model(svc: Service, collection: Collection) -> None:
    """Faces of one collection must come from one embedding space."""
    if collection.face_model_version != svc.face_model_version:
        raise InvalidParameterException(
            f"The collection {collection.collection_id} holds faces of model version "
            f"{collection.face_model_version}; this server's engine makes version "
            f"{svc.face_model_version}."
        )


def _new_face(
    face: AnalyzedFace,
    width: int,
    height: int,
    image_id: str,
    external_image_id: str | None,
    svc: Service,
) -> NewFace:
    box = bounding_box(face.box, width, height)
    assert face.embedding is not None
    return NewFace(
        face_id=str(uuid.uuid4()),
        image_id=image_id,
        external_image_id=external_image_id,
        box=BoundingBox(box["Width"], box["Height"], box["Left"], box["Top"]),
        confidence=face.confidence,
        model_version=svc.face_model_version,
        embedding=face.embedding,
    )


def _pair_with_stored(
    faces: list[AnalyzedFace], stored: list[Face], width: int, height: int
) -> list[tuple[AnalyzedFace, Result]]:
    """Match this analysis's faces to the faces stored from the same image before."""
    pairs = []
    remaining = list(stored)
    for face in faces:
        if not remaining:
            break
        box = bounding_box(face.box, width, height)
        nearest = min(
            remaining,
            key=lambda s: abs(s.box.left - box["Left"]) + abs(s.box.top - box["Top"]),
        )
        remaining.remove(nearest)
        pairs.append((face, face_record(nearest)))
    return pairs


def _thumbnails(
    kept: list[AnalyzedFace], analysis: ImageAnalysis
) -> list[bytes | None]:
    """The crop of each kept face (all None when the analysis made none)."""
    by_face = dict(zip(map(id, analysis.faces), analysis.thumbnails, strict=False))
    return [by_face.get(id(face)) for face in kept]
