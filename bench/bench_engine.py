"""IndexFaces throughput against dlib called directly, and SearchFacesByImage latency
at 10k and 100k faces with the search part on its own.

    python bench/bench_engine.py [--images N] [--searches N] [--sizes 10000,100000]

Throughput: the same LFW images (250x250 JPEG) go through

- dlib direct: Pillow decode, HOG detection (retrying with one upsampling when it
  finds nothing), 5-point landmarks and the 128-D descriptor, called straight from
  Python in 1 and in 2 processes;
- rekollect: IndexFaces over HTTP against `rekollect serve --engine-workers W`
  (W = 1, 2), from 2*W client threads, so every worker always has a job waiting.

Overhead is 1 - (rekollect images/s) / (direct images/s) at the same process count.

Search: a collection filled with N stored faces (synthetic face-like embeddings, plus
the real faces of the probes), then SearchFacesByImage over HTTP with a real photo;
the search part (vector index, caught up) is timed on its own in-process on the same
store, and DetectFaces on the same photo shows the engine's share.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from harness import REGION, http_client, print_table, running_server
from synthetic import new_face, person_faces

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "datasets" / "lfw-dev"


# --- dlib called directly --------------------------------------------------------------


def _direct_worker(paths: Sequence[str]) -> int:
    """Analyse every image with plain dlib calls; returns the faces found."""
    import dlib
    from PIL import Image

    from rekollect.engine.dlib_engine import model_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(model_path("shape_predictor_5_face_landmarks.dat"))
    recogniser = dlib.face_recognition_model_v1(
        model_path("dlib_face_recognition_resnet_model_v1.dat")
    )
    found = 0
    for path in paths:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        boxes = detector(pixels, 0) or detector(pixels, 1)
        for box in boxes:
            shape = predictor(pixels, box)
            np.asarray(recogniser.compute_face_descriptor(pixels, shape, 0))
            found += 1
    return found


def direct_rate(paths: Sequence[str], processes: int) -> tuple[float, int]:
    """Images per second of plain dlib over `paths`, split over `processes`."""
    shares = [list(paths[i::processes]) for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(_direct_worker, [share[:2] for share in shares])  # load models
        started = time.perf_counter()
        faces = sum(pool.map(_direct_worker, shares))
        elapsed = time.perf_counter() - started
    return len(paths) / elapsed, faces


# --- rekollect over HTTP ---------------------------------------------------------------


def rekollect_rate(
    data_dir: Path, paths: Sequence[str], engine_workers: int
) -> tuple[float, int]:
    """Images per second through IndexFaces over HTTP."""
    images = [Path(p).read_bytes() for p in paths]
    with running_server(
        data_dir,
        f"server-{engine_workers}.log",
        "--engine-workers",
        str(engine_workers),
    ) as endpoint:
        clients = [http_client(endpoint) for _ in range(2 * engine_workers)]
        collection = f"bench-{uuid.uuid4().hex[:8]}"
        clients[0].create_collection(CollectionId=collection)
        # Start the workers and load their models before timing.
        warm = images[: 2 * engine_workers]
        with ThreadPoolExecutor(len(clients)) as pool:
            list(
                pool.map(
                    lambda i: _index(clients[i], collection, warm[i]), range(len(warm))
                )
            )
            started = time.perf_counter()
            counts = list(
                pool.map(
                    lambda i: _index(clients[i % len(clients)], collection, images[i]),
                    range(len(images)),
                )
            )
            elapsed = time.perf_counter() - started
        clients[0].delete_collection(CollectionId=collection)
    return len(images) / elapsed, sum(counts)


def _index(client: Any, collection: str, image: bytes) -> int:
    answer = client.index_faces(
        CollectionId=collection, Image={"Bytes": image}, QualityFilter="NONE"
    )
    return len(answer["FaceRecords"])


# --- search ---------------------------------------------------------------------------


def search_figures(
    data_dir: Path, probe: Path, sizes: Sequence[int], searches: int
) -> list[tuple[str, ...]]:

    from rekollect.config import load_settings
    from rekollect.engine.similarity import distance_for_similarity
    from rekollect.service.collection import create_collection
    from rekollect.service.faces import add_faces
    from rekollect.storage.records import Scope

    settings = load_settings(data_dir, region=REGION)
    service = settings.open_service(engine_workers=0)
    scope = Scope(service.account_id, REGION)
    rows = []
    probe_image = {"Bytes": probe.read_bytes()}
    with running_server(
        data_dir, "server-search.log", "--engine-workers", "1"
    ) as endpoint:
        client = http_client(endpoint)
        for size in sizes:
            collection = f"search-{size}-{uuid.uuid4().hex[:6]}"
            create_collection(service, scope, collection_id=collection)
            client.index_faces(CollectionId=collection, Image=probe_image)
            rng = np.random.default_rng(size)
            for start in range(0, size - 1, 5000):
                batch = min(5000, size - 1 - start)
                vectors = np.concatenate(
                    [person_faces(rng, 4) for _ in range((batch + 3) // 4)]
                )[:batch]
                add_faces(service, scope, collection, [new_face(v) for v in vectors])
            client.search_faces_by_image(CollectionId=collection, Image=probe_image)

            whole = _timed(
                lambda c=collection: client.search_faces_by_image(
                    CollectionId=c, Image=probe_image
                ),
                searches,
            )
            engine = _timed(lambda: client.detect_faces(Image=probe_image), searches)
            with service.database.read() as conn:
                from rekollect.service.collection import require_collection

                pk = require_collection(conn, scope, collection).pk
            query = person_faces(rng, 1)
            limit = distance_for_similarity(80.0)
            search_part = _timed(
                lambda pk=pk, query=query, limit=limit: service.indexes.search(
                    pk, query, max_distance=limit, limit=4096
                ),
                max(searches, 200),
            )
            rows.append(
                (
                    f"{size:,}",
                    _ms(whole),
                    _ms(engine),
                    _ms(search_part, 50),
                    _ms(search_part, 99),
                )
            )
            print(f"  search at {size:,} faces done", flush=True)
    service.close()
    return rows


def _timed(call: Any, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def _ms(times: list[float], percentile: int = 50) -> str:
    return f"{np.percentile(np.array(times) * 1000, percentile):.2f}"


# --- report ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not LFW.is_dir():
        print(f"lfw-dev not found at {LFW}", file=sys.stderr)
        return 2
    with open(LFW / "pairs.csv") as pairs:
        names = sorted(
            {row[k] for row in csv.DictReader(pairs) for k in ("file_a", "file_b")}
        )
    paths = [str(LFW / "images" / name) for name in names[: args.images]]
    print(f"python {' '.join(sys.argv)}")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {len(paths)} images"
    )

    rows = []
    with tempfile.TemporaryDirectory(prefix="rekollect-bench-") as directory:
        for processes in (1, 2):
            direct, direct_faces = direct_rate(paths, processes)
            served, served_faces = rekollect_rate(Path(directory), paths, processes)
            rows.append(
                (
                    str(processes),
                    f"{direct:.2f}",
                    f"{served:.2f}",
                    f"{100 * (1 - served / direct):.1f}%",
                    f"{direct_faces}/{served_faces}",
                )
            )
            print(f"  {processes} process(es) done", flush=True)
        search_rows = []
        if args.sizes:
            sizes = [int(s) for s in args.sizes.split(",")]
            probe = Path(paths[0])
            search_rows = search_figures(Path(directory), probe, sizes, args.searches)

    print_table(
        "IndexFaces throughput (images/s)",
        ("processes", "dlib direct", "rekollect HTTP", "overhead", "faces"),
        rows,
    )
    if search_rows:
        print_table(
            "SearchFacesByImage (ms)",
            ("faces", "whole call p50", "DetectFaces p50", "search p50", "search p99"),
            search_rows,
        )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120, help="LFW images (120)")
    parser.add_argument(
        "--searches", type=int, default=30, help="calls per figure (30)"
    )
    parser.add_argument(
        "--sizes", default="10000,100000", help="collection sizes for search ('' skips)"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
