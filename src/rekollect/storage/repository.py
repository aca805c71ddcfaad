"""Queries over the store, each run on a connection inside the caller's transaction.

The service layer decides what a request means; these functions only read and write
rows. Locking reads use `FOR UPDATE`, which PostgreSQL honours and SQLite (where a
write transaction already holds the database lock) leaves out.

On PostgreSQL a locking read is two statements: the lock first, then the read. At
READ COMMITTED a statement that waited for a row lock still reads every other row (a
user's face count, the owner's user id of a face) from the snapshot it took before the
wait; the second statement takes a new snapshot, which holds every change committed
by the transaction that held the lock. Faces are locked in primary key order, so two
requests locking overlapping faces cannot deadlock on each other.

The statements on the hot path of every call are built once, with bound parameters,
so SQLAlchemy compiles them once and each call only binds values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from rekollect.storage.records import (
    BoundingBox,
    Collection,
    Embedding,
    Face,
    NewFace,
    Scope,
    User,
    embedding_bytes,
    embedding_from_bytes,
)
from rekollect.storage.schema import (
    collection_tags,
    collections,
    face_changes,
    faces,
    users,
)

# --- collections -------------------------------------------------------------------


_get_collection = select(collections).where(
    collections.c.account_id == bindparam("account_id"),
    collections.c.region == bindparam("region"),
    collections.c.collection_id == bindparam("collection_id"),
)
_get_collection_locked = _get_collection.with_for_update()
_get_collection_shared = _get_collection.with_for_update(read=True, key_share=True)


def get_collection(
    conn: Connection,
    scope: Scope,
    collection_id: str,
    *,
    lock: bool = False,
    share: bool = False,
) -> Collection | None:
    """The collection; `lock` for deleting it, `share` to keep it while changing it.

    On PostgreSQL `share` (FOR KEY SHARE) lets any number of requests change the
    collection's faces and users at once, while DeleteCollection (`lock`) waits for
    them and they for it, so a deletion never deadlocks with them half-way through.
    """
    if lock:
        statement = _get_collection_locked
    else:
        statement = _get_collection_shared if share else _get_collection
    row = conn.execute(
        statement,
        {
            "account_id": scope.account_id,
            "region": scope.region,
            "collection_id": collection_id,
        },
    ).first()
    return _collection(row) if row else None


def insert_collection(
    conn: Connection, scope: Scope, collection_id: str, model_version: str, now: float
) -> Collection:
    pk = conn.execute(
        insert(collections)
        .values(
            account_id=scope.account_id,
            region=scope.region,
            collection_id=collection_id,
            face_model_version=model_version,
            created_at=now,
        )
        .returning(collections.c.pk)
    ).scalar_one()
    return Collection(pk, collection_id, model_version, now)


def delete_collection(conn: Connection, collection: Collection, now: float) -> None:
    """Remove a collection with every face, user and tag in it."""
    pk = collection.pk
    conn.execute(delete(faces).where(faces.c.collection_pk == pk))
    conn.execute(delete(users).where(users.c.collection_pk == pk))
    conn.execute(delete(collection_tags).where(collection_tags.c.collection_pk == pk))
    conn.execute(delete(collections).where(collections.c.pk == pk))
    conn.execute(
        insert(face_changes).values(
            collection_pk=pk, face_pk=None, change="drop", changed_at=now
        )
    )


def list_collections(
    conn: Connection, scope: Scope, after_pk: int, limit: int
) -> list[Collection]:
    rows = conn.execute(
        select(collections)
        .where(
            collections.c.account_id == scope.account_id,
            collections.c.region == scope.region,
            collections.c.pk > after_pk,
        )
        .order_by(collections.c.pk)
        .limit(limit)
    )
    return [_collection(row) for row in rows]


def count_faces(conn: Connection, collection_pk: int) -> int:
    query = select(func.count()).where(faces.c.collection_pk == collection_pk)
    return int(conn.execute(query).scalar_one())


def count_users(conn: Connection, collection_pk: int) -> int:
    query = select(func.count()).where(users.c.collection_pk == collection_pk)
    return int(conn.execute(query).scalar_one())


def _collection(row: Row) -> Collection:  # type: ignore[type-arg]
    return Collection(row.pk, row.collection_id, row.face_model_version, row.created_at)


# --- tags --------------------------------------------------------------------------


def get_tags(conn: Connection, collection_pk: int) -> dict[str, str]:
    rows = conn.execute(
        select(collection_tags.c.key, collection_tags.c.value)
        .where(collection_tags.c.collection_pk == collection_pk)
        .order_by(collection_tags.c.key)
    )
    return {row.key: row.value for row in rows}


def put_tags(conn: Connection, collection_pk: int, tags: dict[str, str]) -> None:
    """Add tags, replacing the value of keys the collection already has."""
    if not tags:
        return
    remove_tags(conn, collection_pk, tags)
    conn.execute(
        insert(collection_tags),
        [
            {"collection_pk": collection_pk, "key": k, "value": v}
            for k, v in tags.items()
        ],
    )


def remove_tags(conn: Connection, collection_pk: int, keys: Iterable[str]) -> None:
    keys = list(keys)
    if keys:
        conn.execute(
            delete(collection_tags).where(
                collection_tags.c.collection_pk == collection_pk,
                collection_tags.c.key.in_(keys),
            )
        )


# --- users -------------------------------------------------------------------------

_face_count = (
    select(func.count())
    .where(faces.c.user_pk == users.c.pk)
    .correlate(users)
    .scalar_subquery()
    .label("face_count")
)


_get_user = select(users.c.pk, users.c.user_id, _face_count).where(
    users.c.collection_pk == bindparam("collection_pk"),
    users.c.user_id == bindparam("user_id"),
)
_get_user_locked = _get_user.with_for_update(of=users)
_lock_user = (
    select(users.c.pk)
    .where(
        users.c.collection_pk == bindparam("collection_pk"),
        users.c.user_id == bindparam("user_id"),
    )
    .with_for_update()
)


def get_user(
    conn: Connection, collection_pk: int, user_id: str, *, lock: bool = False
) -> User | None:
    params = {"collection_pk": collection_pk, "user_id": user_id}
    if lock and _is_postgresql(conn):
        if conn.execute(_lock_user, params).first() is None:
            return None
        lock = False
    row = conn.execute(_get_user_locked if lock else _get_user, params).first()
    return User(row.pk, row.user_id, row.face_count) if row else None


def users_by_pk(conn: Connection, user_pks: Sequence[int]) -> list[User]:
    if not user_pks:
        return []
    rows = conn.execute(
        select(users.c.pk, users.c.user_id, _face_count).where(
            users.c.pk.in_(list(user_pks))
        )
    )
    return [User(row.pk, row.user_id, row.face_count) for row in rows]


def insert_user(conn: Connection, collection_pk: int, user_id: str, now: float) -> None:
    conn.execute(
        insert(users).values(
            collection_pk=collection_pk, user_id=user_id, created_at=now
        )
    )


def delete_user(conn: Connection, user: User) -> None:
    """Disassociate the user's faces (they stay in the collection), then remove it."""
    conn.execute(update(faces).where(faces.c.user_pk == user.pk).values(user_pk=None))
    conn.execute(delete(users).where(users.c.pk == user.pk))


