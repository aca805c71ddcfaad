"""Vector search in `rekollect.index`: latency per query, exact and IVF, and the cost
of catching up with the change log.

    python bench/bench_search.py [--sizes 10000,100000] [--large] [--queries N]
        [--batches N] [--data-dir D]

For each size N a collection is filled with N synthetic face-like embeddings
(identities of 4 faces, same-identity distances about 0.3-0.55, others about
0.8-1.2) in a SQLite store, and searched through `CollectionIndexes.search`, the
call the service makes, so every figure includes the catch-up read of the change
log that precedes each search. Queries are fresh faces of enrolled identities,
threshold 0.6, limit 100.

- exact: numpy, one matrix product per block of rows;
- IVF: faiss IVF-Flat (nlist ≈ 4·√N, nprobe 3% of the lists, at least 16),
  forced with approximate_above=0;
- single: one query per call; batch: 100 queries in one call (as SearchUsers does);
  per-query figures of a batch are its time divided by 100;
- recall: the share of the faces exact search finds within the threshold that IVF
  also finds (thr-recall), and the share of queries for which it finds all of them;
- first use: loading the collection from the store (and training IVF);
- catch-up: `count()` (a catch-up and nothing else) with no change, and after 1 or
  100 faces added, or 100 deleted, through a second Service on the same file (as
  another process would).

--large adds 1M faces (about 1 GB of SQLite, minutes of set-up; IVF training alone
is about 40 s on two cores). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import bench_dir, print_table
from synthetic import DIMENSION, new_face

REGION = "us-east-1"
THRESHOLD = 0.6
LIMIT = 100
BATCH = 100
FACES_PER_IDENTITY = 4
INSERT_BATCH = 10_000
CATCH_UP_ROUNDS = 30


@dataclass(frozen=True)
class Latency:
    size: int
    method: str
    mode: str
    calls: int
    p50_ms: float
    p99_ms: float
    per_query_ms: float


@dataclass(frozen=True)
class SizeFigures:
    size: int
    method: str
    first_use_s: float
    recall: float | None
    all_found: float | None
    bytes_per_face: float


@dataclass(frozen=True)
class CatchUp:
    size: int
    method: str
    change: str
    p50_ms: float
    p99_ms: float


# --- data ----------------------------------------------------------------------------


def identities(rng: np.random.Generator, people: int) -> tuple[np.ndarray, np.ndarray]:
    """People's centres and FACES_PER_IDENTITY faces each, spread 0.3-0.55 apart."""
    scale = 1 / np.sqrt(2 * DIMENSION)
    centres = (rng.standard_normal((people, DIMENSION)) * scale).astype(np.float32)
    spread = rng.uniform(0.3, 0.55, (people, FACES_PER_IDENTITY, 1)) * scale
    noise = rng.standard_normal((people, FACES_PER_IDENTITY, DIMENSION)) * spread
    faces = (centres[:, None, :] + noise).reshape(-1, DIMENSION).astype(np.float32)
    return centres, faces


def fresh_faces(
    rng: np.random.Generator, centres: np.ndarray, count: int
) -> np.ndarray:
    scale = 1 / np.sqrt(2 * DIMENSION)
    chosen = centres[rng.choice(len(centres), count, replace=False)]
    spread = rng.uniform(0.3, 0.55, (count, 1)) * scale
    return (chosen + rng.standard_normal(chosen.shape) * spread).astype(np.float32)


def fill(service: Any, collection_id: str, embeddings: np.ndarray) -> None:
    from rekollect.service.faces import add_faces
    from rekollect.storage.records import Scope

    scope = Scope(service.account_id, REGION)
    for start in range(0, len(embeddings), INSERT_BATCH):
        batch = embeddings[start : start + INSERT_BATCH]
        add_faces(service, scope, collection_id, [new_face(e) for e in batch])


# --- measuring -----------------------------------------------------------------------


def timed(call: Callable[[], object], rounds: int) -> np.ndarray:
    """Seconds per call, after one untimed call."""
    call()
    times = np.empty(rounds)
    for number in range(rounds):
        started = time.perf_counter()
        call()
        times[number] = time.perf_counter() - started
    return times


