"""DisassociateFaces and SearchFacesByImage throughput with one and with two server
processes on one store, on SQLite and on PostgreSQL.

    python bench/bench_cluster.py [--seconds N] [--clients C] [--faces N]
        [--postgres-url URL]

Each store gets a collection of `--faces` made-up faces (plus the real faces of the
probe photos) and a pool of users whose faces the benchmark moves, as in
`bench_associations.py`. Then, for one and for two `rekollect serve` processes on that
store (separate processes on separate ports, as behind a load balancer: client c talks
to server c mod n), C client processes send pre-built requests on keep-alive sockets
for `--seconds`:

- DisassociateFaces with 10 face ids per call (the faces are given back with
  AssociateFaces afterwards, untimed, and every answer is checked);
- SearchFacesByImage with a real LFW photo (every answer must find the photo's own
  face among its matches).

The engine's worker processes are split so that one server and two servers run the
same number in all (the cores); the figures therefore show what a second node on the
same machine adds or costs, not what a second machine adds.

PostgreSQL runs when `--postgres-url` (or REKOLLECT_TEST_POSTGRES_URL) names a role
with CREATEDB: a database of its own is created and dropped. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench_associations import (
    Figure,
    Slot,
    _figure,
    build_pool,
    check,
    http_request,
    request_body,
    run_shares,
)
from harness import REGION, print_table, running_server
from synthetic import new_face, person_faces

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "datasets" / "lfw-dev"
FACES_PER_CALL = 10
PROBES = 8


@contextmanager
def postgres_store(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database for the run, dropped at the end."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.pool import NullPool

    from rekollect.storage.database import normalize_url

    admin = make_url(normalize_url(admin_url))
    name = f"rekollect_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def prepare(url: str, faces: int, slots: int) -> tuple[str, list[Slot], list[bytes]]:
    """Fill the store: a collection, the users' pool, `faces` made-up faces and the
    probe photos' real faces. Returns the collection, the pool and the probe photos."""
    import rekollect.inprocess
    from rekollect.config import load_settings
    from rekollect.service.collection import create_collection
    from rekollect.service.faces import add_faces
    from rekollect.storage.records import Scope

    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(scratch, database_url=url, region=REGION)
        service = settings.open_service(engine_workers=0)
    scope = Scope(service.account_id, REGION)
    collection_id = f"cluster-{uuid.uuid4().hex[:8]}"
    create_collection(service, scope, collection_id=collection_id)
    pool = build_pool(service, collection_id, FACES_PER_CALL, slots)

    rng = np.random.default_rng(7)
    for start in range(0, faces, 1000):
        batch = [new_face(e) for _ in range(250) for e in person_faces(rng, 4)][
            : min(1000, faces - start)
        ]
        add_faces(service, scope, collection_id, batch)

    probes = [path.read_bytes() for path in sorted(LFW.rglob("*.jpg"))[:PROBES]]
    client = rekollect.inprocess.service_client(service, region_name=REGION)
    for number, image in enumerate(probes):
        client.index_faces(
            CollectionId=collection_id,
            Image={"Bytes": image},
            ExternalImageId=f"probe-{number}",
            MaxFaces=1,
        )
    service.close()
    return collection_id, pool, probes


def measure_disassociate(
    ports: Sequence[int],
    clients: int,
    collection_id: str,
    pool: list[Slot],
    seconds: float,
) -> Any:
    """DisassociateFaces for `seconds`, then every moved face given back (untimed)."""
    taken = send_slots(
        ports, clients, collection_id, "DisassociateFaces", pool, seconds
    )
    given_back = [pool[i] for i in sorted(taken.done)]
    send_slots(
        ports, clients, collection_id, "AssociateFaces", given_back, float("inf")
    )
    return taken


def send_slots(
    ports: Sequence[int],
    clients: int,
    collection_id: str,
    operation: str,
    slots: list[Slot],
    seconds: float,
) -> Any:
    """`operation` on each slot, shared out among `clients`; every answer checked."""
    shares = [list(range(c, len(slots), clients)) for c in range(clients)]
    requests = [
        [
            http_request(0, operation, request_body(collection_id, operation, slots[i]))
            for i in share
        ]
        for share in shares
    ]
    run = run_shares(operation, ports, shares, requests, seconds)
    check(operation, slots, run)
    return run


