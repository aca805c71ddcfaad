"""The association invariants hold under concurrent requests from many threads, on
each backend (see `tests/test_cluster.py` for several server processes)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import faces as made_up
from tests.conftest import http_client

THREADS = 8


@pytest.fixture
def client_factory(transport, server, inprocess_clients):
    """A new client per thread (boto3 clients are not shared across threads here)."""
    if transport == "http":
        return lambda: http_client(server, retries={"max_attempts": 1})
    return inprocess_clients


def _in_parallel(count, work):
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_a_face_raced_for_by_many_users_goes_to_exactly_one(
    rekognition, collection_id, make_faces, client_factory
):
    faces = make_faces(collection_id, 10)
    users = [f"user-{n}" for n in range(THREADS)]
    for user_id in users:
        rekognition.create_user(CollectionId=collection_id, UserId=user_id)
    clients = [client_factory() for _ in users]

    responses = _in_parallel(
        THREADS,
        lambda i: clients[i].associate_faces(
            CollectionId=collection_id, UserId=users[i], FaceIds=faces
        ),
    )

    owners = {
        face["FaceId"]: face.get("UserId")
        for face in rekognition.list_faces(CollectionId=collection_id)["Faces"]
    }
    for face_id in faces:
        winners = [
            users[i]
            for i, response in enumerate(responses)
            if {"FaceId": face_id} in response["AssociatedFaces"]
        ]
        assert winners == [owners[face_id]]
        for i, response in enumerate(responses):
            if users[i] != owners[face_id]:
                assert {
                    "FaceId": face_id,
                    "UserId": owners[face_id],
                    "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
                } in response["UnsuccessfulFaceAssociations"]


def test_concurrent_associations_never_take_a_user_past_100_faces(
    rekognition, collection_id, make_faces, client_factory
):
    her = made_up.person()
    batches = [make_faces(collection_id, 20, person=her) for _ in range(THREADS)]
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    clients = [client_factory() for _ in batches]

    def associate(i):
        try:
            response = clients[i].associate_faces(
                CollectionId=collection_id, UserId="alice", FaceIds=batches[i]
            )
        except clients[i].exceptions.ServiceQuotaExceededException:
            return 0
        return len(response["AssociatedFaces"])

    associated = _in_parallel(THREADS, associate)

    owned = rekognition.list_faces(CollectionId=collection_id, UserId="alice")["Faces"]
    assert len(owned) == sum(associated) == 100
    assert Counter(associated) == Counter({20: 5, 0: 3})


def test_mixed_concurrent_changes_keep_every_face_accounted_for(
    rekognition, collection_id, make_faces, client_factory
):
    her = made_up.person()
    faces = make_faces(collection_id, 40, person=her)
    users = ["alice", "bob", "carol"]
    for user_id in users:
        rekognition.create_user(CollectionId=collection_id, UserId=user_id)
    clients = [client_factory() for _ in range(THREADS)]

    def churn(i):
        client = clients[i]
        for step in range(12):
            user_id = users[(i + step) % len(users)]
            chosen = faces[(i * 5 + step * 3) % 40 :][:8]
            if step % 2:
                client.disassociate_faces(
                    CollectionId=collection_id, UserId=user_id, FaceIds=chosen
                )
            else:
                client.associate_faces(
                    CollectionId=collection_id,
                    UserId=user_id,
                    FaceIds=chosen,
                    UserMatchThreshold=0,
                )

    _in_parallel(THREADS, churn)

    listed = rekognition.list_faces(CollectionId=collection_id)["Faces"]
    assert sorted(face["FaceId"] for face in listed) == sorted(faces)
    per_user = {
        user_id: {
            face["FaceId"]
            for face in rekognition.list_faces(
                CollectionId=collection_id, UserId=user_id
            )["Faces"]
        }
        for user_id in users
    }
    assert sum(len(owned) for owned in per_user.values()) == len(
        set().union(*per_user.values())
    )
    for face in listed:
        if "UserId" in face:
            assert face["FaceId"] in per_user[face["UserId"]]
