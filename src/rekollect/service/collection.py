"""CreateCollection, DeleteCollection, DescribeCollection and ListCollections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from rekollect.errors import ResourceAlreadyExistsException, ResourceNotFoundException
from rekollect.service.context import Service
from rekollect.storage import repository as repo
from rekollect.storage.records import Collection, Scope

DEFAULT_PAGE_SIZE = 1000

Result = dict[str, Any]


def collection_arn(scope: Scope, collection_id: str) -> str:
    return f"arn:aws:rekognition:{scope.region}:{scope.account_id}:collection/{collection_id}"


def require_collection(
    conn: Connection,
    scope: Scope,
    collection_id: str,
    *,
    lock: bool = False,
    share: bool = False,
) -> Collection:
    """The collection, or ResourceNotFoundException; see `repo.get_collection` for
    `lock` and `share`."""
    collection = repo.get_collection(conn, scope, collection_id, lock=lock, share=share)
    if collection is None:
        raise ResourceNotFoundException(
            f"The collection id: {collection_id} does not exist"
        )
    return collection


def create_collection(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    tags: dict[str, str] | None = None,
) -> Result:
    """Create an empty collection bound to the current face model version.

    Like AWS, the `CollectionArn` of this response has no `arn:` prefix (DescribeCollection's
    `CollectionARN` has it); see docs/compatibility.md.
    """
    try:
        with svc.database.write() as conn:
            if repo.get_collection(conn, scope, collection_id) is not None:
                raise _already_exists(collection_id)
            collection = repo.insert_collection(
                conn, scope, collection_id, svc.face_model_version, svc.clock()
            )
            repo.put_tags(conn, collection.pk, tags or {})
    except IntegrityError:  # created by a concurrent request on another connection
        raise _already_exists(collection_id) from None
    return {
        "StatusCode": 200,
        "CollectionArn": collection_arn(scope, collection_id).removeprefix("arn:"),
        "FaceModelVersion": collection.face_model_version,
    }


def delete_collection(svc: Service, scope: Scope, *, collection_id: str) -> Result:
    """Delete the collection with all its faces, users and tags."""
    with svc.database.write() as conn:
        collection = require_collection(conn, scope, collection_id, lock=True)
        repo.delete_collection(conn, collection, svc.clock())
    return {"StatusCode": 200}


def describe_collection(svc: Service, scope: Scope, *, collection_id: str) -> Result:
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        face_count = repo.count_faces(conn, collection.pk)
        user_count = repo.count_users(conn, collection.pk)
    return {
        "FaceCount": face_count,
        "UserCount": user_count,
        "FaceModelVersion": collection.face_model_version,
        "CollectionARN": collection_arn(scope, collection_id),
        "CreationTimestamp": collection.created_at,
    }


def list_collections(
    svc: Service,
    scope: Scope,
    *,
    next_token: str | None = None,
    max_results: int | None = None,
) -> Result:
    """Collection ids in creation order, with their model versions alongside."""
    limit = max_results or DEFAULT_PAGE_SIZE
    binding = [scope.account_id, scope.region]
    after = (
        svc.signer.position(next_token, "ListCollections", binding) if next_token else 0
    )
    with svc.database.read() as conn:
        page = repo.list_collections(conn, scope, int(after), limit + 1)

    result: Result = {
        "CollectionIds": [c.collection_id for c in page[:limit]],
        "FaceModelVersions": [c.face_model_version for c in page[:limit]],
    }
    if len(page) > limit:
        result["NextToken"] = svc.signer.issue(
            "ListCollections", binding, page[limit - 1].pk
        )
    return result


def _already_exists(collection_id: str) -> ResourceAlreadyExistsException:
    return ResourceAlreadyExistsException(
        f"The collection id: {collection_id} already exists."
    )
