"""Face verification and identification accuracy through the wire, on lfw-dev.

    python bench/bench_accuracy.py [--data-dir D] [--clients 4] [--engine-workers N]

Everything goes through `python -m rekollect serve` and a boto3 Rekognition client,
so the figures are what a user of the API gets, engine, storage, vector index and
calibrated Similarity included:

- IndexFaces of every image of `pairs.csv` (QualityFilter NONE, ExternalImageId = the
  file name with '/' as ':'), from `--clients` threads so the server's engine workers
  always have an image waiting; when an image holds several faces the one nearest the
  image centre is kept (as LFW intends) and the others are deleted;
- verification over the 1,200 pairs: the Similarity of b's face in
  SearchFaces(FaceId = a's face, FaceMatchThreshold 0, MaxFaces 4096); a pair with an
  image where no face was found is decided "different";
- 1:N identification: each person with 2+ usable photos becomes a user holding the
  first (CreateUser + AssociateFaces); every other photo of theirs is a probe for
  SearchUsers(FaceId, UserMatchThreshold 0, MaxUsers 5): rank-1, rank-5 and how often
  the top user is the wrong person yet scores at least 80 (or 90, 95, 99). Photos of
  people with a single photo are probes of people who are not enrolled at all: how
  often does their top user still reach each threshold?

Target: at least 98.5% verification accuracy at the default threshold 80.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fit_similarity import accuracy_at, best_threshold, roc_auc, tar_at_far
from harness import bench_dir, http_client, print_table, running_server

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "datasets" / "lfw-dev"
DEFAULT_THRESHOLD = 80.0
THRESHOLDS = (80.0, 90.0, 95.0, 99.0)
TARGET_ACCURACY = 0.985
_NOT_IN_EXTERNAL_ID = re.compile(r"[^a-zA-Z0-9_.\-:]")


@dataclass(frozen=True)
class Indexed:
    """What IndexFaces made of one image: the kept face, if any, and the face count."""

    file: str
    face_id: str | None
    faces: int
    dropped: tuple[str, ...]  # the other faces' ids, deleted after indexing


# --- indexing --------------------------------------------------------------------------


def external_image_id(file: str) -> str:
    """The file name as an ExternalImageId (pattern [a-zA-Z0-9_.\\-:]+)."""
    return _NOT_IN_EXTERNAL_ID.sub("_", file.replace("/", ":"))


def index_image(client: Any, collection: str, lfw: Path, file: str) -> Indexed:
    answer = client.index_faces(
        CollectionId=collection,
        Image={"Bytes": (lfw / "images" / file).read_bytes()},
        ExternalImageId=external_image_id(file),
        QualityFilter="NONE",
    )
    faces = [record["Face"] for record in answer["FaceRecords"]]
    if not faces:
        return Indexed(file, None, 0, ())
    central = min(faces, key=_off_centre)
    dropped = tuple(f["FaceId"] for f in faces if f is not central)
    return Indexed(file, central["FaceId"], len(faces), dropped)


def _off_centre(face: dict[str, Any]) -> float:
    """Squared distance of the box centre from the image centre, in image ratios."""
    box = face["BoundingBox"]
    x = box["Left"] + box["Width"] / 2 - 0.5
    y = box["Top"] + box["Height"] / 2 - 0.5
    return x * x + y * y


def index_all(
    clients: Sequence[Any], collection: str, lfw: Path, files: Sequence[str]
) -> tuple[list[Indexed], float]:
    """Index every file from one thread per client; returns the results and seconds."""
    # Start the engine workers (they load their models on first use) untimed.
    warm = f"warm-{uuid.uuid4().hex[:8]}"
    clients[0].create_collection(CollectionId=warm)
    with ThreadPoolExecutor(len(clients)) as pool:
        list(
            pool.map(
                lambda i: index_image(clients[i], warm, lfw, files[i]),
                range(min(len(clients), len(files))),
            )
        )
    clients[0].delete_collection(CollectionId=warm)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        results = list(
            pool.map(
                lambda i: index_image(
                    clients[i % len(clients)], collection, lfw, files[i]
                ),
                range(len(files)),
            )
        )
    elapsed = time.perf_counter() - started
    dropped = [face_id for r in results for face_id in r.dropped]
    for start in range(0, len(dropped), 4096):
        clients[0].delete_faces(
            CollectionId=collection, FaceIds=dropped[start : start + 4096]
        )
    return results, elapsed


# --- verification ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    file_a: str
    file_b: str
    same: int


def read_pairs(lfw: Path) -> list[Pair]:
    with open(lfw / "pairs.csv", newline="") as handle:
        return [
            Pair(row["file_a"], row["file_b"], int(row["same"]))
            for row in csv.DictReader(handle)
        ]


def pair_similarities(
    clients: Sequence[Any],
    collection: str,
    pairs: Sequence[Pair],
    face_of: dict[str, str | None],
) -> tuple[np.ndarray, int, int, float]:
    """Similarity of each pair as SearchFaces reports it (-1 where a face is missing).

    One SearchFaces per distinct first image; returns the similarities, the pairs
    without a face, the pairs whose second face was not among the matches, and the
    seconds the searches took.
    """
    queries = sorted({p.file_a for p in pairs if face_of[p.file_a]})

    def search(file: str, client: Any) -> dict[str, float]:
        answer = client.search_faces(
            CollectionId=collection,
            FaceId=face_of[file],
            FaceMatchThreshold=0,
            MaxFaces=4096,
        )
        return {m["Face"]["FaceId"]: m["Similarity"] for m in answer["FaceMatches"]}

    started = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        found = list(
            pool.map(
                lambda i: search(queries[i], clients[i % len(clients)]),
                range(len(queries)),
            )
        )
    elapsed = time.perf_counter() - started
    matches = dict(zip(queries, found, strict=True))
    similarities = np.full(len(pairs), -1.0)
    no_face = not_found = 0
    for i, pair in enumerate(pairs):
        face_a, face_b = face_of[pair.file_a], face_of[pair.file_b]
        if face_a is None or face_b is None:
            no_face += 1
        elif face_b not in matches[pair.file_a]:
            not_found += 1
        else:
            similarities[i] = matches[pair.file_a][face_b]
    return similarities, no_face, not_found, elapsed


# --- identification --------------------------------------------------------------------


@dataclass(frozen=True)
class Identification:
    users: int
    probes: int
    rank1: float
    rank5: float
    wrong_top_at: dict[float, float]
    right_top_at: dict[float, float]
    unknown_probes: int
    unknown_top_at: dict[float, float]
    elapsed_s: float


def identify(
    clients: Sequence[Any], collection: str, indexed: Sequence[Indexed]
) -> Identification:
    """Enrol one photo per person with 2+ usable photos; search users with the rest."""
    by_person: dict[str, list[str]] = defaultdict(list)
    for result in sorted(indexed, key=lambda r: r.file):
        if result.face_id is not None:
            by_person[result.file.split("/", 1)[0]].append(result.face_id)
    enrolled = {p: faces for p, faces in by_person.items() if len(faces) >= 2}
    client = clients[0]
    for person, faces in enrolled.items():
        client.create_user(CollectionId=collection, UserId=person)
        client.associate_faces(
            CollectionId=collection, UserId=person, FaceIds=faces[:1]
        )

    probes = [(p, face) for p, faces in enrolled.items() for face in faces[1:]]
    unknown = [
        (None, face) for p, faces in by_person.items() if p not in enrolled
        for face in faces
    ]  # fmt: skip
    everything = probes + unknown

    def search(i: int) -> list[tuple[str, float]]:
        answer = clients[i % len(clients)].search_users(
            CollectionId=collection,
            FaceId=everything[i][1],
            UserMatchThreshold=0,
            MaxUsers=5,
        )
        return [(m["User"]["UserId"], m["Similarity"]) for m in answer["UserMatches"]]

    started = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(search, range(len(everything))))
    elapsed = time.perf_counter() - started

    rank1 = rank5 = 0
    wrong = dict.fromkeys(THRESHOLDS, 0)
    right = dict.fromkeys(THRESHOLDS, 0)
    for (person, _), matches in zip(probes, answers, strict=False):
        ranked = [user for user, _ in matches]
        rank1 += bool(ranked) and ranked[0] == person
        rank5 += person in ranked[:5]
        if matches:
            top_user, top_similarity = matches[0]
            for s in THRESHOLDS:
                if top_similarity >= s:
                    (right if top_user == person else wrong)[s] += 1
    alarms = dict.fromkeys(THRESHOLDS, 0)
    for matches in answers[len(probes) :]:
        for s in THRESHOLDS:
            alarms[s] += bool(matches) and matches[0][1] >= s
    n, m = max(len(probes), 1), max(len(unknown), 1)
    return Identification(
        users=len(enrolled),
        probes=len(probes),
        rank1=rank1 / n,
        rank5=rank5 / n,
        wrong_top_at={s: wrong[s] / n for s in THRESHOLDS},
        right_top_at={s: right[s] / n for s in THRESHOLDS},
        unknown_probes=len(unknown),
        unknown_top_at={s: alarms[s] / m for s in THRESHOLDS},
        elapsed_s=elapsed,
    )


# --- the report ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    lfw = Path(args.lfw)
    if not (lfw / "pairs.csv").is_file():
        print(f"lfw-dev not found at {lfw}", file=sys.stderr)
        return 2
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.clients} client threads, engine workers: "
        f"{args.engine_workers or 'server default'}"
    )
    pairs = read_pairs(lfw)
    files = sorted({p.file_a for p in pairs} | {p.file_b for p in pairs})
    with (
        bench_dir(args.data_dir) as data_dir,
        running_server(
            data_dir, "bench-accuracy-server.log", *engine_options(args.engine_workers)
        ) as endpoint,
    ):
        clients = [http_client(endpoint) for _ in range(args.clients)]
        collection = f"lfw-{uuid.uuid4().hex[:8]}"
        clients[0].create_collection(CollectionId=collection)
        print(f"indexing {len(files)} images...", flush=True)
        indexed, index_s = index_all(clients, collection, lfw, files)
        face_of = {r.file: r.face_id for r in indexed}
        print("verification searches...", flush=True)
        similarities, no_face, not_found, search_s = pair_similarities(
            clients, collection, pairs, face_of
        )
        print("identification searches...", flush=True)
        found = identify(clients, collection, indexed)
        clients[0].delete_collection(CollectionId=collection)

    report_indexing(indexed, index_s, search_s, len({p.file_a for p in pairs}), found)
    report_verification(pairs, similarities, no_face, not_found)
    report_identification(found)
    return 0


def report_indexing(
    indexed: Sequence[Indexed],
    index_s: float,
    search_s: float,
    searches: int,
    found: Identification,
) -> None:
    missing = [r.file for r in indexed if r.face_id is None]
    print_table(
        "Indexing and search over HTTP",
        ("images", "images/s indexed", "no face", "several faces",
         "SearchFaces/s (4,096 matches)", "SearchUsers/s"),
        [(str(len(indexed)), f"{len(indexed) / index_s:.2f}", str(len(missing)),
          str(sum(r.faces > 1 for r in indexed)), f"{searches / search_s:.1f}",
          f"{(found.probes + found.unknown_probes) / found.elapsed_s:.1f}")],
    )  # fmt: skip
    if missing:
        print("no face found in: " + ", ".join(missing))


def report_verification(
    pairs: Sequence[Pair], similarities: np.ndarray, no_face: int, not_found: int
) -> None:
    same = np.array([p.same for p in pairs])
    # The figures are computed on "distances", so use -similarity: smaller is closer,
    # and a pair without a score (-1) is never accepted.
    scores = np.where(similarities < 0, np.inf, -similarities)
    genuine, impostor = scores[same == 1], scores[same == 0]
    rows = []
    for s in THRESHOLDS:
        rows.append(
            (f"similarity >= {s:g}", _pct(accuracy_at(scores, same, -s), 2),
             _pct(float(np.mean(genuine <= -s))), _pct(float(np.mean(impostor <= -s)), 2))
        )  # fmt: skip
    threshold, best = best_threshold(scores, same)
    rows.append((f"best: similarity >= {-threshold:.1f}", _pct(best, 2), "", ""))
    print_table(
        f"Verification over {len(pairs)} pairs "
        f"({int(same.sum())} same / {int((1 - same).sum())} different) via SearchFaces",
        ("decision", "accuracy", "same accepted", "different accepted"),
        rows,
    )
    far_rows = []
    for far in (0.01, 0.001):
        tar, limit = tar_at_far(genuine, impostor, far)
        far_rows.append((f"{100 * far:g}%", _pct(tar), f"{-limit:.2f}"))
    print_table("TAR at FAR", ("FAR", "TAR", "at similarity >="), far_rows)
    print(f"ROC AUC {roc_auc(genuine, impostor):.4f}")
    print(
        f"pairs with an image without a face (decided 'different'): {no_face}; "
        f"pairs whose second face SearchFaces did not return: {not_found}"
    )
    accuracy = accuracy_at(scores, same, -DEFAULT_THRESHOLD)
    print(
        f"target >= {100 * TARGET_ACCURACY:.1f}% verification accuracy at "
        f"{DEFAULT_THRESHOLD:g}: {_pct(accuracy, 2)} -> "
        f"{'met' if accuracy >= TARGET_ACCURACY else 'NOT met'}"
    )


def report_identification(found: Identification) -> None:
    names = [f"{s:g}" for s in THRESHOLDS]
    print_table(
        f"1:N identification via SearchUsers: {found.users} users (one photo each), "
        f"{found.probes} probes of enrolled people",
        ("rank-1", "rank-5", *(f"top wrong & >= {n}" for n in names),
         *(f"top right & >= {n}" for n in names)),
        [(_pct(found.rank1), _pct(found.rank5),
          *(_pct(found.wrong_top_at[s]) for s in THRESHOLDS),
          *(_pct(found.right_top_at[s]) for s in THRESHOLDS))],
    )  # fmt: skip
    print_table(
        f"Open set: {found.unknown_probes} probes of people not enrolled, top user "
        f"among {found.users} scoring at least",
        tuple(names),
        [tuple(_pct(found.unknown_top_at[s]) for s in THRESHOLDS)],
    )


def engine_options(engine_workers: int | None) -> list[str]:
    return ["--engine-workers", str(engine_workers)] if engine_workers else []


def _pct(share: float, digits: int = 1) -> str:
    return f"{100 * share:.{digits}f}%"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", default=str(LFW), help="the lfw-dev folder")
    parser.add_argument(
        "--data-dir", help="where the server's store lives (default: a temp dir)"
    )
    parser.add_argument(
        "--clients", type=int, default=4, help="client threads (4: 2 per engine worker)"
    )
    parser.add_argument(
        "--engine-workers",
        type=int,
        help="the server's --engine-workers (default: its own, one per core)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
