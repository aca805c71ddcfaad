"""How long the console takes to answer on a collection of 10,000 faces.

    python bench/bench_console.py [--faces N] [--users U] [--repeat R]
        [--database-url URL]

A collection is filled through the service layer with N made-up faces (each with a
real ~5 kB JPEG thumbnail, as IndexFaces would keep), U users holding 10 faces each
and the rest of no user. Each console page is then requested R times through the
ASGI app in-process (no socket, no browser), so the figures are the server's own
time to answer, from the request to the last byte of HTML: collections, a
collection's first page, a page in the middle and the last one, filters, and one
thumbnail. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from anyio.from_thread import start_blocking_portal
from PIL import Image
from sqlalchemy import select

from harness import print_table
from synthetic import new_face, person_faces

ACCOUNT = "000000000000"
REGION = "us-east-1"
FACES_PER_USER = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", help="default: SQLite in a temporary dir")
    args = parser.parse_args()

    from rekollect.server.app import create_app
    from rekollect.service import Service
    from rekollect.storage import open_database
    from rekollect.storage.database import sqlite_url

    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or sqlite_url(Path(directory))
        service = Service(open_database(url))
        began = time.perf_counter()
        face_ids = fill(service, args.faces, args.users)
        print(f"filled {args.faces:,} faces, {args.users} users on {service.database.url}"
              f" in {time.perf_counter() - began:.1f}s")  # fmt: skip
        middle = face_ids[len(face_ids) // 2]
        pages = {
            "collections": "/console/",
            "collection, first page": "/console/c/bench",
            "all faces, first page": "/console/c/bench?show=all",
            "all faces, middle page": f"/console/c/bench?show=all&after={middle}",
            "all faces, last page": "/console/c/bench?show=all&before=~",
            "faces of one user": "/console/c/bench?show=user&user=user-0007",
            "external id prefix": "/console/c/bench?show=all&external=img-05",
            "users page 2": "/console/c/bench?users_after=user-0023",
            "one thumbnail": f"/console/c/bench/faces/{face_ids[0]}.jpg",
        }  # fmt: skip
        rows = measure(create_app(service), pages, args.repeat)
        service.close()
    print_table(
        f"Console answers on {args.faces:,} faces ({args.repeat} requests each)",
        ["page", "median ms", "p95 ms", "max ms", "kB", "face tiles"],
        rows,
    )


def fill(service: object, count: int, user_count: int) -> list[str]:
    """The benchmark collection; returns its face ids in order."""
    from rekollect.service import OPERATIONS
    from rekollect.service.faces import add_faces
    from rekollect.storage.records import Scope
    from rekollect.storage.schema import faces
    from rekollect.storage.thumbnails import insert_thumbnails

    scope = Scope(ACCOUNT, REGION)
    OPERATIONS["CreateCollection"](service, scope, collection_id="bench")
    rng = np.random.default_rng(7)
    jpeg = sample_thumbnail()
    new = []
    for start in range(0, count, 1000):
        chunk = [
            new_face(embedding)
            for embedding in person_faces(rng, min(1000, count - start))
        ]
        chunk = [
            type(face)(**{**face.__dict__, "external_image_id": f"img-{start + i:05d}"})
            for i, face in enumerate(chunk)
        ]
        add_faces(service, scope, "bench", chunk)  # type: ignore[arg-type]
        new += chunk
    with service.database.write() as conn:  # type: ignore[attr-defined]
        pks = list(conn.execute(select(faces.c.pk)).scalars())
        insert_thumbnails(conn, pks, [jpeg] * len(pks))

    face_ids = sorted(face.face_id for face in new)
    for number in range(user_count):
        user_id = f"user-{number:04d}"
        OPERATIONS["CreateUser"](service, scope, collection_id="bench", user_id=user_id)
        owned = face_ids[number * FACES_PER_USER : (number + 1) * FACES_PER_USER]
        if owned:
            OPERATIONS["AssociateFaces"](
                service, scope, collection_id="bench", user_id=user_id, face_ids=owned
            )
    return face_ids


def sample_thumbnail() -> bytes:
    """A JPEG of the size and kind IndexFaces keeps (160 px of noisy pixels)."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(60, 200, (160, 160, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize((40, 40)).resize((160, 160)).save(
        out, "JPEG", quality=80
    )
    return out.getvalue()


def measure(app: object, pages: dict[str, str], repeat: int) -> list[list[str]]:
    rows = []
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://127.0.0.1:9860",
        )
        for name, path in pages.items():
            timings = []
            for _ in range(repeat):
                began = time.perf_counter()
                response = portal.call(client.get, path)
                timings.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.text[:300])
            shown = response.text.count("data-face-id=")
            timings.sort()
            rows.append(
                [
                    name,
                    f"{statistics.median(timings):.1f}",
                    f"{timings[int(0.95 * (len(timings) - 1))]:.1f}",
                    f"{timings[-1]:.1f}",
                    f"{len(response.content) / 1024:.0f}",
                    str(shown) if "image" not in response.headers["content-type"] else "-",
                ]
            )  # fmt: skip
        portal.call(client.aclose)
    return rows


if __name__ == "__main__":
    main()
