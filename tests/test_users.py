"""CreateUser, DeleteUser and ListUsers, and the UserStatus they report."""

from __future__ import annotations

import pytest


def test_create_user_answers_with_an_empty_result(rekognition, collection_id):
    response = rekognition.create_user(CollectionId=collection_id, UserId="alice")
    assert set(response) == {"ResponseMetadata"}
    users = rekognition.list_users(CollectionId=collection_id)["Users"]
    assert users == [{"UserId": "alice", "UserStatus": "CREATED"}]


def test_create_existing_user_is_conflict(rekognition, collection_id):
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    with pytest.raises(rekognition.exceptions.ConflictException):
        rekognition.create_user(CollectionId=collection_id, UserId="alice")
    assert len(rekognition.list_users(CollectionId=collection_id)["Users"]) == 1


def test_create_user_in_missing_collection_is_resource_not_found(rekognition):
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.create_user(CollectionId="no-such-collection", UserId="alice")


def test_user_ids_allow_colons_and_are_case_sensitive(rekognition, collection_id):
    for user_id in ("team:alice", "Team:Alice"):
        rekognition.create_user(CollectionId=collection_id, UserId=user_id)
    users = rekognition.list_users(CollectionId=collection_id)["Users"]
    assert [u["UserId"] for u in users] == ["team:alice", "Team:Alice"]


def test_list_users_is_in_creation_order_and_paginates(rekognition, collection_id):
    user_ids = [f"user-{n}" for n in (5, 3, 9, 1, 7, 2, 8)]
    for user_id in user_ids:
        rekognition.create_user(CollectionId=collection_id, UserId=user_id)
    first = rekognition.list_users(CollectionId=collection_id, MaxResults=3)
    assert [u["UserId"] for u in first["Users"]] == user_ids[:3]
    assert first["NextToken"]

    pages = rekognition.get_paginator("list_users").paginate(
        CollectionId=collection_id, PaginationConfig={"PageSize": 2}
    )
    listed = [user["UserId"] for page in pages for user in page["Users"]]
    assert listed == user_ids


def test_user_status_is_active_with_faces_and_created_without(
    rekognition, collection_id, make_faces
):
    faces = make_faces(collection_id, 2)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.create_user(CollectionId=collection_id, UserId="bob")
    rekognition.associate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=faces
    )
    statuses = {
        u["UserId"]: u["UserStatus"]
        for u in rekognition.list_users(CollectionId=collection_id)["Users"]
    }
    assert statuses == {"alice": "ACTIVE", "bob": "CREATED"}

    rekognition.disassociate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=faces
    )
    users = rekognition.list_users(CollectionId=collection_id)["Users"]
    assert users[0] == {"UserId": "alice", "UserStatus": "CREATED"}


def test_delete_user_keeps_its_faces_in_the_collection(
    rekognition, collection_id, make_faces
):
    faces = make_faces(collection_id, 2)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.associate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=faces
    )

    assert set(rekognition.delete_user(CollectionId=collection_id, UserId="alice")) == {
        "ResponseMetadata"
    }
    listed = rekognition.list_faces(CollectionId=collection_id)["Faces"]
    assert sorted(f["FaceId"] for f in listed) == sorted(faces)
    assert all("UserId" not in face for face in listed)
    assert rekognition.list_users(CollectionId=collection_id)["Users"] == []

    # The faces are free again: another user can take them.
    rekognition.create_user(CollectionId=collection_id, UserId="bob")
    response = rekognition.associate_faces(
        CollectionId=collection_id, UserId="bob", FaceIds=faces
    )
    assert len(response["AssociatedFaces"]) == 2


def test_delete_missing_user_is_resource_not_found(rekognition, collection_id):
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.delete_user(CollectionId=collection_id, UserId="nobody")
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.delete_user(CollectionId="no-such-collection", UserId="nobody")
