"""Fit the similarity curve's k and d0 on lfw-dev, and measure what the engine's
embeddings achieve: verification accuracy, TAR at fixed FAR, 1:N false alarms and
how a user's faces are best aggregated.

    python bench/fit_similarity.py [--cache PATH] [--processes 2] [--engine dlib]
        [--rounds 3] [--refresh]

rekollect scores two faces as `100 / (1 + exp(k * (d - d0)))` of the Euclidean
distance d between their embeddings (`rekollect.engine.similarity`). That is the
logistic model P(same person | d), so k and d0 are fitted here by logistic regression
(Newton's method / IRLS, in numpy) of LFW's same/different labels on the distance.

Every image of `pairs.csv` is embedded once by the engine itself (in `--processes`
spawned processes, since every dlib call is single-threaded); when an image holds
several faces the one nearest the image centre is used, as LFW intends. The
embeddings are cached in an .npz (default: in the temp directory), so a rerun only
does the arithmetic.

Pairs with an image where no face was found are left out of the fit and counted as a
"different" decision (never accepted) in every accuracy and TAR figure, as a server
would have nothing to match.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import print_table

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "datasets" / "lfw-dev"

# The constants rekollect ships (src/rekollect/engine/similarity.py), for comparison.
CURRENT_K = 46.2
CURRENT_D0 = 0.630
DEFAULT_THRESHOLD = 80.0
THRESHOLDS = (50.0, 80.0, 90.0, 95.0, 99.0)
# Thresholds for searches over many people: the curve is steep near 100, so the
# useful 1:N thresholds are 99 and above (99.9 is d = 0.48 with the current constants).
SEARCH_THRESHOLDS = (80.0, 90.0, 95.0, 99.0, 99.5, 99.9)
FARS = (0.01, 0.001)
MAX_USER_FACES = 100


# --- the logistic fit ---------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """similarity = 100 / (1 + exp(k * (d - d0))), with standard errors when fitted."""

    k: float
    d0: float
    k_se: float = math.nan
    d0_se: float = math.nan
    iterations: int = 0

    def probability(self, distance: np.ndarray) -> np.ndarray:
        """P(same person) for each distance (the similarity divided by 100)."""
        return 1.0 / (1.0 + np.exp(np.clip(self.k * (distance - self.d0), -700, 700)))

    def similarity(self, distance: np.ndarray) -> np.ndarray:
        return 100.0 * self.probability(distance)

    def distance_for(self, similarity: float) -> float:
        """The largest distance scoring at least `similarity` (0 < similarity < 100)."""
        return self.d0 + math.log(100.0 / similarity - 1.0) / self.k


def fit_curve(
    distances: np.ndarray, same: np.ndarray, *, max_iterations: int = 100
) -> Curve:
    """Maximum-likelihood k and d0 for P(same | d) = 1 / (1 + exp(k (d - d0))).

    The model is ordinary logistic regression, logit P = a + b d with k = -b and
    d0 = -a / b, so Newton's method on (a, b) converges in a handful of steps from
    zero (the log-likelihood is concave). A step that lowers the likelihood is halved,
    which keeps nearly separable data from overshooting. Standard errors come from the
    inverse Hessian (the observed information) at the optimum, carried to k and d0 by
    the delta method; they assume independent pairs, which LFW's pairs nearly are.
    """
    x = np.column_stack([np.ones_like(distances), distances]).astype(np.float64)
    y = same.astype(np.float64)
    beta = np.zeros(2)
    likelihood = _log_likelihood(x, y, beta)
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - reported
        p = _sigmoid(x @ beta)
        gradient = x.T @ (y - p)
        hessian = (x * (p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while True:
            candidate = beta + scale * step
            new_likelihood = _log_likelihood(x, y, candidate)
            if new_likelihood >= likelihood or scale < 1e-6:
                break
            scale /= 2
        beta, likelihood = candidate, new_likelihood
        if np.max(np.abs(scale * step)) < 1e-10:
            break
    p = _sigmoid(x @ beta)
    covariance = np.linalg.inv((x * (p * (1 - p))[:, None]).T @ x)
    a, b = beta
    # d0 = -a / b: its gradient with respect to (a, b) is (-1 / b, a / b^2).
    d0_gradient = np.array([-1.0 / b, a / b**2])
    return Curve(
        k=float(-b),
        d0=float(-a / b),
        k_se=float(math.sqrt(covariance[1, 1])),
        d0_se=float(math.sqrt(d0_gradient @ covariance @ d0_gradient)),
        iterations=iterations,
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))


def _log_likelihood(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    z = x @ beta
    # log(sigmoid(z)) = -log(1 + exp(-z)), computed without overflow.
    return float(np.sum(y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)))


def log_loss(curve: Curve, distances: np.ndarray, same: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels under `curve` (lower is better)."""
    p = np.clip(curve.probability(distances), 1e-15, 1 - 1e-15)
    return float(-np.mean(same * np.log(p) + (1 - same) * np.log(1 - p)))


