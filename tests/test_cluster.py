"""Two `rekollect serve` processes on one store are one service.

Eight clients hammer both servers with overlapping AssociateFaces, DisassociateFaces,
DeleteUser, CreateUser and DeleteFaces for a bounded time; afterwards every
invariant holds and both servers show the same state, which is what the acknowledged
answers imply. A DeleteCollection in the middle of such a hammering leaves no row of
the collection behind. Then every change made through one server is checked at once through
the other, searches included, and a face indexed from a photo through one server is
found by a search on the other as soon as IndexFaces has returned.

Runs on each backend: PostgreSQL is the deployment this is for; SQLite shares one
file between the two processes.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from rekollect.service import Service
from rekollect.service.faces import add_faces
from rekollect.storage import open_database
from rekollect.storage.records import Scope
from tests import faces as made_up
from tests.conftest import ACCOUNT, REGION, http_client, running_server, serve_args

HAMMER_S = 12.0
CLIENTS = 8
FACE_COUNT = 160
USERS = ["ann", "ben", "cat"]
COLLECTION = "crowd"
# Errors the hammer provokes on purpose; anything else is a failure.
EXPECTED_ERRORS = {
    "ResourceNotFoundException",  # a user deleted by another client
    "ConflictException",  # a user created by another client
    "ServiceQuotaExceededException",  # a user at 100 faces
}

PHOTOS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "face-recognition-examples"
)


@pytest.fixture
def nodes(store_url, tmp_path):
    """Two servers on one fresh store (migrated first, as `rekollect db upgrade` does)."""
    open_database(store_url).close()
    command = serve_args(tmp_path, store_url, "--engine-workers", "1")
    with (
        running_server(command, tmp_path / "a.log") as a,
        running_server(command, tmp_path / "b.log") as b,
    ):
        yield a, b


def client(endpoint):
    return http_client(endpoint, retries={"max_attempts": 3, "mode": "standard"})


def seed_faces(store_url: str, count: int) -> list[str]:
    """Faces of one made-up person stored in the collection; returns their ids."""
    center = made_up.person()
    new = [made_up.new_face(made_up.face_of(center)) for _ in range(count)]
    service = Service(open_database(store_url, migrate=False))
    try:
        add_faces(service, Scope(ACCOUNT, REGION), COLLECTION, new)
    finally:
        service.close()
    return [face.face_id for face in new]


def state(rekognition) -> dict[str, object]:
    """What a server shows: every face's owner, the users, each user's faces."""
    owners = {}
    for page in rekognition.get_paginator("list_faces").paginate(
        CollectionId=COLLECTION
    ):
        owners.update({face["FaceId"]: face.get("UserId") for face in page["Faces"]})
    users = set()
    for page in rekognition.get_paginator("list_users").paginate(
        CollectionId=COLLECTION
    ):
        users.update(user["UserId"] for user in page["Users"])
    per_user = {
        user_id: {
            face["FaceId"]
            for face in rekognition.list_faces(CollectionId=COLLECTION, UserId=user_id)[
                "Faces"
            ]
        }
        for user_id in users
    }
    return {"owners": owners, "users": users, "per_user": per_user}


def without_metadata(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key != "ResponseMetadata"}


class Hammer:
    """One client's random calls on both servers, and what their answers say."""

    def __init__(self, number: int, endpoints, face_ids: list[str]) -> None:
        self.rng = random.Random(number)
        self.clients = [client(endpoint) for endpoint in endpoints]
        self.face_ids = face_ids
        self.deleted: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.replays_checked = 0

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            rekognition = self.rng.choice(self.clients)
            operation = self.rng.choices(
                [
                    "associate",
                    "disassociate",
                    "delete_user",
                    "create_user",
                    "delete",
                    "replay",
                ],
                weights=[35, 30, 4, 8, 5, 10],
            )[0]
            try:
                getattr(self, operation)(rekognition)
                self.calls[operation] += 1
            except ClientError as error:
                self.errors[error.response["Error"]["Code"]] += 1

    def _faces(self, most: int) -> list[str]:
        return self.rng.sample(self.face_ids, self.rng.randint(1, most))

    def _request(self, operation: str) -> dict:
        request = {
            "CollectionId": COLLECTION,
            "UserId": self.rng.choice(USERS),
            "FaceIds": self._faces(40 if operation == "associate" else 20),
        }
        if operation == "associate":
            request["UserMatchThreshold"] = 0
        return request

    def associate(self, rekognition) -> None:
        rekognition.associate_faces(**self._request("associate"))

    def disassociate(self, rekognition) -> None:
        rekognition.disassociate_faces(**self._request("disassociate"))

    def delete_user(self, rekognition) -> None:
        rekognition.delete_user(CollectionId=COLLECTION, UserId=self.rng.choice(USERS))

    def create_user(self, rekognition) -> None:
        rekognition.create_user(CollectionId=COLLECTION, UserId=self.rng.choice(USERS))

    def delete(self, rekognition) -> None:
        answer = rekognition.delete_faces(
            CollectionId=COLLECTION, FaceIds=self._faces(2)
        )
        self.deleted.update(answer["DeletedFaces"])

    def replay(self, rekognition) -> None:
        """The same request and token on one server, then on the other: one answer."""
        operation = self.rng.choice(["associate", "disassociate"])
        request = self._request(operation) | {"ClientRequestToken": uuid.uuid4().hex}
        call = f"{operation}_faces"
        first = getattr(rekognition, call)(**request)
        other = self.clients[1 - self.clients.index(rekognition)]
        again = getattr(other, call)(**request)
        assert without_metadata(again) == without_metadata(first)
        self.replays_checked += 1


