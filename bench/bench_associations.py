"""Throughput and latency of AssociateFaces and DisassociateFaces, in-process and over HTTP.

    python bench/bench_associations.py [--seconds N] [--data-dir D] [--clients C]
        [--workers N]

Every measured call does real work: a pool of users is built up front, each with one
anchor face that never moves and ten faces that the benchmark moves. A measurement of
DisassociateFaces takes slots (a user and 1 or 10 of its faces) from the pool until
its time is up; the AssociateFaces measurement that follows gives exactly those faces
back, so the pool is whole again for the next path. AssociateFaces therefore compares
each face with the user's remaining faces, as it does in use. Every call carries a
fresh ClientRequestToken (boto3 adds one itself), and every answer is checked.

Paths, all in the same run and on the same data:

- wire: `WireHandler.handle(headers, body)`, the transport-independent core;
- boto3 in-process: `rekollect.client(...)`, boto3 with a `before-send` hook;
- boto3 HTTP: a boto3 client against `python -m rekollect serve`;
- raw HTTP: pre-built requests on keep-alive sockets from 1 and from C client
  processes, so the figure is the server's, not the client's; then C clients
  against `serve --workers 2..N`.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from harness import bench_dir, print_table
from synthetic import new_face, person_faces

REGION = "us-east-1"
TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MOVING_FACES_PER_USER = 10
FACE_COUNTS = (1, 10)
OPERATIONS = ("DisassociateFaces", "AssociateFaces")
RESULT_MEMBER = {
    "DisassociateFaces": "DisassociatedFaces",
    "AssociateFaces": "AssociatedFaces",
}
WARMUP_SLOTS = 30
_LISTENING = re.compile(r"listening on http://[^:\s]+:(\d+)")


@dataclass(frozen=True)
class Slot:
    """Faces that one call moves: `face_ids` of `user_id`."""

    user_id: str
    face_ids: tuple[str, ...]


@dataclass
class Run:
    """What one measurement saw: a latency per call, the slots done, the answers."""

    latencies_s: list[float]
    elapsed_s: float
    done: list[int]
    answers: list[dict[str, Any]]


@dataclass(frozen=True)
class Figure:
    path: str
    operation: str
    face_count: int
    clients: int
    calls: int
    per_second: float
    p50_ms: float
    p99_ms: float


# --- the pool ------------------------------------------------------------------------


def build_pool(
    service: Any, collection_id: str, face_count: int, slots: int
) -> list[Slot]:
    """Users with one anchor face and ten moving faces, all associated, cut into slots."""
    from rekollect.service.associations import associate_faces
    from rekollect.service.faces import add_faces
    from rekollect.service.users import create_user
    from rekollect.storage.records import Scope

    scope = Scope(service.account_id, REGION)
    per_user = MOVING_FACES_PER_USER // face_count
    rng = np.random.default_rng(face_count)
    pool: list[Slot] = []
    for number in range(-(-slots // per_user)):
        user_id = f"u{face_count}-{number}"
        create_user(service, scope, collection_id=collection_id, user_id=user_id)
        faces = [new_face(e) for e in person_faces(rng, 1 + MOVING_FACES_PER_USER)]
        add_faces(service, scope, collection_id, faces)
        face_ids = [face.face_id for face in faces]
        associate_faces(
            service,
            scope,
            collection_id=collection_id,
            user_id=user_id,
            face_ids=face_ids,
        )
        moving = face_ids[1:]
        for start in range(0, len(moving), face_count):
            pool.append(Slot(user_id, tuple(moving[start : start + face_count])))
    return pool[:slots]


def request_body(collection_id: str, operation: str, slot: Slot) -> bytes:
    body = {
        "CollectionId": collection_id,
        "UserId": slot.user_id,
        "FaceIds": list(slot.face_ids),
        "ClientRequestToken": str(uuid.uuid4()),
    }
    return json.dumps(body).encode()


def check(operation: str, slots: Sequence[Slot], run: Run) -> None:
    """Fail loudly unless every answer moved exactly the faces its call named."""
    member = RESULT_MEMBER[operation]
    for index, answer in zip(run.done, run.answers, strict=True):
        moved = tuple(face["FaceId"] for face in answer.get(member, []))
        if moved != slots[index].face_ids:
            raise RuntimeError(f"{operation} did not do its work: {answer}")


# --- single-client paths -------------------------------------------------------------


def sequential(
    send: Callable[[Any], Any], prepared: Sequence[Any], seconds: float
) -> Run:
    """Send prepared requests one after another until `seconds` have passed."""
    latencies: list[float] = []
    answers: list[Any] = []
    started = time.perf_counter()
    deadline = started + seconds
    for request in prepared:
        before = time.perf_counter()
        answers.append(send(request))
        after = time.perf_counter()
        latencies.append(after - before)
        if after >= deadline:
            break
    elapsed = time.perf_counter() - started
    return Run(latencies, elapsed, list(range(len(latencies))), answers)


def wire_path(handler: Any, collection_id: str) -> Callable[..., Run]:
    def measure(operation: str, slots: Sequence[Slot], seconds: float) -> Run:
        headers = {
            "x-amz-target": TARGET_PREFIX + operation,
            "content-type": CONTENT_TYPE,
        }
        bodies = [request_body(collection_id, operation, slot) for slot in slots]
        run = sequential(lambda body: handler.handle(headers, body), bodies, seconds)
        run.answers = [json.loads(answer.body) for answer in run.answers]
        return run

    return measure


def boto3_path(client: Any, collection_id: str) -> Callable[..., Run]:
    def measure(operation: str, slots: Sequence[Slot], seconds: float) -> Run:
        call = getattr(
            client, "disassociate_faces" if operation[0] == "D" else "associate_faces"
        )
        kwargs = [
            {
                "CollectionId": collection_id,
                "UserId": s.user_id,
                "FaceIds": list(s.face_ids),
            }
            for s in slots
        ]
        return sequential(lambda request: call(**request), kwargs, seconds)

    return measure


# --- raw HTTP load generator -------------------------------------------------------


def http_request(port: int, operation: str, body: bytes) -> bytes:
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-Amz-Target: {TARGET_PREFIX}{operation}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive socket; return the status and body."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += _receive(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += _receive(sock)
    return int(head[9:12]), body


def _receive(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection")
    return chunk


def load_client(
    port: int, requests: list[bytes], seconds: float, pipe: Connection
) -> None:
    """One client process: connect, wait for the start signal, send until time is up."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pipe.send("ready")
    start_at = pipe.recv()
    time.sleep(max(0.0, start_at - time.monotonic()))

    latencies, answers = [], []
    deadline = start_at + seconds
    for request in requests:
        before = time.perf_counter()
        status, body = exchange(sock, request)
        latencies.append(time.perf_counter() - before)
        answers.append((status, body))
        if time.monotonic() >= deadline:
            break
    pipe.send((latencies, answers, time.monotonic() - start_at))
    sock.close()