# --- verification figures ---------------------------------------------------------------


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs decided right when d <= threshold means "same person".

    A missing distance (no face found) is +inf, so it is never accepted.
    """
    return float(np.mean((distances <= threshold) == (same == 1)))


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The single distance threshold with the highest accuracy, and that accuracy.

    Candidates are midpoints between consecutive distinct distances, so the threshold
    does not sit on a pair and transfers to other data as a boundary should.
    """
    finite = np.unique(distances[np.isfinite(distances)])
    candidates = np.concatenate(
        [[finite[0] - 1e-6], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1e-6]]
    )
    order = np.argsort(distances)
    sorted_d, sorted_same = distances[order], same[order] == 1
    # Accepted pairs are those with d <= t: count right decisions for every t at once.
    accepted = np.searchsorted(sorted_d, candidates, side="right")
    same_accepted = np.concatenate([[0], np.cumsum(sorted_same)])[accepted]
    different_accepted = accepted - same_accepted
    right = same_accepted + (np.sum(~sorted_same) - different_accepted)
    best = int(np.argmax(right))
    return float(candidates[best]), float(right[best] / len(distances))


def accepted_shares(
    genuine: np.ndarray, impostor: np.ndarray, threshold: float
) -> tuple[float, float]:
    """Share of genuine and of impostor comparisons with d <= threshold."""
    return float(np.mean(genuine <= threshold)), float(np.mean(impostor <= threshold))


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """P(a genuine distance is below an impostor distance), ties counting half."""
    ordered = np.sort(impostor)
    above = len(ordered) - np.searchsorted(ordered, genuine, side="right")
    ties = np.searchsorted(ordered, genuine, side="right") - np.searchsorted(
        ordered, genuine, side="left"
    )
    return float(np.mean((above + ties / 2) / len(ordered)))


def tar_at_far(
    genuine: np.ndarray, impostor: np.ndarray, far: float
) -> tuple[float, float]:
    """TAR at the loosest threshold whose FAR is at most `far`, and that threshold.

    With n impostor comparisons at most floor(far * n) of them may be accepted; with
    600 impostor pairs, FAR 0.1% therefore means none at all.
    """
    ordered = np.sort(impostor[np.isfinite(impostor)])
    allowed = int(math.floor(far * len(impostor) + 1e-9))
    if allowed >= len(ordered):
        return float(np.mean(np.isfinite(genuine))), math.inf
    limit = ordered[allowed]  # accept d < limit: exactly `allowed` impostors pass
    return float(np.mean(genuine < limit)), float(np.nextafter(limit, -np.inf))


# --- the data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    file_a: str
    file_b: str
    same: int
    fold: int


def read_pairs(lfw: Path) -> list[Pair]:
    with open(lfw / "pairs.csv", newline="") as handle:
        return [
            Pair(row["file_a"], row["file_b"], int(row["same"]), int(row["fold"]))
            for row in csv.DictReader(handle)
        ]


def identity_of(file: str) -> str:
    return file.split("/", 1)[0]


@dataclass
class Embeddings:
    """One embedding per image (NaN rows where no face was found) and face counts."""

    files: list[str]
    vectors: np.ndarray
    face_counts: np.ndarray
    model_version: str
    spec: str

    @property
    def found(self) -> np.ndarray:
        return self.face_counts > 0

    def index(self) -> dict[str, int]:
        return {file: i for i, file in enumerate(self.files)}


# --- embedding, in worker processes --------------------------------------------------

_worker_engine: Any = None


def _start_worker(spec_text: str) -> None:
    """Give this worker process its own engine (engines are not shareable)."""
    global _worker_engine
    from rekollect.engine.registry import EngineSpec, create_engine

    _worker_engine = create_engine(EngineSpec.parse(spec_text))