def latencies(
    indexes: Any, pk: int, queries: np.ndarray, size: int, method: str, batches: int
) -> list[Latency]:
    figures = []
    single = iter(queries)
    times = timed(
        lambda: indexes.search(
            pk, next(single)[None, :], max_distance=THRESHOLD, limit=LIMIT
        ),
        len(queries) - 1,
    )
    figures.append(_latency(size, method, "single", times, 1))
    batch = queries[:BATCH]
    times = timed(
        lambda: indexes.search(pk, batch, max_distance=THRESHOLD, limit=LIMIT), batches
    )
    figures.append(_latency(size, method, f"batch of {BATCH}", times, BATCH))
    return figures


def _latency(size: int, method: str, mode: str, times: np.ndarray, per: int) -> Latency:
    p50, p99 = np.percentile(times * 1000, [50, 99])
    return Latency(size, method, mode, len(times), p50, p99, p50 / per)


def recall(approximate: list[Any], exact: list[Any]) -> tuple[float, float]:
    wanted = sum(len(answer) for answer in exact)
    found = sum(len(set(a) & set(e)) for a, e in zip(approximate, exact, strict=True))
    every = np.mean([set(e) <= set(a) for a, e in zip(approximate, exact, strict=True)])
    return found / max(1, wanted), float(every)


def bytes_per_face(indexes: Any, pk: int) -> float:
    """The matrix's arrays plus the pk→row dict (its table and the ints it holds)."""
    matrix = indexes._collection(pk).matrix
    row_of = matrix._row_of
    ints = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in row_of.items())
    return (matrix.nbytes + sys.getsizeof(row_of) + ints) / max(1, len(matrix))


