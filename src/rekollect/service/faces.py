"""ListFaces and DeleteFaces, and `add_faces`, the entry point IndexFaces stores through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rekollect.service.collection import require_collection
from rekollect.service.context import Service
from rekollect.storage import repository as repo
from rekollect.storage.records import BoundingBox, Face, NewFace, Scope

DEFAULT_PAGE_SIZE = 1000

Result = dict[str, Any]


def box_record(box: BoundingBox) -> Result:
    return {"Width": box.width, "Height": box.height, "Left": box.left, "Top": box.top}


def face_record(face: Face | NewFace) -> Result:
    """A stored face (or one about to be) as the `Face` shape of the API."""
    return {
        "FaceId": face.face_id,
        "BoundingBox": box_record(face.box),
        "ImageId": face.image_id,
        "ExternalImageId": face.external_image_id,
        "Confidence": face.confidence,
        "IndexFacesModelVersion": face.model_version,
        "UserId": face.user_id if isinstance(face, Face) else None,
    }


def add_faces(
    svc: Service, scope: Scope, collection_id: str, faces: Sequence[NewFace]
) -> None:
    """Store faces in a collection, in one transaction."""
    with svc.database.write() as conn:
        collection = require_collection(conn, scope, collection_id, share=True)
        repo.insert_faces(conn, collection.pk, faces, svc.clock())


def list_faces(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    next_token: str | None = None,
    max_results: int | None = None,
    user_id: str | None = None,
    face_ids: list[str] | None = None,
) -> Result:
    """Faces in ascending FaceId order, optionally of one user and among some ids.

    A UserId that names no user in the collection matches no face.
    """
    limit = max_results or DEFAULT_PAGE_SIZE
    binding = [scope.account_id, scope.region, collection_id, user_id, face_ids]
    after = svc.signer.position(next_token, "ListFaces", binding) if next_token else ""
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        page: list[Face] = []
        user = repo.get_user(conn, collection.pk, user_id) if user_id else None
        if user_id is None or user is not None:
            page = repo.list_faces(
                conn,
                collection.pk,
                after_face_id=str(after),
                limit=limit + 1,
                user_pk=user.pk if user else None,
                face_ids=face_ids,
            )

    result: Result = {
        "Faces": [face_record(face) for face in page[:limit]],
        "FaceModelVersion": collection.face_model_version,
    }
    if len(page) > limit:
        result["NextToken"] = svc.signer.issue(
            "ListFaces", binding, page[limit - 1].face_id
        )
    return result


def delete_faces(
    svc: Service, scope: Scope, *, collection_id: str, face_ids: list[str]
) -> Result:
    """Delete faces; a face that belongs to a user is kept and reported."""
    with svc.database.write() as conn:
        collection = require_collection(conn, scope, collection_id, share=True)
        found = repo.get_faces(conn, collection.pk, face_ids, lock=True)

        deleted: list[Face] = []
        unsuccessful: list[Result] = []
        for face_id in dict.fromkeys(face_ids):
            face = found.get(face_id)
            if face is None:
                unsuccessful.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif face.user_pk is not None:
                unsuccessful.append(
                    {
                        "FaceId": face_id,
                        "UserId": face.user_id,
                        "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"],
                    }
                )
            else:
                deleted.append(face)
        repo.delete_faces(
            conn, collection.pk, [face.pk for face in deleted], svc.clock()
        )

    return {
        "DeletedFaces": [face.face_id for face in deleted],
        "UnsuccessfulFaceDeletions": unsuccessful,
    }