def _decode(path: Path) -> np.ndarray:
    """Decode as the server does, so these embeddings equal the ones it stores."""
    data = path.read_bytes()
    try:
        from rekollect.service.images import decode_image
    except ImportError:  # before the image operations exist: plain Pillow
        import io

        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    return np.asarray(decode_image(data))


def _embed_one(path_text: str) -> tuple[int, np.ndarray | None]:
    """The number of faces in one image and the embedding of the most central one."""
    pixels = _decode(Path(path_text))
    faces = _worker_engine.analyze(pixels, embed=True)
    if not faces:
        return 0, None
    height, width = pixels.shape[:2]
    central = min(faces, key=lambda face: _off_centre(face.box, width, height))
    return len(faces), np.asarray(central.embedding, dtype=np.float32)


def _off_centre(box: Any, width: int, height: int) -> float:
    x = (box.left + box.right) / 2 - width / 2
    y = (box.top + box.bottom) / 2 - height / 2
    return x * x + y * y


def _spec_name(spec_text: str) -> str:
    from rekollect.engine.registry import EngineSpec

    return str(EngineSpec.parse(spec_text))


def compute_embeddings(
    lfw: Path, files: Sequence[str], spec_text: str, processes: int
) -> Embeddings:
    from rekollect.engine.registry import EngineSpec, model_version_of

    context = multiprocessing.get_context("spawn")
    vectors = np.full((len(files), 128), np.nan, dtype=np.float32)
    counts = np.zeros(len(files), dtype=np.int32)
    paths = [str(lfw / "images" / file) for file in files]
    started = time.perf_counter()
    with context.Pool(processes, _start_worker, (spec_text,)) as pool:
        results = pool.imap(_embed_one, paths, chunksize=8)
        for i, (count, vector) in enumerate(results):
            counts[i] = count
            if vector is not None:
                if vectors.shape[1] != len(vector):
                    vectors = np.full((len(files), len(vector)), np.nan, np.float32)
                vectors[i] = vector
            if (i + 1) % 200 == 0 or i + 1 == len(files):
                elapsed = time.perf_counter() - started
                print(
                    f"  embedded {i + 1}/{len(files)} images "
                    f"({(i + 1) / elapsed:.1f}/s)",
                    flush=True,
                )
    spec = EngineSpec.parse(spec_text)
    return Embeddings(list(files), vectors, counts, model_version_of(spec), str(spec))


def load_or_compute(
    cache: Path, lfw: Path, files: Sequence[str], spec_text: str, args: Any
) -> Embeddings:
    """The cached embeddings when they cover the same images and engine, else fresh."""
    if cache.exists() and not args.refresh:
        with np.load(cache, allow_pickle=False) as stored:
            cached = Embeddings(
                [str(f) for f in stored["files"]],
                stored["vectors"],
                stored["face_counts"],
                str(stored["model_version"]),
                str(stored["spec"]),
            )
        if cached.files == list(files) and cached.spec == _spec_name(spec_text):
            print(f"embeddings: cached in {cache}")
            return cached
        print(f"embeddings: {cache} is for other images or another engine; redoing")
    print(f"embeddings: {len(files)} images in {args.processes} process(es)")
    embeddings = compute_embeddings(lfw, files, spec_text, args.processes)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        cache,
        files=np.array(embeddings.files),
        vectors=embeddings.vectors,
        face_counts=embeddings.face_counts,
        model_version=np.array(embeddings.model_version),
        spec=np.array(embeddings.spec),
    )
    print(f"embeddings: cached in {cache}")
    return embeddings


# --- pair distances ---------------------------------------------------------------------


def pair_distances(embeddings: Embeddings, pairs: Sequence[Pair]) -> np.ndarray:
    """Euclidean distance of each pair; +inf where either image has no face."""
    where = embeddings.index()
    a = embeddings.vectors[[where[p.file_a] for p in pairs]]
    b = embeddings.vectors[[where[p.file_b] for p in pairs]]
    distances = np.linalg.norm(a.astype(np.float64) - b, axis=1)
    return np.where(np.isnan(distances), np.inf, distances)


# --- 1:N with one photo per person -----------------------------------------------------


@dataclass(frozen=True)
class Gallery:
    """One enrolled photo per person and the probes searched against them."""

    names: list[str]
    vectors: np.ndarray
    probes: np.ndarray
    probe_owner: np.ndarray  # index into names, or -1 for people not enrolled