def list_users(
    conn: Connection, collection_pk: int, after_pk: int, limit: int
) -> list[User]:
    rows = conn.execute(
        select(users.c.pk, users.c.user_id, _face_count)
        .where(users.c.collection_pk == collection_pk, users.c.pk > after_pk)
        .order_by(users.c.pk)
        .limit(limit)
    )
    return [User(row.pk, row.user_id, row.face_count) for row in rows]


# --- faces -------------------------------------------------------------------------

_face_columns = (
    faces.c.pk,
    faces.c.face_id,
    faces.c.image_id,
    faces.c.external_image_id,
    faces.c.box_width,
    faces.c.box_height,
    faces.c.box_left,
    faces.c.box_top,
    faces.c.confidence,
    faces.c.model_version,
    faces.c.user_pk,
    users.c.user_id,
)
_faces_with_users = faces.outerjoin(users, faces.c.user_pk == users.c.pk)


_get_faces = (
    select(*_face_columns)
    .select_from(_faces_with_users)
    .where(
        faces.c.collection_pk == bindparam("collection_pk"),
        faces.c.face_id.in_(bindparam("face_ids", expanding=True)),
    )
)
_get_faces_locked = _get_faces.with_for_update(of=faces)
_lock_faces = (
    select(faces.c.pk)
    .where(
        faces.c.collection_pk == bindparam("collection_pk"),
        faces.c.face_id.in_(bindparam("face_ids", expanding=True)),
    )
    .order_by(faces.c.pk)
    .with_for_update()
)


