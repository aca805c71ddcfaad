"""SearchFaces, SearchFacesByImage, SearchUsers and SearchUsersByImage.

Every search asks the collection's vector index for the faces within the distance
that the similarity threshold stands for (the index first catches up with writes made
by any process), then reads those faces' metadata in one read transaction; a face
deleted in between is left out.

A user's similarity to a query is its best-matching face: a user enrolled with photos
from several ages or angles is found from any of them (docs/compatibility.md has the
measurements behind this choice).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rekollect.engine.base import AnalyzedFace
from rekollect.engine.pool import ImageAnalysis
from rekollect.engine.similarity import (
    distance_for_similarity,
    similarity_from_distance,
)
from rekollect.errors import InvalidParameterException, ResourceNotFoundException
from rekollect.service.collection import require_collection
from rekollect.service.context import Service
from rekollect.service.face_detail import (
    bounding_box,
    face_detail,
    quality_reasons,
)
from rekollect.service.faces import face_record
from rekollect.service.images import image_bytes
from rekollect.service.indexing import require_same_model
from rekollect.service.users import user_status
from rekollect.storage import repository as repo
from rekollect.storage.records import Collection, Face, Scope, User

Result = dict[str, Any]

DEFAULT_FACE_MATCH_THRESHOLD = 80.0
DEFAULT_USER_MATCH_THRESHOLD = 80.0
MAX_FACE_MATCHES = 4096
MAX_USER_MATCHES = 500


def search_faces(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    face_id: str,
    max_faces: int | None = None,
    face_match_threshold: float | None = None,
) -> Result:
    """Faces like a stored face, never the face itself."""
    collection, face, vector = _stored_face(svc, scope, collection_id, face_id)
    matches = _face_matches(
        svc,
        collection,
        vector,
        _threshold(face_match_threshold, DEFAULT_FACE_MATCH_THRESHOLD),
        max_faces or MAX_FACE_MATCHES,
        exclude={face.pk},
    )
    return {
        "SearchedFaceId": face_id,
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }


def search_faces_by_image(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    image: dict[str, Any],
    max_faces: int | None = None,
    face_match_threshold: float | None = None,
    quality_filter: str | None = None,
) -> Result:
    """Faces like the largest face of an image; an image without one is an error."""
    collection = _collection(svc, scope, collection_id)
    analysis = svc.analyzer.analyze(image_bytes(image, svc.s3_settings))
    if not analysis.faces:
        raise InvalidParameterException(
            "There are no faces in the image. Should be at least 1."
        )
    largest = analysis.faces[0]
    if quality_reasons(
        largest, analysis.width, analysis.height, quality_filter or "NONE"
    ):
        raise InvalidParameterException(
            "The largest face in the image does not pass the quality filter."
        )
    assert largest.embedding is not None
    matches = _face_matches(
        svc,
        collection,
        largest.embedding,
        _threshold(face_match_threshold, DEFAULT_FACE_MATCH_THRESHOLD),
        max_faces or MAX_FACE_MATCHES,
    )
    return {
        "SearchedFaceBoundingBox": bounding_box(
            largest.box, analysis.width, analysis.height
        ),
        "SearchedFaceConfidence": largest.confidence,
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }


def search_users(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    user_id: str | None = None,
    face_id: str | None = None,
    user_match_threshold: float | None = None,
    max_users: int | None = None,
) -> Result:
    """Users like a stored face, or like another user (never that user itself)."""
    if (user_id is None) == (face_id is None):
        raise InvalidParameterException("Specify exactly one of UserId and FaceId.")
    threshold = _threshold(user_match_threshold, DEFAULT_USER_MATCH_THRESHOLD)
    limit = max_users or MAX_USER_MATCHES

    result: Result
    if face_id is not None:
        collection, face, vector = _stored_face(svc, scope, collection_id, face_id)
        queries = vector[np.newaxis, :]
        exclude_faces, exclude_user = {face.pk}, None
        result = {"SearchedFace": {"FaceId": face_id}}
    else:
        assert user_id is not None
        with svc.database.read() as conn:
            collection = require_collection(conn, scope, collection_id)
            user = repo.get_user(conn, collection.pk, user_id)
            if user is None:
                raise ResourceNotFoundException(
                    f"The user id: {user_id} does not exist in the collection: "
                    f"{collection_id}"
                )
            own = repo.user_face_embeddings(conn, user.pk)
        require_same_model(svc, collection)
        queries = np.stack(list(own.values())) if own else np.empty((0, 0), np.float32)
        exclude_faces, exclude_user = set(own), user.pk
        result = {"SearchedUser": {"UserId": user_id}}

    result["UserMatches"] = _user_matches(
        svc, collection, queries, threshold, limit, exclude_faces, exclude_user
    )
    result["FaceModelVersion"] = collection.face_model_version
    return result


def search_users_by_image(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    image: dict[str, Any],
    user_match_threshold: float | None = None,
    max_users: int | None = None,
    quality_filter: str | None = None,
) -> Result:
    """Users like the largest face of an image; no usable face is an empty result."""
    collection = _collection(svc, scope, collection_id)
    analysis = svc.analyzer.analyze(image_bytes(image, svc.s3_settings))
    result: Result = {
        "UserMatches": [],
        "FaceModelVersion": collection.face_model_version,
        "UnsearchedFaces": [],
    }
    if not analysis.faces:
        return result

    largest, *others = analysis.faces
    reasons = quality_reasons(
        largest, analysis.width, analysis.height, quality_filter or "NONE"
    )
    unsearched = [(face, ["FACE_NOT_LARGEST"]) for face in others]
    if reasons:
        unsearched.insert(0, (largest, reasons))
    result["UnsearchedFaces"] = [
        _unsearched(face, why, analysis) for face, why in unsearched
    ]
    if reasons:
        return result

    assert largest.embedding is not None
    result["SearchedFace"] = {
        "FaceDetail": face_detail(largest, analysis.width, analysis.height)
    }
    result["UserMatches"] = _user_matches(
        svc,
        collection,
        largest.embedding[np.newaxis, :],
        _threshold(user_match_threshold, DEFAULT_USER_MATCH_THRESHOLD),
        max_users or MAX_USER_MATCHES,
    )
    return result


# --- shared steps ------------------------------------------------------------------


def _threshold(given: float | None, default: float) -> float:
    return default if given is None else given


def _collection(svc: Service, scope: Scope, collection_id: str) -> Collection:
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
    require_same_model(svc, collection)
    return collection


def _stored_face(
    svc: Service, scope: Scope, collection_id: str, face_id: str
) -> tuple[Collection, Face, np.ndarray]:
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        face = repo.get_faces(conn, collection.pk, [face_id]).get(face_id)
        if face is None:
            raise InvalidParameterException(
                f"faceId {face_id} was not found in the collection."
            )
        vector = repo.face_embeddings(conn, [face.pk])[face.pk]
    require_same_model(svc, collection)
    return collection, face, vector


def _nearest(
    svc: Service,
    collection: Collection,
    queries: np.ndarray,
    threshold: float,
    limit: int,
    exclude: set[int],
) -> dict[int, float]:
    """Each face within the threshold of any query, with its smallest distance."""
    if queries.size == 0:
        return {}
    found = svc.indexes.search(
        collection.pk,
        np.ascontiguousarray(queries, dtype=np.float32),
        max_distance=distance_for_similarity(threshold),
        limit=limit,
        exclude=exclude,
    )
    best: dict[int, float] = {}
    for hits in found:
        for pk, distance in hits:
            if distance < best.get(pk, np.inf):
                best[pk] = distance
    return best


def _face_matches(
    svc: Service,
    collection: Collection,
    vector: np.ndarray,
    threshold: float,
    limit: int,
    exclude: set[int] | None = None,
) -> list[Result]:
    nearest = _nearest(
        svc, collection, vector[np.newaxis, :], threshold, limit, exclude or set()
    )
    with svc.database.read() as conn:
        faces = repo.faces_by_pk(conn, list(nearest))
    ranked = sorted(faces.values(), key=lambda face: nearest[face.pk])[:limit]
    return [
        {
            "Similarity": similarity_from_distance(nearest[face.pk]),
            "Face": face_record(face),
        }
        for face in ranked
    ]


def _user_matches(
    svc: Service,
    collection: Collection,
    queries: np.ndarray,
    threshold: float,
    limit: int,
    exclude_faces: set[int] | None = None,
    exclude_user: int | None = None,
) -> list[Result]:
    nearest = _nearest(
        svc, collection, queries, threshold, MAX_FACE_MATCHES, exclude_faces or set()
    )
    with svc.database.read() as conn:
        faces = repo.faces_by_pk(conn, list(nearest))
        best: dict[int, tuple[float, Face]] = {}
        for face in faces.values():
            if face.user_pk is None or face.user_pk == exclude_user:
                continue
            distance = nearest[face.pk]
            if face.user_pk not in best or distance < best[face.user_pk][0]:
                best[face.user_pk] = (distance, face)
        ranked_pks = sorted(best, key=lambda pk: best[pk][0])[:limit]
        ranked = [best[pk] for pk in ranked_pks]
        users = {user.pk: user for user in repo.users_by_pk(conn, ranked_pks)}
    return [
        {
            "Similarity": similarity_from_distance(distance),
            "User": {"UserId": face.user_id, "UserStatus": _status(users, face)},
        }
        for distance, face in ranked
    ]


def _status(users: dict[int, User], face: Face) -> str:
    user = users.get(face.user_pk) if face.user_pk is not None else None
    return user_status(user) if user else "ACTIVE"


def _unsearched(
    face: AnalyzedFace, reasons: list[str], analysis: ImageAnalysis
) -> Result:
    return {
        "FaceDetails": face_detail(face, analysis.width, analysis.height),
        "Reasons": reasons,
    }
