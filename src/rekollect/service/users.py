"""CreateUser, DeleteUser and ListUsers, and the UserStatus every response reports.

Changes apply synchronously, so a stored user is never UPDATING: its status is
ACTIVE while it has faces and CREATED while it has none. Responses to calls that just
changed a user's faces say UPDATING, as AWS's do (see docs/compatibility.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from rekollect.errors import ConflictException, ResourceNotFoundException
from rekollect.service.collection import require_collection
from rekollect.service.context import Service
from rekollect.service.idempotency import run_once
from rekollect.storage import repository as repo
from rekollect.storage.records import Collection, Scope, User

DEFAULT_PAGE_SIZE = 500

Result = dict[str, Any]


def user_status(user: User) -> str:
    return "ACTIVE" if user.face_count else "CREATED"


def require_user(
    conn: Connection, collection: Collection, user_id: str, *, lock: bool = False
) -> User:
    user = repo.get_user(conn, collection.pk, user_id, lock=lock)
    if user is None:
        raise ResourceNotFoundException(
            f"The user id: {user_id} does not exist in the collection: "
            f"{collection.collection_id}"
        )
    return user


def create_user(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    user_id: str,
    client_request_token: str | None = None,
) -> Result:
    params = {"CollectionId": collection_id, "UserId": user_id}

    def create(conn: Connection) -> Result:
        collection = require_collection(conn, scope, collection_id, share=True)
        if repo.get_user(conn, collection.pk, user_id) is not None:
            raise _conflict(user_id)
        repo.insert_user(conn, collection.pk, user_id, svc.clock())
        return {}

    try:
        with svc.database.write() as conn:
            return run_once(
                svc, conn, scope, "CreateUser", client_request_token, params, create
            )
    except IntegrityError:  # created by a concurrent request on another connection
        raise _conflict(user_id) from None


def delete_user(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    user_id: str,
    client_request_token: str | None = None,
) -> Result:
    """Disassociate the user's faces (they stay in the collection), then delete it."""
    params = {"CollectionId": collection_id, "UserId": user_id}

    def delete(conn: Connection) -> Result:
        collection = require_collection(conn, scope, collection_id, share=True)
        repo.delete_user(conn, require_user(conn, collection, user_id, lock=True))
        return {}

    with svc.database.write() as conn:
        return run_once(
            svc, conn, scope, "DeleteUser", client_request_token, params, delete
        )


def list_users(
    svc: Service,
    scope: Scope,
    *,
    collection_id: str,
    max_results: int | None = None,
    next_token: str | None = None,
) -> Result:
    """Users in creation order (AWS orders by its internal user key, not by id)."""
    limit = max_results or DEFAULT_PAGE_SIZE
    binding = [scope.account_id, scope.region, collection_id]
    after = svc.signer.position(next_token, "ListUsers", binding) if next_token else 0
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        page = repo.list_users(conn, collection.pk, int(after), limit + 1)

    result: Result = {
        "Users": [
            {"UserId": user.user_id, "UserStatus": user_status(user)}
            for user in page[:limit]
        ]
    }
    if len(page) > limit:
        result["NextToken"] = svc.signer.issue("ListUsers", binding, page[limit - 1].pk)
    return result


def _conflict(user_id: str) -> ConflictException:
    return ConflictException(f"A user with the id: {user_id} already exists.")
