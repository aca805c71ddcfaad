"""faiss IVF-Flat over a collection's vectors, for collections too large to scan.

Why IVF-Flat and these settings (measured in shared/reference/vector-search.md): face
clusters are tiny and all identities roughly equidistant, which defeats graph indexes
(HNSW misses whole identities), while an inverted file probing about 3% of its lists
finds every face within the threshold. IVF-Flat keeps the full vectors, so the
distances it computes are exact L2 for every face it looks at; the caller recomputes
them anyway, from the matrix, so exact and approximate paths decide alike.

- nlist ≈ 4·√N lists, and never fewer than 39 training vectors per list (below that
  k-means has too little data and faiss says so); trained on at most 50 vectors per
  list sampled from the matrix.
- nprobe = 3% of the lists, at least `MIN_NPROBE` (small indexes have few lists, and
  3% of 50 lists is a single list).
- A hashtable direct map, so removing a face costs microseconds instead of a scan of
  the lists.
- Face primary keys are the faiss ids, so rows may move in the matrix freely.

Threads: faiss parallelises with OpenMP, and OpenMP's thread count is a per-thread
setting (a thread that never set it gets the process default, all cores). Searches
run on request threads, many at once, so each faiss call made here first sets one
thread for the calling thread; training, a rare, long job, uses `TRAIN_THREADS`.

BLAS: faiss only uses BLAS for exhaustive distance computations with at least
`distance_compute_blas_threshold` queries (128,000 in faiss 1.15.1); below that it
loops, which made a batch of 100 queries against a flat index 14x slower in the
measurements. The coarse quantiser is such a flat index, so the threshold is lowered
to 20 when this module is imported (a process-wide faiss setting).

Memory on top of the matrix: the lists hold a copy of each vector (4·d bytes) and its
id (8 bytes), plus the hashtable entry (about 30 bytes), and 4·d bytes per list for
the centroids: about 560 bytes per face at d = 128.
"""

from __future__ import annotations

import math
import os

import faiss
import numpy as np

from rekollect.index.vectors import Candidates, Float32Array, Int64Array, VectorMatrix

MIN_TRAINING_PER_LIST = 39
MAX_TRAINING_PER_LIST = 50
NPROBE_FRACTION = 0.03
MIN_NPROBE = 16
TRAIN_THREADS = os.cpu_count() or 1
SEARCH_THREADS = 1
BLAS_THRESHOLD = 20
# The collection may grow this many times over the size the lists were trained for
# before they are trained again.
RETRAIN_GROWTH = 4

faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD


def list_count(size: int) -> int:
    """nlist for `size` vectors: about 4·√N, with enough training data per list."""
    return max(1, min(round(4 * math.sqrt(size)), size // MIN_TRAINING_PER_LIST))


def probe_count(lists: int) -> int:
    return min(lists, max(MIN_NPROBE, math.ceil(NPROBE_FRACTION * lists)))


class IvfIndex:
    """An IVF-Flat index of face vectors keyed by primary key."""

    def __init__(self, matrix: VectorMatrix, *, seed: int = 1234) -> None:
        """Train on a sample of the matrix's vectors and add all of them."""
        vectors, pks = matrix.vectors, matrix.pks
        size, dimension = vectors.shape
        self.dimension = dimension
        self.trained_size = int(size)
        self.lists = list_count(size)
        self.probes = probe_count(self.lists)
        self._quantizer = faiss.IndexFlatL2(
            dimension
        )  # referenced: faiss does not own it
        self._index = faiss.IndexIVFFlat(
            self._quantizer, dimension, self.lists, faiss.METRIC_L2
        )
        self._index.cp.seed = seed
        sample_size = min(size, MAX_TRAINING_PER_LIST * self.lists)
        sample = vectors
        if sample_size < size:
            rows = np.random.default_rng(seed).choice(size, sample_size, replace=False)
            sample = vectors[np.sort(rows)]
        faiss.omp_set_num_threads(TRAIN_THREADS)
        try:
            self._index.train(np.ascontiguousarray(sample))
            self._index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
            self._index.add_with_ids(np.ascontiguousarray(vectors), pks.copy())
        finally:
            faiss.omp_set_num_threads(SEARCH_THREADS)
        self._index.nprobe = self.probes

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def needs_training(self, size: int) -> bool:
        return size > RETRAIN_GROWTH * self.trained_size

    def add(self, pks: Int64Array, vectors: Float32Array) -> None:
        """Add faces whose pks are not in the index (replace: remove them first)."""
        if len(pks):
            faiss.omp_set_num_threads(SEARCH_THREADS)
            self._index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32),
                np.ascontiguousarray(pks, dtype=np.int64),
            )

    def remove(self, pks: list[int]) -> None:
        if pks:
            faiss.omp_set_num_threads(SEARCH_THREADS)
            ids = np.asarray(pks, dtype=np.int64)
            # The hashtable direct map only removes through an IDSelectorArray.
            self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))

    def candidates(
        self,
        matrix: VectorMatrix,
        queries: Float32Array,
        max_distance: float,
        keep: int,
    ) -> Candidates:
        """Faces in the probed lists within the (widened) threshold, `keep` per query.

        Returned as matrix rows, so the caller finishes exactly as for an exact scan.
        """
        if not len(self) or keep <= 0 or max_distance < 0:
            return Candidates.empty()
        radius = float(matrix.loose_squared_radius(queries, max_distance).max())
        faiss.omp_set_num_threads(SEARCH_THREADS)
        limits, squared, ids = self._index.range_search(
            np.ascontiguousarray(queries), radius
        )
        counts = np.diff(limits).astype(np.int64)
        query_numbers = np.repeat(np.arange(len(queries), dtype=np.int64), counts)
        found = Candidates(
            query_numbers, ids.astype(np.int64), squared.astype(np.float64)
        ).nearest(keep)
        rows = matrix.rows_of(found.rows.tolist())
        held = rows >= 0  # always all, unless the index and the matrix disagree
        return Candidates(found.queries[held], rows[held], found.squared[held])