def measure_search(
    ports: Sequence[int],
    clients: int,
    collection_id: str,
    probes: list[bytes],
    seconds: float,
) -> Any:
    """SearchFacesByImage of the probe photos, round robin, for `seconds`."""
    bodies = [
        json.dumps(
            {
                "CollectionId": collection_id,
                "Image": {"Bytes": base64.b64encode(image).decode()},
                "MaxFaces": 5,
            }
        ).encode()
        for image in probes
    ]
    per_client = 100_000
    shares = [[n % len(bodies) for n in range(per_client)] for _ in range(clients)]
    requests = [
        [http_request(0, "SearchFacesByImage", bodies[i]) for i in share]
        for share in shares
    ]
    run = run_shares("SearchFacesByImage", ports, shares, requests, seconds)
    for answer in run.answers:
        externals = {m["Face"].get("ExternalImageId") for m in answer["FaceMatches"]}
        if not externals & {f"probe-{n}" for n in range(len(probes))}:
            raise RuntimeError(f"SearchFacesByImage found no probe face: {answer}")
    return run


def measure_store(
    backend: str, url: str, args: argparse.Namespace, scratch: Path
) -> list[Figure]:
    started = time.perf_counter()
    collection_id, pool, probes = prepare(url, args.faces, args.slots)
    print(f"{backend}: set-up {time.perf_counter() - started:.1f}s", flush=True)
    cores = os.cpu_count() or 1
    figures = []
    for nodes in (1, 2):
        engine_workers = max(1, cores // nodes)
        with ExitStack() as stack:
            ports = [
                int(
                    stack.enter_context(
                        running_server(
                            scratch,
                            f"{backend}-{nodes}-{number}.log",
                            "--database-url",
                            url,
                            "--engine-workers",
                            str(engine_workers),
                        )  # fmt: skip
                    ).rsplit(":", 1)[1]
                )
                for number in range(nodes)
            ]
            name = f"{backend}, {nodes} server{'s' if nodes > 1 else ''}"
            # Untimed warm-up: engine workers started, indexes loaded, on every node.
            measure_search(ports, nodes * 2, collection_id, probes, 2.0)
            run = measure_disassociate(
                ports, args.clients, collection_id, pool, args.seconds
            )
            figures.append(
                _figure(name, "DisassociateFaces", FACES_PER_CALL, args.clients, run)
            )
            run = measure_search(
                ports, args.clients, collection_id, probes, args.seconds
            )
            figures.append(_figure(name, "SearchFacesByImage", 1, args.clients, run))
            print(f"  {name}: done", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not LFW.is_dir():
        print(f"needs the probe photos of {LFW}", file=sys.stderr)
        return 2
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="rekollect-cluster-") as directory:
        scratch = Path(directory)
        (scratch / "sqlite").mkdir()
        from rekollect.storage.database import sqlite_url

        figures += measure_store(
            "SQLite", sqlite_url(scratch / "sqlite"), args, scratch
        )
        if args.postgres_url:
            with postgres_store(args.postgres_url) as url:
                figures += measure_store("PostgreSQL", url, args, scratch)
        else:
            print(
                "PostgreSQL skipped: no --postgres-url or REKOLLECT_TEST_POSTGRES_URL"
            )
    report(figures, args)
    return 0


def report(figures: list[Figure], args: argparse.Namespace) -> None:
    print()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {args.clients} "
        f"clients, {args.seconds:g}s per measurement, {args.faces:,} faces"
    )
    rows = [
        (f.path, f.operation, str(f.face_count), str(f.calls),
         f"{f.per_second:,.1f}", f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}")
        for f in figures
    ]  # fmt: skip
    print_table(
        "One and two server processes on one store",
        ("store, servers", "operation", "ids", "calls", "req/s", "p50 ms", "p99 ms"),
        rows,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=4, help="load processes (4)")
    parser.add_argument(
        "--faces", type=int, default=10_000, help="made-up faces in the collection"
    )
    parser.add_argument(
        "--slots", type=int, default=3000, help="DisassociateFaces calls at most"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("REKOLLECT_TEST_POSTGRES_URL"),
        help="a PostgreSQL role with CREATEDB (default: REKOLLECT_TEST_POSTGRES_URL)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
