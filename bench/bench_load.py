"""A bounded load test on loopback: throughput, latency, errors and server memory.

    python bench/bench_load.py [--seconds 60] [--clients 4] [--workers 1]
        [--image-share 0.05] [--data-dir D]

A `rekollect serve` process with one access key serves C client processes, each a
boto3 client signing with that key (retries off, so every failure shows), for the
given time. Each client mixes, at random:

- reads (40%): DescribeCollection, ListUsers, ListFaces;
- searches (30%): SearchFaces by a stored face, SearchUsers by a user;
- writes (30 %): AssociateFaces and DisassociateFaces of the client's own faces
  (each answer checked), CreateUser and DeleteUser;
- images (`--image-share`, taken from the above): SearchFacesByImage and IndexFaces
  of a real photo, if the shared dataset is there, so the engine pool runs too.

The collection starts with 2,000 made-up faces and 200 users. The server's resident
memory (its own process, and its engine workers) is sampled every second; "growth"
compares the mean of the last quarter of the run with the mean of the second quarter,
after warm-up. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from harness import print_table, wait_for_port
from synthetic import new_face, person_faces

REGION = "us-east-1"
COLLECTION = "load"
SEED_FACES = 2000
SEED_USERS = 200
FACES_PER_USER = 5
# Faces each client moves in and out of its own users, so writes never collide.
CLIENT_SLOTS = 20
PHOTO = (
    Path(__file__).resolve().parents[2]
    / "shared/datasets/face-recognition-examples/examples__obama-480p.jpg"
)


# --- set-up ---------------------------------------------------------------------------


def seed(data_dir: Path, master_key: Path, clients: int) -> dict[str, Any]:
    """The collection, its users and faces, and an access key; what clients need."""
    from rekollect.security.keystore import create_key
    from rekollect.security.sealing import load_or_create_master_key
    from rekollect.service import Service
    from rekollect.service.associations import associate_faces
    from rekollect.service.collection import create_collection
    from rekollect.service.faces import add_faces
    from rekollect.service.users import create_user
    from rekollect.storage import open_database
    from rekollect.storage.database import sqlite_url
    from rekollect.storage.records import Scope

    database = open_database(sqlite_url(data_dir))
    key = create_key(
        database,
        load_or_create_master_key(master_key),
        account_id="000000000000",
        user_name="bench",
    )
    service = Service(database)
    scope = Scope(service.account_id, REGION)
    create_collection(service, scope, collection_id=COLLECTION)
    rng = np.random.default_rng(6)
    face_ids: list[str] = []
    users: list[str] = []
    for number in range(SEED_USERS):
        user = f"user-{number}"
        faces = [new_face(e) for e in person_faces(rng, SEED_FACES // SEED_USERS)]
        add_faces(service, scope, COLLECTION, faces)
        create_user(service, scope, collection_id=COLLECTION, user_id=user)
        ids = [face.face_id for face in faces]
        associate_faces(
            service,
            scope,
            collection_id=COLLECTION,
            user_id=user,
            face_ids=ids[:FACES_PER_USER],
        )
        face_ids += ids
        users.append(user)

    slots = []
    for client in range(clients):
        owned = []
        for slot in range(CLIENT_SLOTS):
            user = f"mover-{client}-{slot}"
            faces = [new_face(e) for e in person_faces(rng, 3)]
            add_faces(service, scope, COLLECTION, faces)
            create_user(service, scope, collection_id=COLLECTION, user_id=user)
            ids = [face.face_id for face in faces]
            associate_faces(
                service, scope, collection_id=COLLECTION, user_id=user, face_ids=ids[:1]
            )
            owned.append((user, ids[1:]))
        slots.append(owned)
    service.close()
    return {
        "key_id": key.key.access_key_id,
        "secret": key.secret,
        "face_ids": face_ids,
        "users": users,
        "slots": slots,
    }


@contextmanager
def server(data_dir: Path, master_key: Path, workers: int) -> Iterator[tuple[str, int]]:
    """`rekollect serve` on a free port: its URL and process id."""
    log_path = data_dir / "server.log"
    # At INFO, as deployed: one access line per request is part of the cost.
    command = [sys.executable, "-m", "rekollect", "serve", "--port", "0",
               "--data-dir", str(data_dir), "--master-key-file", str(master_key),
               "--workers", str(workers)]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            port = wait_for_port(process, log_path)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            process.wait(timeout=60)


# --- clients --------------------------------------------------------------------------


def client_main(
    number: int,
    url: str,
    setup: dict[str, Any],
    window: tuple[float, float],
    share: float,
    pipe: Any,
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    rekognition = boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=setup["key_id"],
        aws_secret_access_key=setup["secret"],
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )
    rng = random.Random(number)
    photo = PHOTO.read_bytes() if share > 0 and PHOTO.exists() else None
    slots = [(user, list(faces), False) for user, faces in setup["slots"][number]]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    start, until = window
    time.sleep(max(0.0, start - time.time()))  # every client starts at once
    while time.time() < until:
        name, call = _choose(rng, rekognition, setup, slots, photo, share)
        started = time.perf_counter()
        try:
            call()
        except ClientError as error:
            errors[f"{name}: {error.response['Error']['Code']}"] += 1
        except Exception as error:  # a broken connection counts as an error too
            errors[f"{name}: {type(error).__name__}"] += 1
        latencies[name].append(time.perf_counter() - started)
    pipe.send((dict(latencies), dict(errors)))


def _choose(
    rng: random.Random,
    client: Any,
    setup: dict[str, Any],
    slots: list[Any],
    photo: bytes | None,
    share: float,
) -> tuple[str, Any]:
    roll = rng.random()
    if photo is not None and roll < share:
        if rng.random() < 0.5:
            return "SearchFacesByImage", lambda: client.search_faces_by_image(
                CollectionId=COLLECTION, Image={"Bytes": photo}, MaxFaces=5
            )
        return "IndexFaces", lambda: client.index_faces(
            CollectionId=COLLECTION, Image={"Bytes": photo}, MaxFaces=1
        )
    roll = rng.random()
    if roll < 0.40:
        return _read(rng, client, setup)
    if roll < 0.70:
        if rng.random() < 0.5:
            face = rng.choice(setup["face_ids"])
            return "SearchFaces", lambda: client.search_faces(
                CollectionId=COLLECTION, FaceId=face, MaxFaces=10
            )
        user = rng.choice(setup["users"])
        return "SearchUsers", lambda: client.search_users(
            CollectionId=COLLECTION, UserId=user, MaxUsers=5
        )
    return _write(rng, client, slots)


def _read(rng: random.Random, client: Any, setup: dict[str, Any]) -> tuple[str, Any]:
    kind = rng.randrange(3)
    if kind == 0:
        return "DescribeCollection", lambda: client.describe_collection(
            CollectionId=COLLECTION
        )
    if kind == 1:
        return "ListUsers", lambda: client.list_users(
            CollectionId=COLLECTION, MaxResults=50
        )
    user = rng.choice(setup["users"])
    return "ListFaces", lambda: client.list_faces(
        CollectionId=COLLECTION, UserId=user, MaxResults=100
    )


def _write(rng: random.Random, client: Any, slots: list[Any]) -> tuple[str, Any]:
    if rng.random() < 0.2:
        user = f"temp-{uuid.uuid4().hex[:12]}"

        def create_and_delete() -> None:
            client.create_user(CollectionId=COLLECTION, UserId=user)
            client.delete_user(CollectionId=COLLECTION, UserId=user)

        return "CreateUser+DeleteUser", create_and_delete
    index = rng.randrange(len(slots))
    user, faces, held = slots[index]
    slots[index] = (user, faces, not held)
    if held:
        return "DisassociateFaces", lambda: _checked(
            client.disassociate_faces(
                CollectionId=COLLECTION, UserId=user, FaceIds=faces
            ),
            "DisassociatedFaces",
            faces,
        )
    return "AssociateFaces", lambda: _checked(
        client.associate_faces(CollectionId=COLLECTION, UserId=user, FaceIds=faces),
        "AssociatedFaces",
        faces,
    )


def _checked(answer: dict[str, Any], member: str, faces: list[str]) -> None:
    moved = sorted(face["FaceId"] for face in answer[member])
    if moved != sorted(faces):
        raise RuntimeError(f"{member}: {moved} instead of {sorted(faces)}")


# --- memory -----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` in KiB (Linux: /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """Child processes of `pid`, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def sample_memory(
    pid: int, window: tuple[float, float], samples: list[tuple[float, int, int]]
) -> None:
    """Every second of `window`: (time, server RSS, its children's RSS), in KiB."""
    start, until = window
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        try:
            own = rss_kib(pid)
            kids = sum(rss_kib(child) for child in children(pid))
        except OSError:
            return
        samples.append((time.time(), own, kids))
        time.sleep(1.0)