def one_photo_gallery(embeddings: Embeddings, *, distractors: bool) -> Gallery:
    """Each person with 2+ usable photos enrolled with the first; the rest are probes.

    With `distractors`, people with a single usable photo are enrolled too (a larger
    gallery, as in use); without, those photos become probes of people who are not
    enrolled at all (the open-set case).
    """
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, file in enumerate(embeddings.files):
        if embeddings.found[i]:
            by_person[identity_of(file)].append(i)
    names, enrolled, probes, owners = [], [], [], []
    for person, rows in sorted(by_person.items()):
        if len(rows) >= 2 or distractors:
            names.append(person)
            enrolled.append(rows[0])
            probes += rows[1:]
            owners += [len(names) - 1] * (len(rows) - 1)
        else:
            probes += rows
            owners += [-1] * len(rows)
    vectors = embeddings.vectors
    return Gallery(
        names, vectors[enrolled], vectors[probes], np.array(owners, dtype=np.int64)
    )


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    squared = (a64**2).sum(1)[:, None] + (b64**2).sum(1)[None, :] - 2 * a64 @ b64.T
    return np.sqrt(np.maximum(squared, 0.0))


@dataclass(frozen=True)
class Identification:
    gallery_size: int
    probes: int
    rank1: float
    rank5: float
    wrong_top_at: dict[float, float]  # threshold -> share of probes
    right_top_at: dict[float, float]


def identify(gallery: Gallery, thresholds: dict[float, float]) -> Identification:
    """Rank-1/5 of enrolled people's probes, and how often the top match is wrong
    but scores at least each threshold (`thresholds`: similarity -> distance)."""
    known = gallery.probe_owner >= 0
    distances = distance_matrix(gallery.probes[known], gallery.vectors)
    owners = gallery.probe_owner[known]
    order = np.argsort(distances, axis=1)
    rank = np.argmax(order == owners[:, None], axis=1)
    top = order[:, 0]
    top_distance = distances[np.arange(len(top)), top]
    wrong = top != owners
    return Identification(
        gallery_size=len(gallery.names),
        probes=int(known.sum()),
        rank1=float(np.mean(rank == 0)),
        rank5=float(np.mean(rank < 5)),
        wrong_top_at={
            s: float(np.mean(wrong & (top_distance <= d)))
            for s, d in thresholds.items()
        },
        right_top_at={
            s: float(np.mean(~wrong & (top_distance <= d)))
            for s, d in thresholds.items()
        },
    )


def false_alarms(
    embeddings: Embeddings,
    sizes: Sequence[int],
    thresholds: dict[float, float],
    draws: int = 20,
) -> list[tuple[int, dict[float, float], np.ndarray]]:
    """Open-set search: the share of probes whose best match among N *other* people
    (one photo each) still scores at least each threshold, and the nearest-impostor
    distances themselves (all draws), from which the threshold for a wanted false
    alarm rate follows.

    Every usable image is a probe in turn; its gallery is N people drawn at random from
    everyone else (averaged over `draws` draws), so a probe never meets itself.
    """
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, file in enumerate(embeddings.files):
        if embeddings.found[i]:
            by_person[identity_of(file)].append(i)
    people = sorted(by_person)
    photo = embeddings.vectors[[by_person[p][0] for p in people]]
    usable = np.flatnonzero(embeddings.found)
    owner = np.array([people.index(identity_of(embeddings.files[i])) for i in usable])
    distances = distance_matrix(embeddings.vectors[usable], photo)
    distances[np.arange(len(usable)), owner] = np.inf  # never the probe's own person
    sizes = [min(size, len(people) - 1) for size in sizes]
    rng = np.random.default_rng(0)
    rows = np.arange(len(usable))
    shares = {size: {s: 0.0 for s in thresholds} for size in sizes}
    nearest_of: dict[int, list[np.ndarray]] = defaultdict(list)
    for _ in range(draws):
        # A random order of everyone per probe; the first N + 1 hold N others (the
        # probe's own person, at distance inf, takes the place of the extra one when
        # it is drawn, and the last one is dropped when it is not).
        order = rng.random((len(usable), len(people))).argsort(axis=1)
        for size in sizes:
            picked = order[:, : size + 1].copy()
            has_own = (picked == owner[:, None]).any(axis=1)
            picked[~has_own, -1] = owner[~has_own]
            nearest = distances[rows[:, None], picked].min(axis=1)
            nearest_of[size].append(nearest)
            for s, d in thresholds.items():
                shares[size][s] += float(np.mean(nearest <= d)) / draws
    return [(size, shares[size], np.concatenate(nearest_of[size])) for size in sizes]


