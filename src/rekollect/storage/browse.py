"""Read queries for browsing a collection (the console), beyond what the API offers.

Faces are paged by face id in either direction (keyset pagination: a page costs the
same at face 10,000 as at face 1) and filtered by owner and ExternalImageId prefix;
users come with their face counts and the first few faces of each, in one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, func, select

from rekollect.storage.schema import face_thumbnails, faces, users

# How a face's owner is filtered: any face, faces of no user, or one user's faces.
ANY_OWNER = "any"
NO_OWNER = "none"


@dataclass(frozen=True)
class FaceRow:
    face_id: str
    external_image_id: str | None
    user_id: str | None
    confidence: float
    has_thumbnail: bool


@dataclass(frozen=True)
class UserRow:
    pk: int
    user_id: str
    face_count: int


@dataclass(frozen=True)
class FaceQuery:
    """Which faces of a collection: `owner` is ANY_OWNER, NO_OWNER or a user's pk."""

    collection_pk: int
    owner: str | int = ANY_OWNER
    external_prefix: str = ""


_tile_columns = (
    faces.c.face_id,
    faces.c.external_image_id,
    users.c.user_id,
    faces.c.confidence,
    face_thumbnails.c.face_pk.is_not(None).label("has_thumbnail"),
)
_tiles_from = faces.outerjoin(users, faces.c.user_pk == users.c.pk).outerjoin(
    face_thumbnails, face_thumbnails.c.face_pk == faces.c.pk
)


def page_faces(
    conn: Connection,
    query: FaceQuery,
    *,
    limit: int,
    after: str | None = None,
    before: str | None = None,
) -> list[FaceRow]:
    """Up to `limit` faces in face id order, after `after` or else before `before`."""
    conditions = _conditions(query)
    order: ColumnElement[str] = faces.c.face_id
    if after is not None:
        conditions.append(faces.c.face_id > after)
    elif before is not None:
        conditions.append(faces.c.face_id < before)
        order = faces.c.face_id.desc()
    rows = conn.execute(
        select(*_tile_columns)
        .select_from(_tiles_from)
        .where(and_(*conditions))
        .order_by(order)
        .limit(limit)
    ).all()
    found = [_face_row(row) for row in rows]
    return found if after is not None or before is None else found[::-1]


def count_faces(conn: Connection, query: FaceQuery) -> int:
    statement = select(func.count()).select_from(faces).where(*_conditions(query))
    return int(conn.execute(statement).scalar_one())


def page_users(
    conn: Connection,
    collection_pk: int,
    *,
    prefix: str,
    after: str | None,
    limit: int,
) -> list[UserRow]:
    """Users whose id starts with `prefix`, in user id order, with face counts."""
    face_count = (
        select(func.count())
        .where(faces.c.user_pk == users.c.pk)
        .correlate(users)
        .scalar_subquery()
    )
    conditions = [users.c.collection_pk == collection_pk]
    if prefix:
        conditions.append(users.c.user_id.startswith(prefix, autoescape=True))
    if after is not None:
        conditions.append(users.c.user_id > after)
    rows = conn.execute(
        select(users.c.pk, users.c.user_id, face_count.label("face_count"))
        .where(*conditions)
        .order_by(users.c.user_id)
        .limit(limit)
    )
    return [UserRow(row.pk, row.user_id, row.face_count) for row in rows]


def count_users(conn: Connection, collection_pk: int, prefix: str) -> int:
    conditions = [users.c.collection_pk == collection_pk]
    if prefix:
        conditions.append(users.c.user_id.startswith(prefix, autoescape=True))
    statement = select(func.count()).select_from(users).where(*conditions)
    return int(conn.execute(statement).scalar_one())


def first_faces_of_users(
    conn: Connection, user_pks: Sequence[int], per_user: int
) -> dict[int, list[FaceRow]]:
    """The first `per_user` faces (by face id) of each user, by user pk."""
    if not user_pks:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=faces.c.user_pk, order_by=faces.c.face_id)
        .label("rank")
    )
    ranked = (
        select(faces.c.user_pk.label("owner"), *_tile_columns, rank)
        .select_from(_tiles_from)
        .where(faces.c.user_pk.in_(list(user_pks)))
        .subquery()
    )
    rows = conn.execute(
        select(ranked)
        .where(ranked.c.rank <= per_user)
        .order_by(ranked.c.owner, ranked.c.face_id)
    )
    found: dict[int, list[FaceRow]] = {pk: [] for pk in user_pks}
    for row in rows:
        found[row.owner].append(_face_row(row))
    return found


def _conditions(query: FaceQuery) -> list[ColumnElement[bool]]:
    conditions = [faces.c.collection_pk == query.collection_pk]
    if query.owner == NO_OWNER:
        conditions.append(faces.c.user_pk.is_(None))
    elif isinstance(query.owner, int):
        conditions.append(faces.c.user_pk == query.owner)
    if query.external_prefix:
        conditions.append(
            faces.c.external_image_id.startswith(query.external_prefix, autoescape=True)
        )
    return conditions


def _face_row(row: Row[Any]) -> FaceRow:
    return FaceRow(
        face_id=row.face_id,
        external_image_id=row.external_image_id,
        user_id=row.user_id,
        confidence=row.confidence,
        has_thumbnail=bool(row.has_thumbnail),
    )
