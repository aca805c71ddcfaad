"""Each collection's vector index, kept in memory by each process and kept current
from the store's change log.

Several processes (server workers, the in-process client, the CLI) may write to one
store, so no process can rely on having seen every write. Instead every search first
catches up: it reads the change log past the last sequence number this process
applied for the collection, in one read transaction, and applies what it finds. A
face written through any process is therefore found by a search that starts after
the write returned.

Loading. The first use of a collection reads the log's highest seq, then every face
of the collection (pk and embedding). Faces written after the seq was read may already
be in what is loaded; the changes that wrote them come round again and are applied
idempotently (below), so nothing is missed and nothing is doubled.

Applying changes is state-based, not replayed: a batch of changes only names the
faces it touched; their rows are then read (after the log, in the same transaction)
and the index made to agree with them: a face present in the collection is added or
its vector replaced, an absent one removed. Applying a change twice, or two changes
in the wrong order, therefore leaves the same result, and a face pk that SQLite
reuses after a deletion (it reuses the highest rowid) is handled too. "drop" (the
collection was deleted) reloads the collection, which is then empty, or holds the
faces of a new collection that reuses the pk.

Late commits. On SQLite writers are serialised and seqs are assigned inside the write
transaction, so they become visible in order. On PostgreSQL a sequence value is taken
before commit, so seq 11 can become visible while seq 10 is still in flight; a reader
that moved its position past 11 would skip 10 for ever. So each catch-up also counts
the rows between its position and the highest seq (one statement). When some are
missing, it lists the seqs there and remembers the missing ones as gaps with the time
first seen; every later catch-up looks those seqs up again (a tiny `IN` query), and
applies any that have appeared, until they are `gap_timeout_s` old: by then their
transaction has committed or rolled back (a rolled-back write leaves a gap for good).
The first load treats missing seqs among the last `load_gap_window` as gaps too.
The position only tracks the log's highest seq, so a collection searched rarely does
not re-read other collections' changes. If gaps pile up beyond `MAX_GAPS` (say the
log was pruned), the collection is simply reloaded.

The order of the reads (log statements first, face rows after) keeps this correct even
where each statement sees a newer snapshot (PostgreSQL's READ COMMITTED): anything
committed between them is either read now or comes round again as a change.

Search: exact (one matrix product per block of rows for the whole batch of queries)
up to `approximate_above` faces, faiss IVF-Flat above (see `approximate`). Either way
the final distances are recomputed from the matrix, so the threshold decision is the
same on both paths. The index is trained when the collection first exceeds
`approximate_above`, trained again when it has grown 4x since, and dropped when the
collection falls to half of `approximate_above`. Training a million faces takes about
40 s on two cores and happens inside the search that finds the collection too large,
holding that collection's lock.

Threads: one lock per collection, held across catch-up and search, so searches of
different collections run in parallel (numpy and faiss release the GIL) while searches
of one collection queue. A short registry lock guards the map of collections.

Memory, at d = 128: about 630 bytes per face for the exact path (see `vectors`), about
560 more once the IVF index exists (see `approximate`); the matrix keeps up to 2x spare
capacity after it doubles. Every collection searched stays in memory until `forget`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from rekollect.index.approximate import IvfIndex
from rekollect.index.vectors import Candidates, VectorMatrix
from rekollect.storage import changes as log
from rekollect.storage.database import Database

DEFAULT_APPROXIMATE_ABOVE = 1_000_000
# How long a missing seq is looked for before it counts as rolled back.
DEFAULT_GAP_TIMEOUT_S = 120.0
# How far below the log's head the first load looks for seqs still in flight.
DEFAULT_LOAD_GAP_WINDOW = 10_000
# More gaps than this and the collection is reloaded instead.
MAX_GAPS = 10_000
# A batch of changes touching more faces than this (and more than half the
# collection) reloads the collection rather than fetching the faces one list at a time.
RELOAD_ABOVE = 50_000
# Not a change the log holds: stands for "too many gaps, reload" inside a batch.
_RELOAD = "reload"

Answers = list[list[tuple[int, float]]]


class CollectionIndexes:
    """The vector indexes of every collection this process searches."""

    def __init__(
        self,
        database: Database,
        *,
        approximate_above: int = DEFAULT_APPROXIMATE_ABOVE,
        gap_timeout_s: float = DEFAULT_GAP_TIMEOUT_S,
        load_gap_window: int = DEFAULT_LOAD_GAP_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.approximate_above = approximate_above
        self.gap_timeout_s = gap_timeout_s
        self.load_gap_window = load_gap_window
        self.clock = clock
        self._lock = threading.Lock()
        self._collections: dict[int, CollectionIndex] = {}

    def search(
        self,
        collection_pk: int,
        queries: npt.ArrayLike,
        *,
        max_distance: float,
        limit: int,
        exclude: Collection[int] = (),
    ) -> Answers:
        """For each query, up to `limit` (face pk, distance) within `max_distance`.

        Catches up with the store first. Distances are Euclidean, nearest first (ties
        by pk); faces whose pk is in `exclude` are skipped, and do not count against
        `limit`.
        """
        batch = np.ascontiguousarray(queries, dtype=np.float32)
        if batch.ndim != 2:
            raise ValueError(
                f"queries must be a (count, dimension) matrix: {batch.shape}"
            )
        index = self._collection(collection_pk)
        with index.lock:
            index.catch_up()
            return index.search(
                batch, max_distance=max_distance, limit=limit, exclude=exclude
            )

    def count(self, collection_pk: int) -> int:
        """How many faces the collection holds, after catching up."""
        index = self._collection(collection_pk)
        with index.lock:
            index.catch_up()
            return len(index.matrix)

    def forget(self, collection_pk: int) -> None:
        """Drop the collection's index from memory (the next use loads it again)."""
        with self._lock:
            self._collections.pop(collection_pk, None)

    def approximate(self, collection_pk: int) -> bool:
        """Whether searches of the collection currently use the IVF index."""
        with self._lock:
            index = self._collections.get(collection_pk)
        return index is not None and index.ivf is not None

    def _collection(self, collection_pk: int) -> CollectionIndex:
        with self._lock:
            index = self._collections.get(collection_pk)
            if index is None:
                index = CollectionIndex(collection_pk, self)
                self._collections[collection_pk] = index
            return index