# --- user aggregation -------------------------------------------------------------------


AGGREGATIONS = (
    "best match (min)",
    "centroid",
    "mean of best and centroid",
    "mean of 2 nearest",
    "mean of 3 nearest",
    "mean of all faces",
    "one photo only (baseline)",
)


@dataclass(frozen=True)
class Aggregation:
    name: str
    genuine: np.ndarray
    impostor: np.ndarray
    rank1: float


def user_aggregation(
    embeddings: Embeddings, rounds: int
) -> tuple[list[Aggregation], int]:
    """Genuine and impostor user scores for each aggregation of a user's faces.

    People with 3+ usable photos; in round r each person's photo number r (mod their
    count) is the probe and the others (up to 100) are the user. Genuine scores are
    probe vs own user, impostor scores probe vs every other person's user of the same
    round; rank-1 is over all users of the round.
    """
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, file in enumerate(embeddings.files):
        if embeddings.found[i]:
            by_person[identity_of(file)].append(i)
    people = [p for p, rows in sorted(by_person.items()) if len(rows) >= 3]
    vectors = embeddings.vectors.astype(np.float64)
    genuine: dict[str, list[float]] = defaultdict(list)
    impostor: dict[str, list[np.ndarray]] = defaultdict(list)
    hits: dict[str, int] = defaultdict(int)
    for r in range(rounds):
        probes, users = [], []
        for person in people:
            rows = by_person[person]
            held_out = rows[r % len(rows)]
            probes.append(vectors[held_out])
            users.append([i for i in rows if i != held_out][:MAX_USER_FACES])
        probe_matrix = np.stack(probes)
        scores = {name: np.empty((len(people), len(people))) for name in AGGREGATIONS}
        for j, faces in enumerate(users):
            per_face = distance_matrix(probe_matrix, vectors[faces])
            nearest = np.sort(per_face, axis=1)
            centroid = np.linalg.norm(probe_matrix - vectors[faces].mean(0), axis=1)
            scores["best match (min)"][:, j] = nearest[:, 0]
            scores["centroid"][:, j] = centroid
            scores["mean of best and centroid"][:, j] = (nearest[:, 0] + centroid) / 2
            scores["mean of 2 nearest"][:, j] = nearest[:, :2].mean(1)
            scores["mean of 3 nearest"][:, j] = nearest[:, :3].mean(1)
            scores["mean of all faces"][:, j] = nearest.mean(1)
            scores["one photo only (baseline)"][:, j] = per_face[:, 0]
        off_diagonal = ~np.eye(len(people), dtype=bool)
        for name, matrix in scores.items():
            genuine[name] += list(np.diag(matrix))
            impostor[name].append(matrix[off_diagonal])
            hits[name] += int(
                np.sum(np.argmin(matrix, axis=1) == np.arange(len(people)))
            )
    results = [
        Aggregation(
            name,
            np.array(genuine[name]),
            np.concatenate(impostor[name]),
            hits[name] / (rounds * len(people)),
        )
        for name in AGGREGATIONS
    ]
    return results, len(people)


def separation(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """d' (decidability): gap between the means in units of the pooled deviation."""
    pooled = math.sqrt((genuine.var() + impostor.var()) / 2)
    return float((impostor.mean() - genuine.mean()) / pooled)


# --- the report -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    lfw = Path(args.lfw)
    if not (lfw / "pairs.csv").is_file():
        print(f"lfw-dev not found at {lfw}", file=sys.stderr)
        return 2
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"numpy {np.__version__}, engine {args.engine}"
    )
    pairs = read_pairs(lfw)
    files = sorted({p.file_a for p in pairs} | {p.file_b for p in pairs})
    cache = Path(args.cache) if args.cache else _default_cache(args.engine)
    embeddings = load_or_compute(cache, lfw, files, args.engine, args)

    distances = pair_distances(embeddings, pairs)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    usable = np.isfinite(distances)

    report_data(embeddings, pairs, usable)
    fitted = fit_curve(distances[usable], same[usable])
    current = Curve(CURRENT_K, CURRENT_D0)
    report_fit(distances, same, folds, usable, fitted, current)
    report_verification(distances, same, folds, fitted, current)
    report_thresholds(distances, same, fitted, current)
    report_identification(embeddings, fitted, current)
    report_aggregation(embeddings, args.rounds, current)
    _summary(fitted, current, distances, same)
    return 0