def test_two_servers_hammered_at_once_keep_every_invariant(nodes, store_url):
    a, b = (client(endpoint) for endpoint in nodes)
    a.create_collection(CollectionId=COLLECTION)
    face_ids = seed_faces(store_url, FACE_COUNT)
    for user_id in USERS:
        b.create_user(CollectionId=COLLECTION, UserId=user_id)
    for rekognition in (a, b):  # both servers load the collection's index now
        rekognition.search_faces(CollectionId=COLLECTION, FaceId=face_ids[0])

    hammers = [Hammer(number, nodes, face_ids) for number in range(CLIENTS)]
    deadline = time.monotonic() + HAMMER_S
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda hammer: hammer.run(deadline), hammers))

    calls = sum((hammer.calls for hammer in hammers), Counter())
    errors = sum((hammer.errors for hammer in hammers), Counter())
    deleted = set().union(*(hammer.deleted for hammer in hammers))
    assert set(errors) <= EXPECTED_ERRORS, errors
    assert calls["associate"] > 20 and calls["disassociate"] > 20, calls
    assert sum(hammer.replays_checked for hammer in hammers) > 5

    seen_by_a, seen_by_b = state(a), state(b)
    assert seen_by_a == seen_by_b
    owners = seen_by_a["owners"]
    assert set(owners) == set(face_ids) - deleted  # no face lost, none come back
    for user_id, owned in seen_by_a["per_user"].items():
        assert len(owned) <= 100
        assert owned == {face for face, owner in owners.items() if owner == user_id}
    assert {owner for owner in owners.values() if owner} <= seen_by_a["users"]

    check_each_change_through_the_other_server(a, b, owners)


def test_a_collection_deleted_while_both_servers_change_it_leaves_nothing(
    nodes, store_url
):
    """DeleteCollection through one server while clients change the collection through
    both: every call either lands before the deletion or finds no collection, and no
    row of the collection survives it."""
    from sqlalchemy import func, select

    from rekollect.storage.schema import collections, faces, users

    a, b = (client(endpoint) for endpoint in nodes)
    a.create_collection(CollectionId=COLLECTION)
    face_ids = seed_faces(store_url, FACE_COUNT)
    for user_id in USERS:
        b.create_user(CollectionId=COLLECTION, UserId=user_id)

    hammers = [Hammer(number, nodes, face_ids) for number in range(CLIENTS - 1)]
    deadline = time.monotonic() + 5.0
    with ThreadPoolExecutor(CLIENTS) as pool:
        running = [pool.submit(hammer.run, deadline) for hammer in hammers]
        time.sleep(2.0)
        b.delete_collection(CollectionId=COLLECTION)
        for future in running:
            future.result()

    errors = sum((hammer.errors for hammer in hammers), Counter())
    calls = sum((hammer.calls for hammer in hammers), Counter())
    assert set(errors) <= EXPECTED_ERRORS, errors
    assert errors["ResourceNotFoundException"] > 0  # calls after the deletion
    assert calls["associate"] + calls["disassociate"] > 10, calls
    for rekognition in (a, b):
        with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
            rekognition.describe_collection(CollectionId=COLLECTION)
        assert COLLECTION not in rekognition.list_collections()["CollectionIds"]

    database = open_database(store_url, migrate=False)
    try:
        with database.read() as conn:
            kept = select(collections.c.pk)
            for table in (faces, users):
                orphans = select(func.count()).where(table.c.collection_pk.not_in(kept))
                assert conn.execute(orphans.select_from(table)).scalar_one() == 0
    finally:
        database.close()

    a.create_collection(CollectionId=COLLECTION)  # the id is free, and empty
    described = b.describe_collection(CollectionId=COLLECTION)
    assert (described["FaceCount"], described["UserCount"]) == (0, 0)


