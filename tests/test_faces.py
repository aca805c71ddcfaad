"""ListFaces and DeleteFaces."""

from __future__ import annotations

import uuid

import pytest


def test_list_faces_returns_stored_faces_in_face_id_order(
    rekognition, collection_id, make_faces
):
    faces = make_faces(collection_id, 5)
    response = rekognition.list_faces(CollectionId=collection_id)
    assert [face["FaceId"] for face in response["Faces"]] == sorted(faces)
    assert response["FaceModelVersion"] == "1.0"
    assert "NextToken" not in response
    face = response["Faces"][0]
    assert face["BoundingBox"] == {
        "Width": 0.25,
        "Height": 0.3,
        "Left": 0.4,
        "Top": 0.2,
    }
    assert face["Confidence"] == pytest.approx(99.9)
    assert face["IndexFacesModelVersion"] == "1.0"
    assert set(face) == {
        "FaceId",
        "BoundingBox",
        "ImageId",
        "Confidence",
        "IndexFacesModelVersion",
    }


def test_list_faces_filters_by_user_and_by_face_ids(
    rekognition, collection_id, make_faces
):
    faces = make_faces(collection_id, 4)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.associate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=faces[:2]
    )

    mine = rekognition.list_faces(CollectionId=collection_id, UserId="alice")["Faces"]
    assert sorted(f["FaceId"] for f in mine) == sorted(faces[:2])
    assert {f["UserId"] for f in mine} == {"alice"}

    chosen = rekognition.list_faces(
        CollectionId=collection_id, FaceIds=[faces[1], faces[3], str(uuid.uuid4())]
    )["Faces"]
    assert sorted(f["FaceId"] for f in chosen) == sorted([faces[1], faces[3]])

    both = rekognition.list_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=[faces[1], faces[3]]
    )["Faces"]
    assert [f["FaceId"] for f in both] == [faces[1]]


def test_list_faces_of_unknown_user_is_empty(rekognition, collection_id, make_faces):
    make_faces(collection_id, 2)
    assert (
        rekognition.list_faces(CollectionId=collection_id, UserId="nobody")["Faces"]
        == []
    )


def test_list_faces_paginates_to_the_end(rekognition, collection_id, make_faces):
    faces = make_faces(collection_id, 11)
    pages = list(
        rekognition.get_paginator("list_faces").paginate(
            CollectionId=collection_id, PaginationConfig={"PageSize": 3}
        )
    )
    assert len(pages) == 4
    listed = [face["FaceId"] for page in pages for face in page["Faces"]]
    assert listed == sorted(faces)


def test_a_pagination_token_is_bound_to_its_request(
    rekognition, collection_id, make_faces
):
    make_faces(collection_id, 3)
    token = rekognition.list_faces(CollectionId=collection_id, MaxResults=1)[
        "NextToken"
    ]
    with pytest.raises(rekognition.exceptions.InvalidPaginationTokenException):
        rekognition.list_faces(CollectionId=collection_id, UserId="x", NextToken=token)
    with pytest.raises(rekognition.exceptions.InvalidPaginationTokenException):
        rekognition.list_users(CollectionId=collection_id, NextToken=token)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="changed-mac"
        ),
        pytest.param(lambda t: "x" + t, id="changed-payload"),
        pytest.param(lambda t: t.split(".")[0], id="no-mac"),
        pytest.param(lambda t: "garbage", id="garbage"),
    ],
)
def test_a_tampered_pagination_token_is_invalid(
    rekognition, collection_id, make_faces, tamper
):
    make_faces(collection_id, 2)
    token = rekognition.list_faces(CollectionId=collection_id, MaxResults=1)[
        "NextToken"
    ]
    with pytest.raises(rekognition.exceptions.InvalidPaginationTokenException):
        rekognition.list_faces(CollectionId=collection_id, NextToken=tamper(token))


def test_list_faces_of_missing_collection_is_resource_not_found(rekognition):
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.list_faces(CollectionId="no-such-collection")


def test_delete_faces_keeps_faces_of_users_and_reports_unknown_ones(
    rekognition, collection_id, make_faces
):
    free, owned = make_faces(collection_id, 2)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.associate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=[owned]
    )
    unknown = str(uuid.uuid4())

    response = rekognition.delete_faces(
        CollectionId=collection_id, FaceIds=[free, owned, unknown, free]
    )
    assert response["DeletedFaces"] == [free]
    assert response["UnsuccessfulFaceDeletions"] == [
        {
            "FaceId": owned,
            "UserId": "alice",
            "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"],
        },
        {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]},
    ]
    remaining = rekognition.list_faces(CollectionId=collection_id)["Faces"]
    assert [face["FaceId"] for face in remaining] == [owned]
    assert rekognition.describe_collection(CollectionId=collection_id)["FaceCount"] == 1


def test_delete_faces_after_disassociating_them(rekognition, collection_id, make_faces):
    [face] = make_faces(collection_id, 1)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    rekognition.associate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=[face]
    )
    rekognition.disassociate_faces(
        CollectionId=collection_id, UserId="alice", FaceIds=[face]
    )
    assert rekognition.delete_faces(CollectionId=collection_id, FaceIds=[face])[
        "DeletedFaces"
    ] == [face]