def _default_cache(engine: str) -> Path:
    safe = "".join(c if c.isalnum() else "-" for c in engine)
    return Path(tempfile.gettempdir()) / f"rekollect-lfw-dev-embeddings-{safe}.npz"


def report_data(
    embeddings: Embeddings, pairs: Sequence[Pair], usable: np.ndarray
) -> None:
    missing = [
        f
        for f, n in zip(embeddings.files, embeddings.face_counts, strict=True)
        if n == 0
    ]
    several = int(np.sum(embeddings.face_counts > 1))
    same = np.array([p.same for p in pairs])
    print_table(
        "Data (lfw-dev)",
        ("images", "no face found", "several faces", "pairs", "usable pairs",
         "same / different usable", "model version"),
        [(str(len(embeddings.files)), str(len(missing)), str(several), str(len(pairs)),
          str(int(usable.sum())),
          f"{int(same[usable].sum())} / {int((1 - same[usable]).sum())}",
          embeddings.model_version)],
    )  # fmt: skip
    if missing:
        print("no face found in: " + ", ".join(missing))


def report_fit(
    distances: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray,
    usable: np.ndarray,
    fitted: Curve,
    current: Curve,
) -> None:
    rows = []
    fold_fits = {}
    for label, mask in [("all pairs", usable)] + [
        (f"fold {f}", usable & (folds == f)) for f in sorted(set(folds))
    ]:
        curve = (
            fitted if label == "all pairs" else fit_curve(distances[mask], same[mask])
        )
        if label != "all pairs":
            fold_fits[int(label.split()[1])] = curve
        rows.append(
            (label, str(int(mask.sum())), f"{curve.k:.1f} ± {curve.k_se:.1f}",
             f"{curve.d0:.4f} ± {curve.d0_se:.4f}",
             f"{curve.distance_for(80):.4f}", f"{curve.distance_for(95):.4f}",
             f"{log_loss(curve, distances[mask], same[mask]):.4f}",
             str(curve.iterations))
        )  # fmt: skip
    rows.append(
        ("current constants", str(int(usable.sum())), f"{current.k:.1f}",
         f"{current.d0:.4f}", f"{current.distance_for(80):.4f}",
         f"{current.distance_for(95):.4f}",
         f"{log_loss(current, distances[usable], same[usable]):.4f}", "-")
    )  # fmt: skip
    print_table(
        "Logistic fit of P(same | d) = 1 / (1 + exp(k (d - d0)))  (± 1 standard error)",
        ("fitted on", "pairs", "k", "d0", "d at 80", "d at 95", "log loss", "Newton"),
        rows,
    )

    cross = []
    for train, curve in fold_fits.items():
        for test in fold_fits:
            if test == train:
                continue
            mask = folds == test
            own = fold_fits[test]
            cross.append(
                (f"fold {train}", f"fold {test}",
                 f"{log_loss(curve, distances[mask & usable], same[mask & usable]):.4f}",
                 f"{log_loss(own, distances[mask & usable], same[mask & usable]):.4f}",
                 _pct(accuracy_at(distances[mask], same[mask], curve.distance_for(80))),
                 _pct(accuracy_at(distances[mask], same[mask], own.distance_for(80))))
            )  # fmt: skip
    print_table(
        "Fold stability: fit on one fold, evaluate on the other",
        ("fit on", "evaluate on", "log loss", "log loss (own fit)",
         "accuracy at 80", "accuracy at 80 (own fit)"),
        cross,
    )  # fmt: skip