# --- the run ----------------------------------------------------------------------------


def run(args: argparse.Namespace, data_dir: Path) -> None:
    master_key = data_dir / "master.key"
    started = time.perf_counter()
    setup = seed(data_dir, master_key, args.clients)
    print(f"set-up: {time.perf_counter() - started:.1f}s", flush=True)

    with server(data_dir, master_key, args.workers) as (url, pid):
        # Clients import boto3 first; the measured window opens once they all can.
        start = time.time() + 5.0 + 0.5 * args.clients
        until = start + args.seconds
        samples: list[tuple[float, int, int]] = []
        sampler = threading.Thread(
            target=sample_memory, args=(pid, (start, until), samples)
        )
        sampler.start()
        context = multiprocessing.get_context("spawn")
        pipes: list[Connection] = []
        processes = []
        for number in range(args.clients):
            parent, child = context.Pipe(duplex=False)
            process = context.Process(
                target=client_main,
                args=(number, url, setup, (start, until), args.image_share, child),
            )
            process.start()
            pipes.append(parent)
            processes.append(process)
        results = [pipe.recv() for pipe in pipes]
        for process in processes:
            process.join()
        sampler.join()
        log_errors = _server_errors(data_dir / "server.log")

    report(args, results, samples, log_errors)


def _server_errors(log_path: Path) -> int:
    return sum(1 for line in log_path.read_text().splitlines() if " ERROR " in line)