def check_each_change_through_the_other_server(a, b, owners) -> None:
    """Associate, disassociate and delete through one server; look through the other."""
    for user_id in USERS:
        try:
            a.create_user(CollectionId=COLLECTION, UserId=user_id)
        except a.exceptions.ConflictException:
            pass
    free = [face for face, owner in owners.items() if owner is None]
    rng = random.Random(0)
    for round_number in range(min(10, len(free) - 1)):
        writer, reader = (a, b) if round_number % 2 else (b, a)
        face, probe = free.pop(), free[0]
        user_id = USERS[round_number % len(USERS)]
        owned = len(reader.list_faces(CollectionId=COLLECTION, UserId=user_id)["Faces"])
        if owned < 100:
            writer.associate_faces(
                CollectionId=COLLECTION,
                UserId=user_id,
                FaceIds=[face],
                UserMatchThreshold=0,
            )
            [listed] = reader.list_faces(CollectionId=COLLECTION, FaceIds=[face])[
                "Faces"
            ]
            assert listed["UserId"] == user_id
            reader.disassociate_faces(
                CollectionId=COLLECTION, UserId=user_id, FaceIds=[face]
            )
            [listed] = writer.list_faces(CollectionId=COLLECTION, FaceIds=[face])[
                "Faces"
            ]
            assert "UserId" not in listed

        writer.delete_faces(CollectionId=COLLECTION, FaceIds=[face])
        del owners[face]
        for rekognition in (reader, writer):
            found = rekognition.search_faces(
                CollectionId=COLLECTION,
                FaceId=probe,
                FaceMatchThreshold=0,
                MaxFaces=4096,
            )
            matched = {match["Face"]["FaceId"] for match in found["FaceMatches"]}
            assert matched == set(owners) - {probe}
        rng.shuffle(free)


def test_a_client_request_token_is_honoured_across_servers(nodes, store_url):
    a, b = (client(endpoint) for endpoint in nodes)
    a.create_collection(CollectionId=COLLECTION)
    face_ids = seed_faces(store_url, 5)
    clients = [client(nodes[number % 2]) for number in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS)

    def create(rekognition):
        barrier.wait()
        return without_metadata(
            rekognition.create_user(
                CollectionId=COLLECTION, UserId="dee", ClientRequestToken="create-dee"
            )
        )

    def associate(rekognition):
        barrier.wait()
        return without_metadata(
            rekognition.associate_faces(
                CollectionId=COLLECTION,
                UserId="dee",
                FaceIds=face_ids,
                UserMatchThreshold=0,
                ClientRequestToken="associate-dee",
            )
        )

    with ThreadPoolExecutor(CLIENTS) as pool:
        created = list(pool.map(create, clients))
        associated = list(pool.map(associate, clients))

    assert created == [{}] * CLIENTS
    assert [
        user["UserId"] for user in b.list_users(CollectionId=COLLECTION)["Users"]
    ] == ["dee"]
    assert all(answer == associated[0] for answer in associated)
    assert sorted(
        face["FaceId"] for face in associated[0]["AssociatedFaces"]
    ) == sorted(face_ids)


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}")
def test_a_face_indexed_through_one_server_is_found_at_once_through_the_other(nodes):
    a, b = (client(endpoint) for endpoint in nodes)
    a.create_collection(CollectionId=COLLECTION)
    probe = {"Bytes": (PHOTOS / "examples__obama-480p.jpg").read_bytes()}
    # B's index of the collection exists (empty) before A writes: B must catch up.
    assert (
        b.search_faces_by_image(CollectionId=COLLECTION, Image=probe)["FaceMatches"]
        == []
    )

    indexed = a.index_faces(
        CollectionId=COLLECTION,
        Image={
            "Bytes": (
                PHOTOS / "examples__knn_examples__train__obama__obama.jpg"
            ).read_bytes()
        },
        MaxFaces=1,
    )
    [record] = indexed["FaceRecords"]
    found = b.search_faces_by_image(CollectionId=COLLECTION, Image=probe)
    assert [match["Face"]["FaceId"] for match in found["FaceMatches"]] == [
        record["Face"]["FaceId"]
    ]

    b.delete_faces(CollectionId=COLLECTION, FaceIds=[record["Face"]["FaceId"]])
    assert (
        a.search_faces_by_image(CollectionId=COLLECTION, Image=probe)["FaceMatches"]
        == []
    )
