"""Reading the face change log and the face vectors it points at, for in-memory indexes.

Every write that adds or removes faces appends to `face_changes` in its own
transaction (see `repository`), so a process that keeps a collection's vectors in
memory catches up by reading the log past the last sequence number it applied.

These queries only read. `rekollect.index` decides what the rows mean; the order in
which it runs them (log first, face rows second) is what keeps it correct on a
database where each statement sees a newer snapshot (PostgreSQL's READ COMMITTED).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, func, select

from rekollect.storage.schema import face_changes, faces

# Rows fetched per round trip when loading a whole collection, and face keys per
# IN (...) list (SQLite allows 32,766 bound parameters; PostgreSQL 65,535).
LOAD_BATCH_ROWS = 20_000
KEYS_PER_QUERY = 10_000


@dataclass(frozen=True)
class Change:
    """One row of the change log."""

    seq: int
    collection_pk: int
    face_pk: int | None
    change: str  # "add", "delete" or "drop"


@dataclass(frozen=True)
class FaceVectors:
    """Face primary keys (int64) and their embeddings, one float32 row each."""

    pks: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]


_change_columns = (
    face_changes.c.seq,
    face_changes.c.collection_pk,
    face_changes.c.face_pk,
    face_changes.c.change,
)

_latest_seq = select(func.max(face_changes.c.seq))

_extent_after = select(func.max(face_changes.c.seq), func.count()).where(
    face_changes.c.seq > bindparam("after")
)

_seqs_between = (
    select(face_changes.c.seq)
    .where(
        face_changes.c.seq > bindparam("after"),
        face_changes.c.seq <= bindparam("upto"),
    )
    .order_by(face_changes.c.seq)
)

_all_changes_between = (
    select(*_change_columns)
    .where(
        face_changes.c.seq > bindparam("after"),
        face_changes.c.seq <= bindparam("upto"),
    )
    .order_by(face_changes.c.seq)
)

_collection_changes_between = _all_changes_between.where(
    face_changes.c.collection_pk == bindparam("collection_pk")
)

_changes_at = (
    select(*_change_columns)
    .where(face_changes.c.seq.in_(bindparam("seqs", expanding=True)))
    .order_by(face_changes.c.seq)
)

_collection_vectors = (
    select(faces.c.pk, faces.c.embedding, faces.c.embedding_dim)
    .where(faces.c.collection_pk == bindparam("collection_pk"))
    .order_by(faces.c.pk)
)

# By primary key alone, the collection checked on the rows: with `collection_pk = ?`
# in the WHERE clause SQLite's planner (without ANALYZE statistics) prefers the
# (collection_pk, image_id) index once the IN list is long, and reads every face of
# the collection (23 ms instead of 0.3 ms for 100 keys at 100k faces).
_vectors_of = select(
    faces.c.pk, faces.c.collection_pk, faces.c.embedding, faces.c.embedding_dim
).where(faces.c.pk.in_(bindparam("face_pks", expanding=True)))


def latest_seq(conn: Connection) -> int:
    """The highest sequence number in the log (0 when it is empty)."""
    return int(conn.execute(_latest_seq).scalar() or 0)


def log_extent_after(conn: Connection, after: int) -> tuple[int, int]:
    """The highest seq above `after` and how many rows lie above it, in one statement.

    `(after, 0)` when there is nothing past `after`. When every seq in between is
    visible the count equals `highest - after`; a shortfall means seqs that were
    rolled back, or that belong to transactions still in flight (PostgreSQL assigns
    sequence values before commit, so a lower seq can become visible after a higher one).
    """
    highest, count = conn.execute(_extent_after, {"after": after}).one()
    if highest is None:
        return after, 0
    return int(highest), int(count)


def seqs_between(conn: Connection, after: int, upto: int) -> list[int]:
    """Every visible seq in `(after, upto]`, ascending."""
    rows = conn.execute(_seqs_between, {"after": after, "upto": upto})
    return [int(seq) for seq in rows.scalars()]


def collection_changes_between(
    conn: Connection, collection_pk: int, after: int, upto: int
) -> list[Change]:
    """The collection's changes with a seq in `(after, upto]`, in seq order."""
    rows = conn.execute(
        _collection_changes_between,
        {"after": after, "upto": upto, "collection_pk": collection_pk},
    )
    return [_change(row) for row in rows]


def all_changes_between(conn: Connection, after: int, upto: int) -> list[Change]:
    """Every collection's changes with a seq in `(after, upto]`, in seq order."""
    rows = conn.execute(_all_changes_between, {"after": after, "upto": upto})
    return [_change(row) for row in rows]


def changes_at(conn: Connection, seqs: Sequence[int]) -> list[Change]:
    """The rows among `seqs` that are visible now, whatever their collection."""
    found: list[Change] = []
    for chunk in _chunks(list(seqs)):
        rows = conn.execute(_changes_at, {"seqs": chunk})
        found.extend(_change(row) for row in rows)
    return found


def collection_vectors(conn: Connection, collection_pk: int) -> FaceVectors:
    """Every face of the collection: primary keys and embeddings, in pk order.

    Rows are fetched in batches and joined into one matrix per batch, so a collection
    of a million faces never exists as a million separate arrays.
    """
    result = conn.execution_options(yield_per=LOAD_BATCH_ROWS).execute(
        _collection_vectors, {"collection_pk": collection_pk}
    )
    parts = [_face_vectors(batch) for batch in result.partitions()]
    return _concatenate(parts)


def vectors_of(
    conn: Connection, collection_pk: int, face_pks: Sequence[int]
) -> FaceVectors:
    """The faces among `face_pks` that exist in the collection now, in pk order."""
    parts = []
    for chunk in _chunks(sorted(set(face_pks))):
        rows = conn.execute(_vectors_of, {"face_pks": chunk}).all()
        mine = sorted(
            (row for row in rows if row.collection_pk == collection_pk),
            key=lambda row: row.pk,
        )
        parts.append(_face_vectors(mine))
    return _concatenate(parts)


def _face_vectors(rows: Sequence[Any]) -> FaceVectors:
    if not rows:
        return _empty()
    dimensions = {row.embedding_dim for row in rows}
    if len(dimensions) != 1:
        raise ValueError(f"faces of one collection have dimensions {dimensions}")
    (dimension,) = dimensions
    pks = np.fromiter((row.pk for row in rows), dtype=np.int64, count=len(rows))
    data = b"".join(row.embedding for row in rows)
    vectors = np.frombuffer(data, dtype="<f4").astype(np.float32, copy=False)
    return FaceVectors(pks, vectors.reshape(len(rows), dimension))


def _concatenate(parts: list[FaceVectors]) -> FaceVectors:
    parts = [part for part in parts if len(part.pks)]
    if not parts:
        return _empty()
    if len(parts) == 1:
        return parts[0]
    if len({part.vectors.shape[1] for part in parts}) != 1:
        raise ValueError("faces of one collection have different dimensions")
    return FaceVectors(
        np.concatenate([part.pks for part in parts]),
        np.concatenate([part.vectors for part in parts]),
    )


def _empty() -> FaceVectors:
    return FaceVectors(np.empty(0, np.int64), np.empty((0, 0), np.float32))


def _change(row: Any) -> Change:
    face_pk = row.face_pk
    return Change(
        seq=int(row.seq),
        collection_pk=int(row.collection_pk),
        face_pk=None if face_pk is None else int(face_pk),
        change=str(row.change),
    )


def _chunks(keys: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(keys), KEYS_PER_QUERY):
        yield keys[start : start + KEYS_PER_QUERY]