def raw_http_path(port: int, clients: int, collection_id: str) -> Callable[..., Run]:
    def measure(operation: str, slots: Sequence[Slot], seconds: float) -> Run:
        shares = [list(range(c, len(slots), clients)) for c in range(clients)]
        requests = [
            [
                http_request(
                    port, operation, request_body(collection_id, operation, slots[i])
                )
                for i in share
            ]
            for share in shares
        ]
        return run_shares(operation, [port], shares, requests, seconds)

    return measure


def run_shares(
    operation: str,
    ports: Sequence[int],
    shares: list[list[int]],
    requests: list[list[bytes]],
    seconds: float,
) -> Run:
    """Client c sends `requests[c]` (standing for the slots `shares[c]`) to
    `ports[c % len(ports)]`; every answer must be a 200."""
    results = run_clients(ports, requests, seconds)
    run = Run([], max(r[2] for r in results), [], [])
    for share, (latencies, answers, _) in zip(shares, results, strict=True):
        run.latencies_s += latencies
        run.done += share[: len(latencies)]
        for status, body in answers:
            if status != 200:
                raise RuntimeError(f"{operation} answered {status}: {body!r}")
            run.answers.append(json.loads(body))
    return run


def run_clients(
    ports: Sequence[int], requests: list[list[bytes]], seconds: float
) -> list[Any]:
    """One client process per list of requests, all started at once."""
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    for number, share in enumerate(requests):
        parent, child = context.Pipe()
        port = ports[number % len(ports)]
        process = context.Process(
            target=load_client, args=(port, share, seconds, child)
        )
        process.start()
        pipes.append(parent)
        processes.append(process)
    for pipe in pipes:
        pipe.recv()
    start_at = time.monotonic() + 0.05
    for pipe in pipes:
        pipe.send(start_at)
    results = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join()
    return results