def report(
    args: argparse.Namespace,
    results: list[tuple[dict[str, list[float]], dict[str, int]]],
    samples: list[tuple[float, int, int]],
    log_errors: int,
) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    for client_latencies, client_errors in results:
        for name, values in client_latencies.items():
            latencies[name] += values
        errors.update(client_errors)
    every = [value for values in latencies.values() for value in values]

    rows = [
        _row(name, values, errors, args.seconds)
        for name, values in sorted(latencies.items())
    ]
    rows.append(_row("all", every, errors, args.seconds))
    print_table(
        f"{args.clients} clients, {args.seconds:g}s, serve --workers {args.workers} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        ["operation", "calls", "per s", "errors", "p50 ms", "p99 ms", "max ms"],
        rows,
    )
    if errors:
        print("errors:", json.dumps(dict(errors), indent=2))
    print(f"server log lines at ERROR: {log_errors}")
    _report_memory(samples)


def _row(
    name: str, values: list[float], errors: Counter[str], seconds: float
) -> list[str]:
    failed = sum(
        n for key, n in errors.items() if name == "all" or key.startswith(f"{name}:")
    )
    ordered = sorted(values)
    return [
        name,
        f"{len(values):,}",
        f"{len(values) / seconds:,.1f}",
        str(failed),
        f"{_percentile(ordered, 50) * 1000:.1f}",
        f"{_percentile(ordered, 99) * 1000:.1f}",
        f"{ordered[-1] * 1000:.1f}" if ordered else "-",
    ]


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _report_memory(samples: list[tuple[float, int, int]]) -> None:
    if len(samples) < 8:
        print("memory: too few samples")
        return
    own = [sample[1] / 1024 for sample in samples]
    kids = [sample[2] / 1024 for sample in samples]
    quarter = len(own) // 4
    second = statistics.mean(own[quarter : 2 * quarter])
    last = statistics.mean(own[3 * quarter :])
    print(
        f"server RSS MiB: start {own[0]:.1f}, max {max(own):.1f}, end {own[-1]:.1f}; "
        f"mean of the 2nd quarter {second:.1f}, of the last {last:.1f} "
        f"(growth {last - second:+.1f} MiB, {100 * (last - second) / second:+.1f}%)"
    )
    print(f"engine workers RSS MiB: max {max(kids):.1f}, end {kids[-1]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--image-share", type=float, default=0.05)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        run(args, args.data_dir)
        return 0
    with tempfile.TemporaryDirectory(prefix="rekollect-load-") as directory:
        run(args, Path(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
