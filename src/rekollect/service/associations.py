"""AssociateFaces and DisassociateFaces: which faces belong to which user.

Each request is one write transaction holding the user's row lock, so the invariants
"a face belongs to at most one user" and "a user has at most 100 faces" hold under
concurrent requests; face ids repeated in a request are handled once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from rekollect.engine.similarity import user_similarity_pct
from rekollect.errors import ServiceQuotaExceededException
from rekollect.service.collection import require_collection
from rekollect.service.context import Service
from rekollect.service.idempotency import run_once
from rekollect.service.users import require_user, user_status
from rekollect.storage import repository as repo
from rekollect.storage.records import Face, Scope, User

MAX_FACES_PER_USER = 100
# AWS's default for AssociateFaces (searches default to 80).
DEFAULT_USER_MATCH_THRESHOLD = 75.0

Result = dict[str, Any]


def associate_faces(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    user_id: str,
    face_ids: list[str],
    user_match_threshold: float | None = None,
    client_request_token: str | None = None,
) -> Result:
    """Associate faces with a user.

    A face of another user, or one not in the collection, is reported unsuccessful.
    Once the user has faces, a face whose similarity to the user is below the
    threshold is reported as LOW_MATCH_CONFIDENCE. A call that would take the user past
    100 faces fails as a whole with ServiceQuotaExceededException.
    """
    threshold = (
        DEFAULT_USER_MATCH_THRESHOLD
        if user_match_threshold is None
        else user_match_threshold
    )
    params = {
        "CollectionId": collection_id,
        "UserId": user_id,
        "FaceIds": face_ids,
        "UserMatchThreshold": user_match_threshold,
    }

    def associate(conn: Connection) -> Result:
        collection = require_collection(conn, scope, collection_id, share=True)
        user = require_user(conn, collection, user_id, lock=True)
        found = repo.get_faces(conn, collection.pk, face_ids, lock=True)

        unsuccessful: list[Result] = []
        candidates: list[Face] = []
        for face_id in dict.fromkeys(face_ids):
            face = found.get(face_id)
            if face is None:
                unsuccessful.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif face.user_pk is None:
                candidates.append(face)
            elif face.user_pk != user.pk:
                unsuccessful.append(_of_other_user(face))

        accepted, rejected = _match_user(conn, user, candidates, threshold)
        unsuccessful.extend(rejected)
        if user.face_count + len(accepted) > MAX_FACES_PER_USER:
            raise ServiceQuotaExceededException(
                f"The user {user_id} has {user.face_count} faces; associating "
                f"{len(accepted)} more would exceed the limit of {MAX_FACES_PER_USER} "
                "faces per user."
            )
        repo.assign_faces(conn, [face.pk for face in accepted], user.pk)

        return {
            "AssociatedFaces": [{"FaceId": face.face_id} for face in accepted],
            "UnsuccessfulFaceAssociations": unsuccessful,
            "UserStatus": "UPDATING" if accepted else user_status(user),
        }

    with svc.database.write() as conn:
        return run_once(
            svc, conn, scope, "AssociateFaces", client_request_token, params, associate
        )


def disassociate_faces(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    user_id: str,
    face_ids: list[str],
    client_request_token: str | None = None,
) -> Result:
    """Remove faces from a user.

    A face of this user is disassociated; a face of no user is ignored; a face of
    another user is ASSOCIATED_TO_A_DIFFERENT_USER; an unknown face is FACE_NOT_FOUND.
    """
    params = {"CollectionId": collection_id, "UserId": user_id, "FaceIds": face_ids}

    def disassociate(conn: Connection) -> Result:
        collection = require_collection(conn, scope, collection_id, share=True)
        user = require_user(conn, collection, user_id, lock=True)
        found = repo.get_faces(conn, collection.pk, face_ids, lock=True)

        removed: list[Face] = []
        unsuccessful: list[Result] = []
        for face_id in dict.fromkeys(face_ids):
            face = found.get(face_id)
            if face is None:
                unsuccessful.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif face.user_pk == user.pk:
                removed.append(face)
            elif face.user_pk is not None:
                unsuccessful.append(_of_other_user(face))
        repo.release_faces(conn, [face.pk for face in removed], user.pk)

        return {
            "DisassociatedFaces": [{"FaceId": face.face_id} for face in removed],
            "UnsuccessfulFaceDisassociations": unsuccessful,
            "UserStatus": "UPDATING" if removed else user_status(user),
        }

    with svc.database.write() as conn:
        return run_once(
            svc,
            conn,
            scope,
            "DisassociateFaces",
            client_request_token,
            params,
            disassociate,
        )


def _of_other_user(face: Face) -> Result:
    return {
        "FaceId": face.face_id,
        "UserId": face.user_id,
        "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
    }


def _match_user(
    conn: Connection, user: User, candidates: list[Face], threshold: float
) -> tuple[list[Face], list[Result]]:
    """Split candidates by their similarity to the user's faces (none yet: all match)."""
    if not user.face_count or not candidates:
        return candidates, []

    known = repo.user_embeddings(conn, user.pk)
    vectors = repo.face_embeddings(conn, [face.pk for face in candidates])
    accepted: list[Face] = []
    rejected: list[Result] = []
    for face in candidates:
        similarity = user_similarity_pct(vectors[face.pk], known)
        if similarity >= threshold:
            accepted.append(face)
        else:
            rejected.append(
                {
                    "FaceId": face.face_id,
                    "Confidence": similarity,
                    "Reasons": ["LOW_MATCH_CONFIDENCE"],
                }
            )
    return accepted, rejected