# --- the server ----------------------------------------------------------------------


@contextmanager
def running_server(
    data_dir: Path, log_level: str, workers: int = 1
) -> Iterator[tuple[int, int]]:
    """`python -m rekollect serve` on a free port; yields its port and process id."""
    log_path = data_dir / "bench-server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rekollect", "serve", "--port", "0",
             "--data-dir", str(data_dir), "--log-level", log_level,
             "--workers", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield _wait_for_port(process, log_path, workers), process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for_port(
    process: subprocess.Popen[bytes], log_path: Path, workers: int
) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        match = _LISTENING.search(text)
        if match and text.count("Application startup complete") >= workers:
            return int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"rekollect serve did not start:\n{log_path.read_text()}")


# --- measuring -------------------------------------------------------------------------


def measure_path(
    name: str,
    clients: int,
    measure: Callable[..., Run],
    pools: dict[int, list[Slot]],
    seconds: float,
) -> list[Figure]:
    """Disassociate for `seconds`, then associate the same faces back; both timed."""
    figures = []
    for face_count, pool in pools.items():
        for operation in OPERATIONS:  # warm caches and connections, untimed
            check(
                operation, pool, measure(operation, pool[:WARMUP_SLOTS], float("inf"))
            )
        taken = measure("DisassociateFaces", pool, seconds)
        check("DisassociateFaces", pool, taken)
        returned_slots = [pool[i] for i in sorted(taken.done)]
        given = measure("AssociateFaces", returned_slots, float("inf"))
        check("AssociateFaces", returned_slots, given)
        figures.append(_figure(name, "DisassociateFaces", face_count, clients, taken))
        figures.append(_figure(name, "AssociateFaces", face_count, clients, given))
        print(
            f"  {name:<16} {face_count:>2} ids: {len(taken.done)} calls each",
            flush=True,
        )
    return figures