def get_faces(
    conn: Connection, collection_pk: int, face_ids: Sequence[str], *, lock: bool = False
) -> dict[str, Face]:
    """The faces of the collection among `face_ids`, by face id."""
    params = {"collection_pk": collection_pk, "face_ids": list(face_ids)}
    if lock and _is_postgresql(conn):
        if not conn.execute(_lock_faces, params).all():
            return {}
        lock = False
    rows = conn.execute(_get_faces_locked if lock else _get_faces, params)
    return {row.face_id: _face(row) for row in rows}


def list_faces(
    conn: Connection,
    collection_pk: int,
    *,
    after_face_id: str,
    limit: int,
    user_pk: int | None = None,
    face_ids: Sequence[str] | None = None,
) -> list[Face]:
    """Faces in ascending face id order, optionally of one user or among some ids."""
    conditions = [
        faces.c.collection_pk == collection_pk,
        faces.c.face_id > after_face_id,
    ]
    if user_pk is not None:
        conditions.append(faces.c.user_pk == user_pk)
    if face_ids is not None:
        conditions.append(faces.c.face_id.in_(face_ids))
    rows = conn.execute(
        select(*_face_columns)
        .select_from(_faces_with_users)
        .where(and_(*conditions))
        .order_by(faces.c.face_id)
        .limit(limit)
    )
    return [_face(row) for row in rows]


_user_embeddings = select(faces.c.embedding).where(
    faces.c.user_pk == bindparam("user_pk")
)
_face_embeddings = select(faces.c.pk, faces.c.embedding).where(
    faces.c.pk.in_(bindparam("face_pks", expanding=True))
)
_assign_faces = (
    update(faces)
    .where(
        faces.c.pk.in_(bindparam("face_pks", expanding=True)),
        faces.c.user_pk.is_(None),
    )
    .values(user_pk=bindparam("new_user_pk"))
)
_release_faces = (
    update(faces)
    .where(
        faces.c.pk.in_(bindparam("face_pks", expanding=True)),
        faces.c.user_pk == bindparam("old_user_pk"),
    )
    .values(user_pk=None)
)


_faces_by_pk = (
    select(*_face_columns)
    .select_from(_faces_with_users)
    .where(faces.c.pk.in_(bindparam("face_pks", expanding=True)))
)


def faces_by_pk(conn: Connection, face_pks: Sequence[int]) -> dict[int, Face]:
    """The faces among `face_pks` that still exist, by primary key."""
    if not face_pks:
        return {}
    rows = conn.execute(_faces_by_pk, {"face_pks": list(face_pks)})
    return {row.pk: _face(row) for row in rows}