def catch_up_costs(
    indexes: Any,
    pk: int,
    writer: Any,
    collection_id: str,
    rng: np.random.Generator,
    size: int,
    method: str,
) -> list[CatchUp]:
    """count() timed alone: with nothing new, and after writes by another Service."""
    from rekollect.service.faces import add_faces, delete_faces
    from rekollect.storage.records import Scope

    scope = Scope(writer.account_id, REGION)
    figures = [
        _catch_up(size, method, "nothing new", timed(lambda: indexes.count(pk), 200))
    ]
    for label, count in (("1 face added", 1), ("100 faces added", 100)):
        times, added = [], []
        for _ in range(CATCH_UP_ROUNDS):
            faces = [new_face(e) for e in identities(rng, -(-count // 4))[1][:count]]
            add_faces(writer, scope, collection_id, faces)
            added += [face.face_id for face in faces]
            started = time.perf_counter()
            indexes.count(pk)
            times.append(time.perf_counter() - started)
        figures.append(_catch_up(size, method, label, np.array(times)))
    times = []
    for start in range(0, 100 * CATCH_UP_ROUNDS, 100):
        doomed = added[start : start + 100]
        delete_faces(writer, scope, collection_id=collection_id, face_ids=doomed)
        started = time.perf_counter()
        indexes.count(pk)
        times.append(time.perf_counter() - started)
    figures.append(_catch_up(size, method, "100 faces deleted", np.array(times)))
    return figures


def _catch_up(size: int, method: str, change: str, times: np.ndarray) -> CatchUp:
    p50, p99 = np.percentile(times * 1000, [50, 99])
    return CatchUp(size, method, change, p50, p99)


def measure_size(
    size: int, args: argparse.Namespace, data_dir: Path
) -> tuple[list[Latency], list[SizeFigures], list[CatchUp]]:
    from rekollect.index import CollectionIndexes
    from rekollect.service import Service
    from rekollect.service.collection import create_collection, delete_collection
    from rekollect.storage import open_database
    from rekollect.storage.records import Scope

    url = f"sqlite:///{data_dir / 'bench-search.db'}"
    service, writer = Service(open_database(url)), Service(open_database(url))
    scope = Scope(service.account_id, REGION)
    collection_id = f"bench-{size}-{uuid.uuid4().hex[:6]}"
    create_collection(service, scope, collection_id=collection_id)
    rng = np.random.default_rng(size)
    try:
        started = time.perf_counter()
        centres, embeddings = identities(rng, size // FACES_PER_IDENTITY)
        fill(service, collection_id, embeddings)
        print(
            f"  {size:,} faces stored in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        from rekollect.storage import repository as repo

        with service.database.read() as conn:
            collection = repo.get_collection(conn, scope, collection_id)
        assert collection is not None
        pk = collection.pk
        queries = fresh_faces(rng, centres, max(args.queries, BATCH))

        exact = CollectionIndexes(service.database, approximate_above=10**12)
        ivf = CollectionIndexes(service.database, approximate_above=0)
        lat: list[Latency] = []
        sizes: list[SizeFigures] = []
        answers = {}
        for method, indexes in (("exact", exact), ("IVF", ivf)):
            started = time.perf_counter()
            indexes.count(pk)
            first_use = time.perf_counter() - started
            lat += latencies(indexes, pk, queries, size, method, args.batches)
            answers[method] = indexes.search(
                pk, queries, max_distance=THRESHOLD, limit=LIMIT
            )
            found, every = (None, None)
            if method == "IVF":
                found, every = recall(answers["IVF"], answers["exact"])
            sizes.append(
                SizeFigures(
                    size, method, first_use, found, every, bytes_per_face(indexes, pk)
                )
            )
            print(f"  {method} at {size:,}: searched", flush=True)
        catch_ups = catch_up_costs(exact, pk, writer, collection_id, rng, size, "exact")
        catch_ups += catch_up_costs(ivf, pk, writer, collection_id, rng, size, "IVF")
        return lat, sizes, catch_ups
    finally:
        delete_collection(service, scope, collection_id=collection_id)
        service.database.close()
        writer.database.close()


# --- the report ----------------------------------------------------------------------


def report(
    lat: list[Latency], sizes: list[SizeFigures], catch_ups: list[CatchUp]
) -> None:
    print()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, numpy "
        f"{np.__version__}, threshold {THRESHOLD}, limit {LIMIT}"
    )
    print_table(
        "Search latency (CollectionIndexes.search, catch-up included)",
        ("faces", "method", "mode", "calls", "p50 ms", "p99 ms", "p50 ms/query"),
        [
            (f"{f.size:,}", f.method, f.mode, str(f.calls), f"{f.p50_ms:.2f}",
             f"{f.p99_ms:.2f}", f"{f.per_query_ms:.3f}")
            for f in lat
        ],
    )  # fmt: skip
    print_table(
        "First use, recall against exact, memory of the exact path",
        ("faces", "method", "first use s", "thr-recall", "all-found", "B/face"),
        [
            (f"{f.size:,}", f.method, f"{f.first_use_s:.2f}",
             "-" if f.recall is None else f"{f.recall:.4f}",
             "-" if f.all_found is None else f"{f.all_found:.3f}",
             f"{f.bytes_per_face:.0f}")
            for f in sizes
        ],
    )  # fmt: skip
    print_table(
        "Catch-up (count(): read the change log, apply what is new)",
        ("faces", "method", "change", "p50 ms", "p99 ms"),
        [
            (f"{f.size:,}", f.method, f.change, f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}")
            for f in catch_ups
        ],
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000", help="faces per collection (10000,100000)"
    )
    parser.add_argument("--large", action="store_true", help="also 1,000,000 faces")
    parser.add_argument(
        "--queries", type=int, default=300, help="single-query calls per size (300)"
    )
    parser.add_argument(
        "--batches", type=int, default=20, help="calls with a batch of 100 (20)"
    )
    parser.add_argument(
        "--data-dir", help="where the store lives (default: a temp dir)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    print(
        "$ python "
        + shlex.join(sys.argv if argv is None else ["bench_search.py", *argv])
    )
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.large:
        sizes.append(1_000_000)
    lat: list[Latency] = []
    figures: list[SizeFigures] = []
    catch_ups: list[CatchUp] = []
    with bench_dir(args.data_dir) as data_dir:
        for size in sizes:
            more = measure_size(size, args, data_dir)
            lat += more[0]
            figures += more[1]
            catch_ups += more[2]
    report(lat, figures, catch_ups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
