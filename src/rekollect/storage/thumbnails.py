"""Face thumbnails in the store: written beside their faces, read one at a time.

A thumbnail row belongs to one face and goes when the face goes (ON DELETE CASCADE),
so no query here has to clean up after DeleteFaces or DeleteCollection.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, insert, select

from rekollect.storage.schema import face_thumbnails, faces

_get_thumbnail = (
    select(face_thumbnails.c.jpeg)
    .select_from(face_thumbnails.join(faces, faces.c.pk == face_thumbnails.c.face_pk))
    .where(
        faces.c.collection_pk == bindparam("collection_pk"),
        faces.c.face_id == bindparam("face_id"),
    )
)


def insert_thumbnails(
    conn: Connection, face_pks: Sequence[int], jpegs: Sequence[bytes | None]
) -> int:
    """Store the thumbnail of each face that has one; returns how many were stored."""
    rows = [
        {"face_pk": pk, "jpeg": jpeg}
        for pk, jpeg in zip(face_pks, jpegs, strict=True)
        if jpeg
    ]
    if rows:
        conn.execute(insert(face_thumbnails), rows)
    return len(rows)


def get_thumbnail(conn: Connection, collection_pk: int, face_id: str) -> bytes | None:
    """The JPEG of a face of the collection, or None (no such face, or no crop)."""
    params = {"collection_pk": collection_pk, "face_id": face_id}
    jpeg: bytes | None = conn.execute(_get_thumbnail, params).scalar_one_or_none()
    return jpeg
