"""The per-collection vector index: exact answers, catching up from the change log
(within one process and across two), late commits, the approximate path, threads.

Every test runs against a real SQLite store in its own directory, written through the
service functions the server uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert

from rekollect.index import CollectionIndexes
from rekollect.index import approximate as approximate_module
from rekollect.index import vectors as vectors_module
from rekollect.index.vectors import VectorMatrix
from rekollect.service import Service
from rekollect.service.collection import create_collection, delete_collection
from rekollect.service.faces import add_faces, delete_faces
from rekollect.storage import open_database
from rekollect.storage import repository as repo
from rekollect.storage.records import NewFace, Scope, embedding_bytes
from rekollect.storage.schema import face_changes, faces
from tests import faces as made_up

SCOPE = Scope("000000000000", "us-east-1")
DIMENSION = made_up.DIMENSION
THRESHOLD = 0.6


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(open_database(f"sqlite:///{tmp_path}/r.db"))
    yield svc
    svc.database.close()


def new_collection(svc: Service, collection_id: str) -> int:
    create_collection(svc, SCOPE, collection_id=collection_id)
    return collection_pk(svc, collection_id)


def collection_pk(svc: Service, collection_id: str) -> int:
    with svc.database.read() as conn:
        collection = repo.get_collection(conn, SCOPE, collection_id)
    assert collection is not None
    return collection.pk


def store(svc: Service, collection_id: str, embeddings: np.ndarray) -> list[int]:
    """Add faces through the service; returns their primary keys in order."""
    new = [made_up.new_face(e) for e in embeddings]
    for start in range(0, len(new), 500):
        add_faces(svc, SCOPE, collection_id, new[start : start + 500])
    return face_pks(svc, collection_id, new)


def face_pks(svc: Service, collection_id: str, new: Sequence[NewFace]) -> list[int]:
    with svc.database.read() as conn:
        found = repo.get_faces(
            conn, collection_pk(svc, collection_id), [f.face_id for f in new]
        )
    return [found[f.face_id].pk for f in new]


def face_ids_of(svc: Service, collection_id: str, pks: Sequence[int]) -> list[str]:
    with svc.database.read() as conn:
        found = repo.faces_by_pk(conn, pks)
    return [found[pk].face_id for pk in pks]


def identities(
    rng: np.random.Generator, people: int, per_person: int
) -> tuple[np.ndarray, np.ndarray]:
    """Face-like data: people's centres and `per_person` faces each, as in tests/faces.py,
    with the spread of each face varied so that faces of one person lie about 0.3-0.55
    apart and faces of different people about 0.8-1.2."""
    centres = rng.standard_normal((people, DIMENSION)) / np.sqrt(2 * DIMENSION)
    spread = rng.uniform(0.3, 0.55, (people, per_person, 1)) / np.sqrt(2 * DIMENSION)
    noise = rng.standard_normal((people, per_person, DIMENSION)) * spread
    embeddings = (centres[:, None, :] + noise).reshape(-1, DIMENSION)
    return centres.astype(np.float32), embeddings.astype(np.float32)


def fresh_faces(rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """A new face of each given person."""
    spread = rng.uniform(0.3, 0.55, (len(centres), 1)) / np.sqrt(2 * DIMENSION)
    noise = rng.standard_normal(centres.shape) * spread
    return (centres + noise).astype(np.float32)


def brute_force(
    embeddings: np.ndarray,
    pks: Sequence[int],
    query: np.ndarray,
    *,
    max_distance: float,
    limit: int,
    exclude: Sequence[int] = (),
) -> list[tuple[int, float]]:
    """The answer by definition: every distance, filtered, sorted, cut."""
    difference = embeddings.astype(np.float64) - query.astype(np.float64)
    distances = np.sqrt((difference**2).sum(axis=1))
    pairs = [
        (int(pk), float(d))
        for pk, d in zip(pks, distances, strict=True)
        if d <= max_distance and pk not in exclude
    ]
    pairs.sort(key=lambda pair: (pair[1], pair[0]))
    return pairs[:limit]


def assert_same(
    got: list[tuple[int, float]], expected: list[tuple[int, float]]
) -> None:
    assert [pk for pk, _ in got] == [pk for pk, _ in expected]
    np.testing.assert_allclose(
        [d for _, d in got], [d for _, d in expected], rtol=1e-12, atol=1e-12
    )


def insert_face_row(svc: Service, collection_pk_: int, embedding: np.ndarray) -> int:
    """A face row alone, without its change: the test logs the change itself."""
    face = made_up.new_face(embedding)
    with svc.database.write() as conn:
        return int(
            conn.execute(
                insert(faces)
                .values(
                    collection_pk=collection_pk_,
                    face_id=face.face_id,
                    image_id=face.image_id,
                    box_width=0.1,
                    box_height=0.1,
                    box_left=0.1,
                    box_top=0.1,
                    confidence=99.0,
                    model_version="1.0",
                    embedding=embedding_bytes(embedding),
                    embedding_dim=len(embedding),
                    created_at=0.0,
                )
                .returning(faces.c.pk)
            ).scalar_one()
        )


def log_change(svc: Service, seq: int, collection_pk_: int, face_pk: int) -> None:
    """An "add" at an explicit seq, as a transaction that commits late would leave it."""
    with svc.database.write() as conn:
        conn.execute(
            insert(face_changes).values(
                seq=seq,
                collection_pk=collection_pk_,
                face_pk=face_pk,
                change="add",
                changed_at=0.0,
            )
        )


def head_seq(svc: Service) -> int:
    from rekollect.storage.changes import latest_seq

    with svc.database.read() as conn:
        return latest_seq(conn)


# --- the matrix ----------------------------------------------------------------------


def test_matrix_follows_random_upserts_and_removals() -> None:
    rng = np.random.default_rng(7)
    matrix = VectorMatrix()
    model: dict[int, np.ndarray] = {}
    for _ in range(300):
        if rng.random() < 0.55:
            pks = np.unique(rng.integers(0, 400, rng.integers(1, 20)))
            vectors = rng.standard_normal((len(pks), 8)).astype(np.float32)
            matrix.upsert(pks, vectors)
            model.update(zip(pks.tolist(), vectors, strict=True))
        else:
            pks = rng.integers(0, 400, rng.integers(1, 40)).tolist()
            removed = matrix.remove(pks)
            assert set(removed) == {pk for pk in set(pks) if pk in model}
            for pk in pks:
                model.pop(pk, None)
        assert len(matrix) == len(model)
        assert matrix.capacity <= max(64, 4 * len(model))
    held = dict(zip(matrix.pks.tolist(), matrix.vectors, strict=True))
    assert held.keys() == model.keys()
    for pk, vector in model.items():
        np.testing.assert_array_equal(held[pk], vector)


# --- exact search --------------------------------------------------------------------


@pytest.mark.parametrize(
    "small_blocks", [False, True], ids=["one-block", "many-blocks"]
)
def test_exact_search_is_the_brute_force_answer(
    service: Service, monkeypatch: pytest.MonkeyPatch, small_blocks: bool
) -> None:
    if small_blocks:  # exercise the merging of blocks and the pruning of candidates
        monkeypatch.setattr(vectors_module, "MIN_BLOCK_ROWS", 16)
        monkeypatch.setattr(vectors_module, "BLOCK_ELEMENTS", 64)
        monkeypatch.setattr(vectors_module, "PRUNE_AT", 8)
        monkeypatch.setattr(vectors_module, "RECOMPUTE_CHUNK", 7)
    rng = np.random.default_rng(1)
    centres, embeddings = identities(rng, 80, 4)
    pk = new_collection(service, "exact")
    pks = store(service, "exact", embeddings)
    strangers = identities(rng, 5, 1)[1]
    queries = np.concatenate([fresh_faces(rng, centres[:20]), strangers])
    indexes = CollectionIndexes(service.database)

    for max_distance in (0.0, 0.35, THRESHOLD, 1.0, 3.0):
        for limit in (1, 3, 10, 4096):
            got = indexes.search(pk, queries, max_distance=max_distance, limit=limit)
            assert len(got) == len(queries)
            for query, answer in zip(queries, got, strict=True):
                expected = brute_force(
                    embeddings, pks, query, max_distance=max_distance, limit=limit
                )
                assert_same(answer, expected)

    # A batch answers as its queries would one by one.
    one_by_one = [
        indexes.search(pk, q[None, :], max_distance=1.0, limit=5)[0] for q in queries
    ]
    assert indexes.search(pk, queries, max_distance=1.0, limit=5) == one_by_one


def test_exclude_skips_faces_without_counting_against_the_limit(
    service: Service,
) -> None:
    rng = np.random.default_rng(2)
    centres, embeddings = identities(rng, 50, 4)
    pk = new_collection(service, "exclude")
    pks = store(service, "exclude", embeddings)
    indexes = CollectionIndexes(service.database)
    query = fresh_faces(rng, centres[:1])
    nearest = indexes.search(pk, query, max_distance=3.0, limit=3)[0]
    exclude = {nearest[0][0], nearest[2][0], 10**9}  # 10**9: a pk that is not there
    got = indexes.search(pk, query, max_distance=3.0, limit=3, exclude=exclude)[0]
    assert len(got) == 3
    assert not exclude & {face_pk for face_pk, _ in got}
    expected = brute_force(
        embeddings, pks, query[0], max_distance=3.0, limit=3, exclude=list(exclude)
    )
    assert_same(got, expected)


def test_empty_collections_and_bad_queries(service: Service) -> None:
    indexes = CollectionIndexes(service.database)
    pk = new_collection(service, "empty")
    query = np.zeros((2, DIMENSION), np.float32)
    assert indexes.search(pk, query, max_distance=1.0, limit=5) == [[], []]
    assert indexes.search(12345, query, max_distance=1.0, limit=5) == [[], []]
    assert indexes.count(pk) == 0
    store(service, "empty", made_up.person(3)[None, :])
    assert indexes.search(pk, query[:0], max_distance=1.0, limit=5) == []
    assert indexes.search(pk, query, max_distance=1.0, limit=0) == [[], []]
    with pytest.raises(ValueError):
        indexes.search(pk, np.zeros((1, 64), np.float32), max_distance=1.0, limit=5)
    with pytest.raises(ValueError):
        indexes.search(pk, np.zeros(DIMENSION, np.float32), max_distance=1.0, limit=5)


# --- catching up ---------------------------------------------------------------------


def test_adds_deletes_and_re_adds_are_applied(service: Service) -> None:
    indexes = CollectionIndexes(service.database)
    pk = new_collection(service, "inc")
    person = made_up.person(11)
    first = store(service, "inc", np.stack([made_up.face_of(person) for _ in range(3)]))
    query = made_up.face_of(person)[None, :]

    def found() -> set[int]:
        return {
            p for p, _ in indexes.search(pk, query, max_distance=THRESHOLD, limit=10)[0]
        }

    assert found() == set(first)
    second = store(service, "inc", np.stack([made_up.face_of(person)]))
    assert found() == set(first + second)

    delete_faces(
        service,
        SCOPE,
        collection_id="inc",
        face_ids=face_ids_of(service, "inc", first[:2]),
    )
    assert found() == {first[2], *second}
    assert indexes.count(pk) == 2

    # The same embedding again, as a new face.
    with service.database.read() as conn:
        embedding = repo.face_embeddings(conn, [second[0]])[second[0]]
    delete_faces(
        service,
        SCOPE,
        collection_id="inc",
        face_ids=face_ids_of(service, "inc", second),
    )
    assert found() == {first[2]}
    again = store(service, "inc", embedding[None, :])
    assert found() == {first[2], *again}
    assert indexes.count(pk) == 2


@pytest.mark.parametrize("pk_reused", [True, False], ids=["pk-reused", "new-pk"])
def test_deleted_collection_is_emptied_and_a_recreated_one_starts_afresh(
    service: Service, pk_reused: bool
) -> None:
    indexes = CollectionIndexes(service.database)
    old_pk = new_collection(service, "gone")
    if not pk_reused:
        new_collection(service, "later")  # "gone" no longer has the highest pk
    person = made_up.person(12)
    store(service, "gone", np.stack([made_up.face_of(person) for _ in range(3)]))
    query = made_up.face_of(person)[None, :]
    assert len(indexes.search(old_pk, query, max_distance=THRESHOLD, limit=10)[0]) == 3

    delete_collection(service, SCOPE, collection_id="gone")
    assert indexes.search(old_pk, query, max_distance=THRESHOLD, limit=10) == [[]]
    assert indexes.count(old_pk) == 0

    new_pk = new_collection(service, "gone")
    # SQLite hands out the highest rowid + 1 again, so a collection deleted while it
    # had the highest pk comes back with the same one; the index copes either way.
    assert (new_pk == old_pk) is pk_reused
    newcomer = store(service, "gone", made_up.face_of(person)[None, :])
    assert [
        p for p, _ in indexes.search(new_pk, query, max_distance=THRESHOLD, limit=10)[0]
    ] == newcomer
    if not pk_reused:
        assert indexes.search(old_pk, query, max_distance=THRESHOLD, limit=10) == [[]]


def test_writes_through_another_service_are_found_at_once(tmp_path: Path) -> None:
    """Two services on one SQLite file stand for two processes."""
    url = f"sqlite:///{tmp_path}/shared.db"
    writer, reader = Service(open_database(url)), Service(open_database(url))
    try:
        pk = new_collection(writer, "shared")
        indexes = CollectionIndexes(reader.database)
        person = made_up.person(13)
        query = made_up.face_of(person)[None, :]
        assert indexes.search(pk, query, max_distance=THRESHOLD, limit=10) == [[]]

        added = []
        for _ in range(5):
            added += store(writer, "shared", made_up.face_of(person)[None, :])
            found = indexes.search(pk, query, max_distance=THRESHOLD, limit=10)[0]
            assert sorted(p for p, _ in found) == sorted(added)

        delete_faces(
            writer,
            SCOPE,
            collection_id="shared",
            face_ids=face_ids_of(writer, "shared", added[:3]),
        )
        found = indexes.search(pk, query, max_distance=THRESHOLD, limit=10)[0]
        assert sorted(p for p, _ in found) == sorted(added[3:])

        # A third index, loaded after the writes, agrees.
        assert CollectionIndexes(reader.database).count(pk) == 2
        delete_collection(writer, SCOPE, collection_id="shared")
        assert indexes.count(pk) == 0
    finally:
        writer.database.close()
        reader.database.close()


def test_a_change_that_becomes_visible_late_is_not_missed(service: Service) -> None:
    """On PostgreSQL seq 10 may commit after seq 12: simulated with explicit seqs."""
    now = [1000.0]
    indexes = CollectionIndexes(
        service.database, gap_timeout_s=60.0, clock=lambda: now[0]
    )
    pk = new_collection(service, "late")
    person = made_up.person(14)
    query = made_up.face_of(person)[None, :]
    assert indexes.count(pk) == 0
    head = head_seq(service)

    early = insert_face_row(service, pk, made_up.face_of(person))
    log_change(service, head + 3, pk, early)  # seqs head+1 and head+2 not visible yet
    found = indexes.search(pk, query, max_distance=THRESHOLD, limit=10)[0]
    assert [p for p, _ in found] == [early]

    late = insert_face_row(service, pk, made_up.face_of(person))
    log_change(service, head + 1, pk, late)  # commits after head+3 was read
    found = indexes.search(pk, query, max_distance=THRESHOLD, limit=10)[0]
    assert sorted(p for p, _ in found) == sorted([early, late])

    # A process loading now notes head+2 as missing and picks it up when it appears.
    second = CollectionIndexes(service.database, clock=lambda: now[0])
    assert second.count(pk) == 2
    later = insert_face_row(service, pk, made_up.face_of(person))
    log_change(service, head + 2, pk, later)
    assert second.count(pk) == 3
    assert indexes.count(pk) == 3

    # A seq that never appears (a rolled-back write) is forgotten after the timeout.
    store(service, "late", made_up.face_of(person)[None, :])  # head+4
    log_change(service, head + 6, pk + 1000, 1)  # head+5 missing for good
    assert indexes.count(pk) == 4
    entry = indexes._collection(pk)
    assert list(entry.gaps) == [head + 5]
    now[0] += 61.0
    assert indexes.count(pk) == 4
    assert entry.gaps == {}


# --- the approximate path ------------------------------------------------------------


def test_approximate_search_finds_the_faces_exact_search_finds(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    centres, embeddings = identities(rng, 500, 4)
    pk = new_collection(service, "ivf")
    pks = store(service, "ivf", embeddings)
    approximate = CollectionIndexes(service.database, approximate_above=1000)
    exact = CollectionIndexes(service.database)
    queries = fresh_faces(rng, centres[rng.choice(len(centres), 300, replace=False)])

    got = approximate.search(pk, queries, max_distance=THRESHOLD, limit=100)
    assert approximate.approximate(pk) and not exact.approximate(pk)
    expected = exact.search(pk, queries, max_distance=THRESHOLD, limit=100)
    wanted = sum(len(answer) for answer in expected)
    found = sum(
        len(set(a) & set(e)) for a, e in zip(got, expected, strict=True)
    )  # pairs found: same pk and the same (exact) distance
    assert wanted > 900
    assert found / wanted >= 0.99
    for answer in got:  # whatever is returned is right
        assert all(d <= THRESHOLD for _, d in answer)
        assert [d for _, d in answer] == sorted(d for _, d in answer)

    # Updates on the approximate path: delete what the first queries found, add more.
    gone = [p for answer in got[:20] for p, _ in answer]
    delete_faces(
        service, SCOPE, collection_id="ivf", face_ids=face_ids_of(service, "ivf", gone)
    )
    after = approximate.search(pk, queries[:20], max_distance=THRESHOLD, limit=100)
    assert not {p for answer in after for p, _ in answer} & set(gone)
    newcomers = store(service, "ivf", queries[:20])
    after = approximate.search(pk, queries[:20], max_distance=THRESHOLD, limit=1)
    assert [answer[0] for answer in after] == [(p, 0.0) for p in newcomers]
    assert approximate.count(pk) == len(pks) - len(gone) + 20

    # Grown past RETRAIN_GROWTH times the trained size: trained again.
    monkeypatch.setattr(approximate_module, "RETRAIN_GROWTH", 1.1)
    trained = approximate._collection(pk).ivf
    assert trained is not None
    extra = store(service, "ivf", identities(rng, 80, 4)[1])
    approximate.search(pk, queries[:1], max_distance=THRESHOLD, limit=1)
    retrained = approximate._collection(pk).ivf
    assert retrained is not None and retrained is not trained
    assert retrained.trained_size == approximate.count(pk)

    # Shrunk to half the threshold: back to exact search.
    alive = sorted((set(pks) - set(gone)) | set(newcomers) | set(extra))
    doomed = alive[:-400]
    for start in range(0, len(doomed), 1000):
        ids = face_ids_of(service, "ivf", doomed[start : start + 1000])
        delete_faces(service, SCOPE, collection_id="ivf", face_ids=ids)
    assert approximate.count(pk) <= 500
    assert not approximate.approximate(pk)


# --- threads -------------------------------------------------------------------------


def test_searches_while_another_thread_adds_faces(service: Service) -> None:
    indexes = CollectionIndexes(service.database)
    busy_pk = new_collection(service, "busy")
    quiet_pk = new_collection(service, "quiet")
    rng = np.random.default_rng(4)
    centres, embeddings = identities(rng, 40, 4)
    store(service, "quiet", embeddings)
    errors: list[BaseException] = []
    added: list[int] = []
    done = threading.Event()

    def write() -> None:
        try:
            for number in range(20):
                added.extend(
                    store(
                        service, "busy", fresh_faces(rng, centres[number : number + 1])
                    )
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            done.set()

    def search(pk: int) -> None:
        try:
            while not done.is_set():
                answers = indexes.search(pk, centres, max_distance=THRESHOLD, limit=10)
                assert len(answers) == len(centres)
                time.sleep(0)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=search, args=(pk,))
        for pk in (busy_pk, busy_pk, quiet_pk)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert indexes.count(busy_pk) == 20
    answers = indexes.search(busy_pk, centres[:20], max_distance=THRESHOLD, limit=10)
    assert [p for answer in answers for p, _ in answer] == added
    assert indexes.count(quiet_pk) == len(embeddings)