def faces_of_image(
    conn: Connection, collection_pk: int, image_id: str, external_image_id: str | None
) -> list[Face]:
    """Faces indexed from one image under one ExternalImageId (None matches None)."""
    condition = (
        faces.c.external_image_id.is_(None)
        if external_image_id is None
        else faces.c.external_image_id == external_image_id
    )
    rows = conn.execute(
        select(*_face_columns)
        .select_from(_faces_with_users)
        .where(
            faces.c.collection_pk == collection_pk,
            faces.c.image_id == image_id,
            condition,
        )
        .order_by(faces.c.pk)
    )
    return [_face(row) for row in rows]


def user_face_embeddings(conn: Connection, user_pk: int) -> dict[int, Embedding]:
    """The embeddings of a user's faces, by face primary key."""
    rows = conn.execute(
        select(faces.c.pk, faces.c.embedding).where(faces.c.user_pk == user_pk)
    )
    return {row.pk: embedding_from_bytes(row.embedding) for row in rows}


def user_embeddings(conn: Connection, user_pk: int) -> list[Embedding]:
    rows = conn.execute(_user_embeddings, {"user_pk": user_pk})
    return [embedding_from_bytes(row.embedding) for row in rows]


def face_embeddings(conn: Connection, face_pks: Sequence[int]) -> dict[int, Embedding]:
    rows = conn.execute(_face_embeddings, {"face_pks": list(face_pks)})
    return {row.pk: embedding_from_bytes(row.embedding) for row in rows}


def assign_faces(conn: Connection, face_pks: Sequence[int], user_pk: int) -> int:
    """Give unowned faces to a user; returns how many changed hands."""
    if not face_pks:
        return 0
    params = {"face_pks": list(face_pks), "new_user_pk": user_pk}
    return conn.execute(_assign_faces, params).rowcount


def release_faces(conn: Connection, face_pks: Sequence[int], user_pk: int) -> int:
    """Take faces away from a user; returns how many were the user's."""
    if not face_pks:
        return 0
    params = {"face_pks": list(face_pks), "old_user_pk": user_pk}
    return conn.execute(_release_faces, params).rowcount


def insert_faces(
    conn: Connection, collection_pk: int, new_faces: Sequence[NewFace], now: float
) -> list[int]:
    """Store faces and log each addition; returns their primary keys in order."""
    if not new_faces:
        return []
    rows = [
        {
            "collection_pk": collection_pk,
            "face_id": face.face_id,
            "image_id": face.image_id,
            "external_image_id": face.external_image_id,
            "box_width": face.box.width,
            "box_height": face.box.height,
            "box_left": face.box.left,
            "box_top": face.box.top,
            "confidence": face.confidence,
            "model_version": face.model_version,
            "embedding": embedding_bytes(face.embedding),
            "embedding_dim": int(face.embedding.shape[0]),
            "created_at": now,
        }
        for face in new_faces
    ]
    statement = insert(faces).returning(faces.c.pk, sort_by_parameter_order=True)
    pks = list(conn.execute(statement, rows).scalars())
    _log_changes(conn, collection_pk, pks, "add", now)
    return pks


def delete_faces(
    conn: Connection, collection_pk: int, face_pks: Sequence[int], now: float
) -> None:
    if face_pks:
        conn.execute(delete(faces).where(faces.c.pk.in_(face_pks)))
        _log_changes(conn, collection_pk, face_pks, "delete", now)


def _log_changes(
    conn: Connection,
    collection_pk: int,
    face_pks: Sequence[int],
    change: str,
    now: float,
) -> None:
    if face_pks:
        conn.execute(
            insert(face_changes),
            [
                {
                    "collection_pk": collection_pk,
                    "face_pk": pk,
                    "change": change,
                    "changed_at": now,
                }
                for pk in face_pks
            ],
        )


def _is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _face(row: Row) -> Face:  # type: ignore[type-arg]
    return Face(
        pk=row.pk,
        face_id=row.face_id,
        image_id=row.image_id,
        external_image_id=row.external_image_id,
        box=BoundingBox(row.box_width, row.box_height, row.box_left, row.box_top),
        confidence=row.confidence,
        model_version=row.model_version,
        user_pk=row.user_pk,
        user_id=row.user_id,
    )