def report_verification(
    distances: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray,
    fitted: Curve,
    current: Curve,
) -> None:
    genuine, impostor = distances[same == 1], distances[same == 0]
    threshold, best_accuracy = best_threshold(distances, same)
    cross_validated = []
    for test in sorted(set(folds)):
        t, _ = best_threshold(distances[folds != test], same[folds != test])
        cross_validated.append(
            accuracy_at(distances[folds == test], same[folds == test], t)
        )
    rows = [
        ("accuracy at similarity 80, current constants",
         f"d <= {current.distance_for(80):.4f}",
         _pct(accuracy_at(distances, same, current.distance_for(80)))),
        ("accuracy at similarity 80, fitted constants",
         f"d <= {fitted.distance_for(80):.4f}",
         _pct(accuracy_at(distances, same, fitted.distance_for(80)))),
        ("best single threshold (chosen on all pairs)", f"d <= {threshold:.4f}",
         _pct(best_accuracy)),
        ("best threshold, 2-fold cross-validated", "chosen on the other fold",
         _pct(float(np.mean(cross_validated)))),
        ("ROC AUC", "", f"{roc_auc(genuine, impostor):.4f}"),
    ]  # fmt: skip
    for far in FARS:
        tar, limit = tar_at_far(genuine, impostor, far)
        allowed = int(math.floor(far * len(impostor) + 1e-9))
        rows.append(
            (f"TAR at FAR {100 * far:g}% ({allowed} of {len(impostor)} impostors)",
             f"d <= {limit:.4f} (sim {float(current.similarity(np.array(limit))):.1f}"
             " now)", _pct(tar))
        )  # fmt: skip
    finite_g, finite_i = genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]
    rows.append(
        ("same-person distance (mean ± sd)", "README, all LFW: 0.435 ± 0.081",
         f"{finite_g.mean():.3f} ± {finite_g.std():.3f}")
    )  # fmt: skip
    rows.append(
        ("different-person distance (mean ± sd)", "README, all LFW: 0.830 ± 0.088",
         f"{finite_i.mean():.3f} ± {finite_i.std():.3f}")
    )  # fmt: skip
    print_table("Verification over the pairs", ("figure", "at", "value"), rows)


def report_thresholds(
    distances: np.ndarray, same: np.ndarray, fitted: Curve, current: Curve
) -> None:
    genuine, impostor = distances[same == 1], distances[same == 0]
    rows = []
    for s in THRESHOLDS:
        row = [f"{s:g}"]
        for curve in (current, fitted):
            d = curve.distance_for(s)
            tar, far = accepted_shares(genuine, impostor, d)
            row += [f"{d:.4f}", _pct(tar), _pct(far, 2),
                    _pct(accuracy_at(distances, same, d))]  # fmt: skip
        rows.append(tuple(row))
    print_table(
        "Same-person and different-person pairs accepted at each similarity threshold",
        ("similarity", "d now", "same acc.", "diff. acc.", "accuracy",
         "d fitted", "same acc.", "diff. acc.", "accuracy"),
        rows,
    )  # fmt: skip


def report_identification(
    embeddings: Embeddings, fitted: Curve, current: Curve
) -> None:
    thresholds = {s: current.distance_for(s) for s in SEARCH_THRESHOLDS}
    rows = []
    for distractors in (False, True):
        gallery = one_photo_gallery(embeddings, distractors=distractors)
        found = identify(gallery, thresholds)
        rows.append(
            (f"{found.gallery_size}" + (" +1-photo" if distractors else ""),
             str(found.probes), _pct(found.rank1), _pct(found.rank5), "wrong",
             *(_pct(found.wrong_top_at[s]) for s in thresholds))
        )  # fmt: skip
        rows.append(
            ("", "", "", "", "right",
             *(_pct(found.right_top_at[s]) for s in thresholds))
        )  # fmt: skip
    names = [f"{s:g}" for s in thresholds]
    print_table(
        "1:N identification, one enrolled photo per person, current constants: "
        "share of probes whose top match is the WRONG person (first row) or the "
        "right one (second row) and scores >= threshold",
        ("gallery", "probes", "rank-1", "rank-5", "top match",
         *(f">= {n}" for n in names)),
        rows,
    )  # fmt: skip

    people = len(
        {
            identity_of(f)
            for f, ok in zip(embeddings.files, embeddings.found, strict=True)
            if ok
        }
    )
    sizes = [s for s in (1, 10, 100, 300, 1000) if s < people] + [people - 1]
    alarms = false_alarms(embeddings, sizes, thresholds)
    # Per-comparison FAR of one photo against one other person's photo.
    impostor_rate = {s: _single_far(embeddings, d) for s, d in thresholds.items()}
    rows = []
    for size, shares, nearest in alarms:
        at_1, at_5 = np.quantile(nearest, [0.01, 0.05])
        rows.append(
            (str(size),
             *(f"{_pct(shares[s])} ({_pct(1 - (1 - impostor_rate[s]) ** size)})"
               for s in thresholds),
             f"{at_5:.3f} / {float(current.similarity(np.array(at_5))):.2f}",
             f"{at_1:.3f} / {float(current.similarity(np.array(at_1))):.2f}")
        )  # fmt: skip
    print_table(
        "Open-set false alarms: probes of people NOT enrolled whose best match among "
        "N others still scores >= threshold (measured; in brackets 1-(1-FAR)^N); "
        "last columns: the distance / similarity that keeps false alarms to 5% and 1%",
        ("N people", *(f">= {n} (d<={thresholds[float(n)]:.3f})" for n in names),
         "5%: d / sim", "1%: d / sim"),
        rows,
    )  # fmt: skip
    print(
        "per-comparison FAR, every photo against every other person's first photo: "
        + ", ".join(f">= {s:g}: {_pct(r, 3)}" for s, r in impostor_rate.items())
    )


