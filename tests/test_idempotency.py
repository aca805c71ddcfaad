"""ClientRequestToken: the same token and parameters get the first response back."""

from __future__ import annotations

import uuid

import pytest

from rekollect.service.context import Service


def _token() -> str:
    return f"t-{uuid.uuid4()}"


def test_retried_disassociate_returns_first_response_after_state_changed(
    rekognition, collection_id, make_faces
):
    faces = make_faces(collection_id, 2)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.associate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=faces
    )
    token = _token()
    call = dict(
        CollectionId=collection_id,
        UserId="alice",
        FaceIds=faces,
        ClientRequestToken=token,
    )

    first = rekognition.disassociate_faces(**call)
    assert len(first["DisassociatedFaces"]) == 2
    # The faces now belong to bob: a fresh request would report them as his.
    rekognition.create_user(CollectionId=collection_id, UserId="bob")
    rekognition.associate_faces(CollectionId=collection_id, UserId="bob", FaceIds=faces)

    again = rekognition.disassociate_faces(**call)
    assert again["DisassociatedFaces"] == first["DisassociatedFaces"]
    assert again["UnsuccessfulFaceDisassociations"] == []
    assert again["UserStatus"] == first["UserStatus"]
    fresh = rekognition.disassociate_faces(**{**call, "ClientRequestToken": _token()})
    assert fresh["UnsuccessfulFaceDisassociations"][0]["UserId"] == "bob"


def test_same_token_with_other_parameters_is_a_mismatch(
    rekognition, collection_id, make_faces
):
    faces = make_faces(collection_id, 2)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    token = _token()
    rekognition.associate_faces(
        CollectionId=collection_id,
        UserId="alice",
        FaceIds=faces[:1],
        ClientRequestToken=token,
    )
    with pytest.raises(
        rekognition.exceptions.IdempotentParameterMismatchException
    ) as error:
        rekognition.associate_faces(
            CollectionId=collection_id,
            UserId="alice",
            FaceIds=faces,
            ClientRequestToken=token,
        )
    assert token in error.value.response["Error"]["Message"]
    assert error.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    owned = rekognition.list_faces(CollectionId=collection_id, UserId="alice")["Faces"]
    assert [face["FaceId"] for face in owned] == faces[:1]


def test_retried_create_user_succeeds_although_user_exists(rekognition, collection_id):
    token = _token()
    rekognition.create_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    rekognition.create_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    with pytest.raises(rekognition.exceptions.ConflictException):
        rekognition.create_user(CollectionId=collection_id, UserId="alice")


def test_retried_delete_user_succeeds_although_user_is_gone(rekognition, collection_id):
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    token = _token()
    rekognition.delete_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    rekognition.delete_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.delete_user(CollectionId=collection_id, UserId="alice")


def test_tokens_are_scoped_per_operation(rekognition, collection_id):
    token = _token()
    rekognition.create_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    rekognition.delete_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    assert rekognition.list_users(CollectionId=collection_id)["Users"] == []


def test_a_failed_request_does_not_use_up_its_token(rekognition, collection_id):
    token = _token()
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.delete_user(
            CollectionId=collection_id, UserId="alice", ClientRequestToken=token
        )
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.delete_user(
        CollectionId=collection_id, UserId="alice", ClientRequestToken=token
    )
    assert rekognition.list_users(CollectionId=collection_id)["Users"] == []


def test_tokens_survive_a_restart(tmp_path):
    import rekollect

    first = rekollect.client(tmp_path, region_name="us-east-1")
    first.create_collection(CollectionId="c")
    first.create_user(
        CollectionId="c", UserId="alice", ClientRequestToken="restart-token"
    )
    del first

    second = rekollect.client(tmp_path, region_name="us-east-1")
    second.create_user(
        CollectionId="c", UserId="alice", ClientRequestToken="restart-token"
    )
    with pytest.raises(second.exceptions.IdempotentParameterMismatchException):
        second.create_user(
            CollectionId="c", UserId="bob", ClientRequestToken="restart-token"
        )


def test_tokens_expire_after_the_retention_window(tmp_path):
    from rekollect.inprocess import service_client
    from rekollect.storage import open_database
    from rekollect.storage.database import sqlite_url

    now = [1_000_000.0]
    service = Service(open_database(sqlite_url(tmp_path)), clock=lambda: now[0])
    client = service_client(service, region_name="us-east-1")
    client.create_collection(CollectionId="c")
    client.create_user(CollectionId="c", UserId="alice", ClientRequestToken="old")

    now[0] += service.idempotency_ttl_s - 1
    client.create_user(CollectionId="c", UserId="alice", ClientRequestToken="old")
    now[0] += 2
    with pytest.raises(client.exceptions.ConflictException):
        client.create_user(CollectionId="c", UserId="alice", ClientRequestToken="old")
