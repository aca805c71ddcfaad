"""A collection's face vectors as one contiguous float32 matrix, and exact search on it.

Why one matrix: an exact scan is bound by memory bandwidth (measured in
shared/reference/vector-search.md), so the vectors must be read as one dense
block by a matrix product; and every approximate index is built from the same block.
Rows are kept dense by moving the last row into a removed row's place, so additions
and removals cost O(1) (amortised: the capacity doubles when full and halves when a
quarter full), and a dict maps face primary keys to rows.

Memory per face at dimension d (float32): 4·d bytes for the vector plus 4 for its
squared norm and 8 for its primary key (each times the spare capacity, at most 2x
right after doubling), plus about 100 bytes for the pk→row dict entry and its two
Python ints. At d = 128 that is about 630 bytes per face when the matrix is full.

Search: squared distances come from ||x||² − 2·q·x + ||q||², one matrix product per
block of rows for a whole batch of queries, so a user's 100 faces cost one pass over
the matrix rather than 100. Rows within a slightly widened threshold become
candidates; at most `keep` of them per query survive (argpartition); their distances
are then computed again directly, in float64, so that the threshold decision and the
order do not depend on the cancellation error of the expansion.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]

MIN_CAPACITY = 64
# Elements of the (queries x rows) distance block computed per matrix product: 1 MiB
# of float32 keeps it in cache while the threshold filter reads it back.
BLOCK_ELEMENTS = 1 << 18
MIN_BLOCK_ROWS = 1024
# Candidates accumulated across blocks before they are cut back to `keep` per query.
PRUNE_AT = 1 << 16
# Candidates whose distances are recomputed in float64 per step (8 MiB at d = 128).
RECOMPUTE_CHUNK = 8192
# The expansion ||x||² − 2·q·x + ||q||² in float32 errs by a few units in the last
# place of ||x||² + ||q||² per term summed; this relative margin is far above that.
RELATIVE_MARGIN = 1e-5


@dataclass
class Candidates:
    """Possible matches: query numbers, matrix rows and approximate squared distances."""

    queries: Int64Array
    rows: Int64Array
    squared: npt.NDArray[np.float64]

    @staticmethod
    def empty() -> Candidates:
        return Candidates(
            np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        )

    @staticmethod
    def join(parts: list[Candidates]) -> Candidates:
        if not parts:
            return Candidates.empty()
        if len(parts) == 1:
            return parts[0]
        return Candidates(
            np.concatenate([p.queries for p in parts]),
            np.concatenate([p.rows for p in parts]),
            np.concatenate([p.squared for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.rows)

    def nearest(self, keep: int) -> Candidates:
        """At most `keep` candidates per query, the nearest by approximate distance."""
        if len(self) <= keep:
            return self
        order = np.lexsort((self.squared, self.queries))
        queries = self.queries[order]
        first_of_query = np.searchsorted(queries, queries, side="left")
        kept = order[(np.arange(len(order)) - first_of_query) < keep]
        return Candidates(self.queries[kept], self.rows[kept], self.squared[kept])


class VectorMatrix:
    """Face vectors by primary key, as the first `len(self)` rows of one matrix."""

    def __init__(self, dimension: int | None = None) -> None:
        self.dimension = dimension
        self._vectors: Float32Array = np.empty((0, dimension or 0), np.float32)
        self._norms: Float32Array = np.empty(0, np.float32)
        self._pks: Int64Array = np.empty(0, np.int64)
        self._row_of: dict[int, int] = {}
        # An upper bound of the squared norms (never lowered by removals), for the
        # margin of the threshold filter.
        self._max_norm2 = 0.0

    # --- contents --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, pk: object) -> bool:
        return pk in self._row_of

    @property
    def capacity(self) -> int:
        return len(self._pks)

    @property
    def vectors(self) -> Float32Array:
        """The live rows (a view: valid until the next change)."""
        return self._vectors[: len(self)]

    @property
    def pks(self) -> Int64Array:
        """The primary key of each live row (a view: valid until the next change)."""
        return self._pks[: len(self)]

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the pk→row dict comes on top)."""
        return self._vectors.nbytes + self._norms.nbytes + self._pks.nbytes

    def rows_of(self, pks: Iterable[int]) -> Int64Array:
        """The rows of `pks`, -1 for those absent."""
        get = self._row_of.get
        return np.fromiter((get(int(pk), -1) for pk in pks), dtype=np.int64)

    def replace_all(self, pks: Int64Array, vectors: Float32Array) -> None:
        """Hold exactly these faces (pks must be distinct)."""
        count = len(pks)
        if count and vectors.shape != (count, vectors.shape[1]):
            raise ValueError("one vector per primary key expected")
        if count:
            self.dimension = int(vectors.shape[1])
        capacity = max(MIN_CAPACITY, _next_power_of_two(count))
        self._vectors = np.empty((capacity, self.dimension or 0), np.float32)
        self._norms = np.empty(capacity, np.float32)
        self._pks = np.empty(capacity, np.int64)
        if count:
            self._vectors[:count] = vectors
            self._pks[:count] = pks
        self._norms[:count] = _squared_norms(self._vectors[:count])
        self._row_of = dict(zip(self._pks[:count].tolist(), range(count), strict=True))
        if len(self._row_of) != count:
            raise ValueError("duplicate primary keys")
        self._max_norm2 = float(self._norms[:count].max()) if count else 0.0

    def upsert(self, pks: Int64Array, vectors: Float32Array) -> None:
        """Add faces, or replace the vectors of pks already held (pks distinct)."""
        if not len(pks):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.dimension is None or not len(self):
            # An empty matrix takes the dimension of what it is given first.
            self.dimension = int(vectors.shape[1])
            if self._vectors.shape[1] != self.dimension:
                self._vectors = np.empty((self.capacity, self.dimension), np.float32)
        if vectors.shape != (len(pks), self.dimension):
            raise ValueError(
                f"vectors of shape {vectors.shape} for {len(pks)} faces of dimension "
                f"{self.dimension}"
            )
        rows = self.rows_of(pks)
        fresh = rows < 0
        fresh_count = int(fresh.sum())
        self._reserve(len(self) + fresh_count)
        start = len(self)
        rows[fresh] = np.arange(start, start + fresh_count)
        self._vectors[rows] = vectors
        self._pks[rows] = pks
        norms = _squared_norms(vectors)
        self._norms[rows] = norms
        self._max_norm2 = max(self._max_norm2, float(norms.max()))
        self._row_of.update(
            zip(pks[fresh].tolist(), range(start, start + fresh_count), strict=True)
        )

    def remove(self, pks: Iterable[int]) -> list[int]:
        """Remove faces (absent ones are ignored); returns the pks that were held."""
        removed = []
        for pk in pks:
            row = self._row_of.pop(int(pk), None)
            if row is None:
                continue
            removed.append(int(pk))
            last = len(self._row_of)  # the former last row, now past the end
            if row != last:
                moved = int(self._pks[last])
                self._vectors[row] = self._vectors[last]
                self._norms[row] = self._norms[last]
                self._pks[row] = moved
                self._row_of[moved] = row
        if len(self) < self.capacity // 4 and self.capacity > MIN_CAPACITY:
            self._resize(max(MIN_CAPACITY, 2 * len(self)))
        return removed

    def _reserve(self, size: int) -> None:
        if size > self.capacity:
            self._resize(max(MIN_CAPACITY, _next_power_of_two(size)))

    def _resize(self, capacity: int) -> None:
        count = len(self)
        vectors = np.empty((capacity, self.dimension or 0), np.float32)
        vectors[:count] = self._vectors[:count]
        norms = np.empty(capacity, np.float32)
        norms[:count] = self._norms[:count]
        pks = np.empty(capacity, np.int64)
        pks[:count] = self._pks[:count]
        self._vectors, self._norms, self._pks = vectors, norms, pks

    # --- search ----------------------------------------------------------------------

    def loose_squared_radius(
        self, queries: Float32Array, max_distance: float
    ) -> npt.NDArray[np.float64]:
        """Per query, a squared radius wide enough for the float32 expansion's error."""
        query_norms = _squared_norms(queries).astype(np.float64)
        margin = RELATIVE_MARGIN * (self._max_norm2 + query_norms) + 1e-12
        return float(max_distance) ** 2 + margin

    def candidates(
        self, queries: Float32Array, max_distance: float, keep: int
    ) -> Candidates:
        """Rows within `max_distance` of each query (widened), at most `keep` each."""
        count = len(self)
        if not count or keep <= 0 or max_distance < 0:
            return Candidates.empty()
        query_norms = _squared_norms(queries)
        # Row x is a candidate when ||x||² − 2·q·x <= r² − ||q||².
        bounds = self.loose_squared_radius(queries, max_distance) - query_norms
        bounds32 = bounds.astype(np.float32)[:, None]
        block = min(count, max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // len(queries)))
        scaled = queries * np.float32(-2.0)
        buffer = np.empty((len(queries), block), np.float32)
        hits = np.empty((len(queries), block), np.bool_)
        found: list[Candidates] = []
        pending = 0
        for start in range(0, count, block):
            stop = min(count, start + block)
            width = stop - start
            # One matrix product, then in place: −2·q·x + ||x||², compared with the bound.
            scores = np.matmul(
                scaled, self._vectors[start:stop].T, out=buffer[:, :width]
            )
            np.add(scores, self._norms[start:stop], out=scores)
            within = np.less_equal(scores, bounds32, out=hits[:, :width])
            # flatnonzero: np.nonzero on a 2-D mask is ~50x slower.
            flat = np.flatnonzero(within)
            if not len(flat):
                continue
            query_numbers, rows = np.divmod(flat, width)
            squared = scores[query_numbers, rows].astype(np.float64)
            squared += query_norms[query_numbers]
            part = Candidates(query_numbers, rows + start, squared).nearest(keep)
            found.append(part)
            pending += len(part)
            if pending > max(PRUNE_AT, 2 * keep * len(queries)):
                found = [Candidates.join(found).nearest(keep)]
                pending = len(found[0])
        return Candidates.join(found).nearest(keep)

    def exact_squared(
        self, queries: Float32Array, candidates: Candidates
    ) -> npt.NDArray[np.float64]:
        """Squared distances of the candidates, computed directly in float64."""
        result = np.empty(len(candidates), np.float64)
        for start in range(0, len(candidates), RECOMPUTE_CHUNK):
            stop = min(len(candidates), start + RECOMPUTE_CHUNK)
            rows = candidates.rows[start:stop]
            difference = self._vectors[rows].astype(np.float64)
            difference -= queries[candidates.queries[start:stop]]
            result[start:stop] = np.einsum("ij,ij->i", difference, difference)
        return result

    def results(
        self,
        queries: Float32Array,
        candidates: Candidates,
        *,
        max_distance: float,
        limit: int,
        exclude: Collection[int] = (),
    ) -> list[list[tuple[int, float]]]:
        """Exact (pk, distance) lists per query: within the threshold, nearest first.

        Ties are broken by primary key, so answers do not depend on row order.
        """
        answers: list[list[tuple[int, float]]] = [[] for _ in range(len(queries))]
        if not len(candidates):
            return answers
        squared = self.exact_squared(queries, candidates)
        pks = self._pks[candidates.rows]
        within = squared <= float(max_distance) ** 2
        if exclude:
            excluded = np.fromiter((int(pk) for pk in exclude), np.int64)
            within &= ~np.isin(pks, excluded)
        query_numbers = candidates.queries[within]
        pks, squared = pks[within], squared[within]
        order = np.lexsort((pks, squared, query_numbers))
        distances = np.sqrt(squared[order]).tolist()
        for number, pk, distance in zip(
            query_numbers[order].tolist(), pks[order].tolist(), distances, strict=True
        ):
            answer = answers[number]
            if len(answer) < limit:
                answer.append((pk, distance))
        return answers


def _squared_norms(vectors: Float32Array) -> Float32Array:
    norms: Float32Array = np.einsum("ij,ij->i", vectors, vectors)
    return norms


def _next_power_of_two(size: int) -> int:
    return 1 << max(0, size - 1).bit_length()