def _single_far(embeddings: Embeddings, threshold: float) -> float:
    usable = np.flatnonzero(embeddings.found)
    owner = np.array([identity_of(embeddings.files[i]) for i in usable])
    firsts = {}
    for row, person in zip(usable, owner, strict=True):
        firsts.setdefault(person, row)
    people = sorted(firsts)
    distances = distance_matrix(
        embeddings.vectors[usable], embeddings.vectors[[firsts[p] for p in people]]
    )
    other = owner[:, None] != np.array(people)[None, :]
    return float(np.mean(distances[other] <= threshold))


def report_aggregation(embeddings: Embeddings, rounds: int, current: Curve) -> None:
    results, people = user_aggregation(embeddings, rounds)
    d80 = current.distance_for(80)
    rows = []
    for result in results:
        g, i = result.genuine, result.impostor
        tar1, _ = tar_at_far(g, i, 0.01)
        tar01, _ = tar_at_far(g, i, 0.001)
        tar80, far80 = accepted_shares(g, i, d80)
        rows.append(
            (result.name, f"{g.mean():.3f} ± {g.std():.3f}",
             f"{i.mean():.3f} ± {i.std():.3f}", f"{separation(g, i):.2f}",
             f"{roc_auc(g, i):.5f}", _pct(tar1), _pct(tar01), _pct(result.rank1),
             _pct(tar80), _pct(far80, 3))
        )  # fmt: skip
    genuine_count = len(results[0].genuine)
    impostor_count = len(results[0].impostor)
    print_table(
        f"User aggregation: {people} people with 3+ photos, {rounds} rounds, "
        f"{genuine_count} genuine / {impostor_count:,} impostor probe-user scores",
        ("aggregation", "genuine d", "impostor d", "d'", "AUC", "TAR@FAR 1%",
         "TAR@FAR 0.1%", "rank-1", f"TAR at 80 (d<={d80:.3f})", "FAR at 80"),
        rows,
    )  # fmt: skip


def _summary(
    fitted: Curve, current: Curve, distances: np.ndarray, same: np.ndarray
) -> None:
    print()
    print(
        f"fitted K = {fitted.k:.1f} ± {fitted.k_se:.1f}, D0 = {fitted.d0:.4f} ± "
        f"{fitted.d0_se:.4f} (current K = {current.k}, D0 = {current.d0})"
    )
    for name, curve in (("current", current), ("fitted", fitted)):
        d = curve.distance_for(DEFAULT_THRESHOLD)
        print(
            f"accuracy at similarity {DEFAULT_THRESHOLD:g} with the {name} constants: "
            f"{_pct(accuracy_at(distances, same, d), 2)} (d <= {d:.4f})"
        )


def _pct(share: float, digits: int = 1) -> str:
    return f"{100 * share:.{digits}f}%"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", default=str(LFW), help="the lfw-dev folder")
    parser.add_argument(
        "--cache", help="embeddings .npz (default: in the temp directory)"
    )
    parser.add_argument("--refresh", action="store_true", help="ignore the cache")
    parser.add_argument("--processes", type=int, default=2, help="engine processes (2)")
    parser.add_argument("--engine", default="dlib", help="engine spec (dlib)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="held-out rounds for aggregation (3)"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