def _figure(
    path: str, operation: str, face_count: int, clients: int, run: Run
) -> Figure:
    p50, p99 = np.percentile(np.array(run.latencies_s) * 1000, [50, 99])
    per_second = len(run.latencies_s) / run.elapsed_s
    return Figure(
        path, operation, face_count, clients, len(run.latencies_s), per_second, p50, p99
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with bench_dir(args.data_dir) as data_dir:
        figures = collect(args, data_dir)
    report(figures, args)
    return 0


def collect(args: argparse.Namespace, data_dir: Path) -> list[Figure]:
    import boto3

    import rekollect
    from rekollect.config import load_settings
    from rekollect.server.wire import WireHandler
    from rekollect.service import Service
    from rekollect.service.collection import create_collection, delete_collection
    from rekollect.storage import open_database
    from rekollect.storage.records import Scope

    settings = load_settings(data_dir, region=REGION)
    service = Service(open_database(settings.database_url))
    scope = Scope(service.account_id, REGION)
    collection_id = f"bench-{uuid.uuid4().hex[:8]}"
    create_collection(service, scope, collection_id=collection_id)
    try:
        started = time.perf_counter()
        pools = {
            k: build_pool(service, collection_id, k, args.slots) for k in FACE_COUNTS
        }
        print(f"set-up: {time.perf_counter() - started:.1f}s", flush=True)

        figures = measure_path(
            "wire",
            1,
            wire_path(WireHandler(service), collection_id),
            pools,
            args.seconds,
        )
        inprocess = rekollect.client(data_dir, region_name=REGION)
        figures += measure_path(
            "boto3 in-process",
            1,
            boto3_path(inprocess, collection_id),
            pools,
            args.seconds,
        )
        with running_server(data_dir, args.log_level) as (port, _pid):
            http = boto3.client(
                "rekognition",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name=REGION,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            figures += measure_path(
                "boto3 HTTP", 1, boto3_path(http, collection_id), pools, args.seconds
            )
            for clients in (1, args.clients):
                figures += measure_path(
                    f"raw HTTP x{clients}",
                    clients,
                    raw_http_path(port, clients, collection_id),
                    pools,
                    args.seconds,
                )
        for workers in range(2, args.workers + 1):
            with running_server(data_dir, args.log_level, workers) as (port, _pid):
                figures += measure_path(
                    f"raw HTTP x{args.clients}, {workers} workers",
                    args.clients,
                    raw_http_path(port, args.clients, collection_id),
                    pools,
                    args.seconds,
                )
        return figures
    finally:
        delete_collection(service, scope, collection_id=collection_id)
        service.database.close()


# --- the report ------------------------------------------------------------------------

HEADERS = ("path", "operation", "ids", "clients", "calls", "req/s", "p50 ms", "p99 ms")


def report(figures: list[Figure], args: argparse.Namespace) -> None:
    rows = [
        (f.path, f.operation, str(f.face_count), str(f.clients), str(f.calls),
         f"{f.per_second:,.0f}", f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}")
        for f in figures
    ]  # fmt: skip
    overheads = _overheads(figures)
    print()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.seconds:g}s per measurement, server log level {args.log_level}"
    )
    print_table("Association calls", HEADERS, rows)
    print_table(
        "HTTP over in-process at p50 (raw HTTP x1 minus wire)",
        ("operation", "ids", "wire p50 ms", "HTTP p50 ms", "overhead ms"),
        overheads,
    )
    _targets(figures, overheads, args.clients)


def _overheads(figures: list[Figure]) -> list[tuple[str, ...]]:
    by_key = {(f.path, f.operation, f.face_count): f for f in figures}
    rows = []
    for face_count in FACE_COUNTS:
        for operation in OPERATIONS:
            wire = by_key[("wire", operation, face_count)].p50_ms
            http = by_key[("raw HTTP x1", operation, face_count)].p50_ms
            rows.append(
                (
                    operation,
                    str(face_count),
                    f"{wire:.2f}",
                    f"{http:.2f}",
                    f"{http - wire:.2f}",
                )
            )
    return rows


def _targets(
    figures: list[Figure], overheads: list[tuple[str, ...]], clients: int
) -> None:
    loaded = max(
        (
            f
            for f in figures
            if f.path.startswith(f"raw HTTP x{clients}")
            and f.operation == "DisassociateFaces"
            and f.face_count == 10
        ),
        key=lambda f: f.per_second,
    )
    worst = max(float(row[4]) for row in overheads)
    print()
    print(
        "target >= 1,000 DisassociateFaces/s over HTTP, 10 ids: "
        f"{loaded.per_second:,.0f}/s ({loaded.path}) -> "
        f"{'met' if loaded.per_second >= 1000 else 'NOT met'}"
    )
    print(
        f"target < 1 ms p50 HTTP overhead: worst {worst:.2f} ms -> "
        f"{'met' if worst < 1 else 'NOT met'}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="per measurement (3)"
    )
    parser.add_argument(
        "--data-dir", help="where the store lives (default: a temp dir)"
    )
    parser.add_argument("--clients", type=int, default=4, help="load processes (4)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure servers of 2..N worker processes (2)",
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=4000,
        help="calls a measurement may make at most (4000)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        help="the server's --log-level (info, as deployed)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