class CollectionIndex:
    """One collection's vectors, its position in the change log, and its gaps.

    Every method but `__init__` runs with `lock` held.
    """

    def __init__(self, collection_pk: int, owner: CollectionIndexes) -> None:
        self.collection_pk = collection_pk
        self.owner = owner
        self.lock = threading.Lock()
        self.matrix = VectorMatrix()
        self.ivf: IvfIndex | None = None
        # The highest seq read (None: not loaded). Every seq up to it has been applied
        # or belongs to another collection, except those in `gaps`.
        self.position: int | None = None
        self.gaps: dict[int, float] = {}  # missing seq -> when first seen missing

    # --- catching up -----------------------------------------------------------------

    def catch_up(self) -> None:
        try:
            with self.owner.database.read() as conn:
                if self.position is None:
                    self._load(conn)
                else:
                    changes = self._filled_gaps(conn) + self._new_changes(conn)
                    if changes:
                        self._apply(conn, changes)
        except BaseException:
            # A half-applied batch must not be taken for a caught-up index.
            self.position = None
            raise
        self._fit_approximate()

    def _load(self, conn: Connection) -> None:
        """Position at the log's head, note seqs missing below it, load every face."""
        now = self.owner.clock()
        head = log.latest_seq(conn)
        window_start = max(0, head - self.owner.load_gap_window)
        visible = log.seqs_between(conn, window_start, head)
        # Gaps noted before a reload stay: their changes may still appear.
        self.gaps.update({seq: now for seq in _missing(window_start, head, visible)})
        loaded = log.collection_vectors(conn, self.collection_pk)
        self.matrix.replace_all(loaded.pks, loaded.vectors)
        self.ivf = None
        self.position = head

    def _new_changes(self, conn: Connection) -> list[log.Change]:
        """The collection's changes past the position; notes seqs not yet visible."""
        assert self.position is not None
        after = self.position
        head, count = log.log_extent_after(conn, after)
        if head == after:
            return []
        missing_count = (head - after) - count
        if missing_count == 0:
            found = log.collection_changes_between(
                conn, self.collection_pk, after, head
            )
        elif missing_count + len(self.gaps) > MAX_GAPS:
            self.gaps.clear()
            found = [log.Change(head, self.collection_pk, None, _RELOAD)]
        else:
            every = log.all_changes_between(conn, after, head)
            now = self.owner.clock()
            for seq in _missing(after, head, [change.seq for change in every]):
                self.gaps[seq] = now
            found = [c for c in every if c.collection_pk == self.collection_pk]
        self.position = head
        return found

    def _filled_gaps(self, conn: Connection) -> list[log.Change]:
        """Changes that appeared at seqs seen missing before; forgets old gaps."""
        if not self.gaps:
            return []
        appeared = log.changes_at(conn, sorted(self.gaps))
        for change in appeared:
            del self.gaps[change.seq]
        too_old = self.owner.clock() - self.owner.gap_timeout_s
        self.gaps = {seq: seen for seq, seen in self.gaps.items() if seen >= too_old}
        return [c for c in appeared if c.collection_pk == self.collection_pk]

    def _apply(self, conn: Connection, changes: list[log.Change]) -> None:
        """Make the faces the changes touched agree with their rows in the store."""
        touched = list(
            dict.fromkeys(c.face_pk for c in changes if c.face_pk is not None)
        )
        reload = any(c.change not in ("add", "delete") for c in changes) or (
            len(touched) > max(RELOAD_ABOVE, len(self.matrix) // 2)
        )
        if reload:
            head = self.position
            self._load(conn)
            self.position = max(self.position or 0, head or 0)
            return

        stored = log.vectors_of(conn, self.collection_pk, touched)
        in_store = set(stored.pks.tolist())
        removed = self.matrix.remove(pk for pk in touched if pk not in in_store)

        rows = self.matrix.rows_of(stored.pks.tolist())
        held = rows >= 0
        unchanged = np.zeros(len(rows), dtype=bool)
        if held.any():
            same = (self.matrix.vectors[rows[held]] == stored.vectors[held]).all(axis=1)
            unchanged[held] = same
        changed_pks = stored.pks[~unchanged]
        changed_vectors = stored.vectors[~unchanged]
        replaced = stored.pks[held & ~unchanged].tolist()
        self.matrix.upsert(changed_pks, changed_vectors)
        if self.ivf is not None:
            self.ivf.remove(removed + replaced)
            self.ivf.add(changed_pks, changed_vectors)

    def _fit_approximate(self) -> None:
        """Train, retrain or drop the IVF index as the collection's size requires."""
        size = len(self.matrix)
        threshold = self.owner.approximate_above
        if size > threshold:
            if self.ivf is None or self.ivf.needs_training(size):
                self.ivf = IvfIndex(self.matrix)
        elif self.ivf is not None and size <= threshold // 2:
            self.ivf = None

    # --- searching -------------------------------------------------------------------

    def search(
        self,
        queries: npt.NDArray[np.float32],
        *,
        max_distance: float,
        limit: int,
        exclude: Collection[int],
    ) -> Answers:
        if not len(queries) or not len(self.matrix) or limit <= 0:
            return [[] for _ in range(len(queries))]
        if queries.shape[1] != self.matrix.dimension:
            raise ValueError(
                f"queries of dimension {queries.shape[1]} for a collection of "
                f"dimension {self.matrix.dimension}"
            )
        excluded_held = sum(1 for pk in exclude if pk in self.matrix) if exclude else 0
        keep = limit + excluded_held
        found: Candidates
        if self.ivf is not None:
            found = self.ivf.candidates(self.matrix, queries, max_distance, keep)
        else:
            found = self.matrix.candidates(queries, max_distance, keep)
        return self.matrix.results(
            queries, found, max_distance=max_distance, limit=limit, exclude=exclude
        )


def _missing(after: int, upto: int, visible: list[int]) -> list[int]:
    """The seqs in `(after, upto]` not among `visible`."""
    if upto - after == len(visible):
        return []
    every = np.arange(after + 1, upto + 1, dtype=np.int64)
    return np.setdiff1d(every, np.asarray(visible, dtype=np.int64)).tolist()  # type: ignore[no-any-return]
