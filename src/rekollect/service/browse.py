"""What the console reads: pages of a collection's faces and users, and thumbnails.

Read-only and scoped like every operation: a collection is looked up in the caller's
account and region, so nothing of another account's collections can be reached.
Every change the console makes goes through the operations of `OPERATIONS` instead,
with the API's validation and results.
"""

from __future__ import annotations

from dataclasses import dataclass

from rekollect.service.collection import require_collection
from rekollect.service.context import Service
from rekollect.storage import browse
from rekollect.storage import repository as repo
from rekollect.storage.browse import FaceRow
from rekollect.storage.records import Scope
from rekollect.storage.thumbnails import get_thumbnail

FACES_PER_PAGE = 120
USERS_PER_PAGE = 24
FACES_PER_USER = 8


@dataclass(frozen=True)
class FaceFilter:
    """A user's faces (`user_id`), else faces of no user or (`unassigned` False) all;
    in each case only those whose ExternalImageId starts with `external_prefix`."""

    user_id: str = ""
    unassigned: bool = True
    external_prefix: str = ""


@dataclass(frozen=True)
class FacePage:
    faces: list[FaceRow]
    total: int
    # Positions of the next and the previous page (None: there is none).
    next_after: str | None = None
    previous_before: str | None = None


@dataclass(frozen=True)
class UserCard:
    user_id: str
    face_count: int
    faces: list[FaceRow]


@dataclass(frozen=True)
class UserPage:
    users: list[UserCard]
    total: int
    next_after: str | None = None


def browse_faces(
    svc: Service,
    scope: Scope,
    collection_id: str,
    face_filter: FaceFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = FACES_PER_PAGE,
) -> FacePage:
    """One page of the faces `face_filter` picks, after `after` or before `before`."""
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        owner: str | int = (
            browse.NO_OWNER if face_filter.unassigned else browse.ANY_OWNER
        )
        if face_filter.user_id:
            user = repo.get_user(conn, collection.pk, face_filter.user_id)
            if user is None:
                return FacePage([], 0)
            owner = user.pk
        query = browse.FaceQuery(collection.pk, owner, face_filter.external_prefix)
        rows = browse.page_faces(
            conn, query, limit=limit + 1, after=after, before=before
        )
        total = browse.count_faces(conn, query)

    if before is not None and after is None:
        more_before, rows = len(rows) > limit, rows[-limit:]
        more_after = True
    else:
        more_after, rows = len(rows) > limit, rows[:limit]
        more_before = after is not None
    return FacePage(
        rows,
        total,
        next_after=rows[-1].face_id if rows and more_after else None,
        previous_before=rows[0].face_id if rows and more_before else None,
    )


def browse_users(
    svc: Service,
    scope: Scope,
    collection_id: str,
    *,
    prefix: str = "",
    after: str | None = None,
    limit: int = USERS_PER_PAGE,
    faces_each: int = FACES_PER_USER,
) -> UserPage:
    """Users whose id starts with `prefix`, in id order, each with its first faces."""
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        rows = browse.page_users(
            conn, collection.pk, prefix=prefix, after=after, limit=limit + 1
        )
        shown = rows[:limit]
        faces = browse.first_faces_of_users(conn, [u.pk for u in shown], faces_each)
        total = browse.count_users(conn, collection.pk, prefix)
    cards = [UserCard(u.user_id, u.face_count, faces[u.pk]) for u in shown]
    next_after = shown[-1].user_id if len(rows) > limit else None
    return UserPage(cards, total, next_after)


def face_thumbnail(
    svc: Service, scope: Scope, collection_id: str, face_id: str
) -> bytes | None:
    """The JPEG crop of a face, or None when the face or its crop does not exist."""
    with svc.database.read() as conn:
        collection = require_collection(conn, scope, collection_id)
        return get_thumbnail(conn, collection.pk, face_id)
