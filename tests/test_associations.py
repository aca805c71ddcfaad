"""AssociateFaces and DisassociateFaces, case by case, as AWS documents them."""

from __future__ import annotations

import uuid

import pytest

from tests import faces as made_up


@pytest.fixture
def alice(rekognition, collection_id):
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    return "alice"


def _associate(rekognition, collection_id, user_id, face_ids, **extra):
    return rekognition.associate_faces(
        CollectionId=collection_id, UserId=user_id, FaceIds=face_ids, **extra
    )


def _disassociate(rekognition, collection_id, user_id, face_ids, **extra):
    return rekognition.disassociate_faces(
        CollectionId=collection_id, UserId=user_id, FaceIds=face_ids, **extra
    )


def _owners(rekognition, collection_id):
    faces = rekognition.list_faces(CollectionId=collection_id)["Faces"]
    return {face["FaceId"]: face.get("UserId") for face in faces}


# --- DisassociateFaces ---------------------------------------------------------------


def test_disassociate_faces_removes_faces_of_this_user(
    rekognition, collection_id, alice, make_faces
):
    faces = make_faces(collection_id, 3)
    _associate(rekognition, collection_id, alice, faces)

    response = _disassociate(rekognition, collection_id, alice, faces[:2])
    assert response["DisassociatedFaces"] == [{"FaceId": f} for f in faces[:2]]
    assert response["UnsuccessfulFaceDisassociations"] == []
    assert response["UserStatus"] == "UPDATING"
    assert _owners(rekognition, collection_id) == {
        faces[0]: None,
        faces[1]: None,
        faces[2]: alice,
    }


def test_disassociate_faces_ignores_face_of_no_user(
    rekognition, collection_id, alice, make_faces
):
    [free] = make_faces(collection_id, 1)
    response = _disassociate(rekognition, collection_id, alice, [free])
    assert response["DisassociatedFaces"] == []
    assert response["UnsuccessfulFaceDisassociations"] == []
    assert response["UserStatus"] == "CREATED"


def test_disassociate_faces_reports_face_of_other_user(
    rekognition, collection_id, alice, make_faces
):
    [bobs] = make_faces(collection_id, 1)
    rekognition.create_user(CollectionId=collection_id, UserId="bob")
    _associate(rekognition, collection_id, "bob", [bobs])

    response = _disassociate(rekognition, collection_id, alice, [bobs])
    assert response["DisassociatedFaces"] == []
    assert response["UnsuccessfulFaceDisassociations"] == [
        {"FaceId": bobs, "UserId": "bob", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
    ]
    assert _owners(rekognition, collection_id) == {bobs: "bob"}


def test_disassociate_faces_reports_unknown_face_as_not_found(
    rekognition, collection_id, alice
):
    unknown = str(uuid.uuid4())
    response = _disassociate(rekognition, collection_id, alice, [unknown])
    assert response["UnsuccessfulFaceDisassociations"] == [
        {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]}
    ]


def test_disassociate_faces_handles_a_repeated_face_once(
    rekognition, collection_id, alice, make_faces
):
    [face] = make_faces(collection_id, 1)
    _associate(rekognition, collection_id, alice, [face])
    unknown = str(uuid.uuid4())
    response = _disassociate(
        rekognition, collection_id, alice, [face, face, unknown, unknown]
    )
    assert response["DisassociatedFaces"] == [{"FaceId": face}]
    assert response["UnsuccessfulFaceDisassociations"] == [
        {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]}
    ]


def test_disassociate_faces_all_cases_in_one_request(
    rekognition, collection_id, alice, make_faces
):
    mine, free, bobs = make_faces(collection_id, 3)
    rekognition.create_user(CollectionId=collection_id, UserId="bob")
    _associate(rekognition, collection_id, alice, [mine])
    _associate(rekognition, collection_id, "bob", [bobs])
    unknown = str(uuid.uuid4())

    response = _disassociate(
        rekognition, collection_id, alice, [unknown, bobs, free, mine]
    )
    assert response["DisassociatedFaces"] == [{"FaceId": mine}]
    assert response["UnsuccessfulFaceDisassociations"] == [
        {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]},
        {
            "FaceId": bobs,
            "UserId": "bob",
            "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
        },
    ]
    assert response["UserStatus"] == "UPDATING"


def test_disassociate_faces_of_missing_user_or_collection_is_not_found(
    rekognition, collection_id, make_faces
):
    [face] = make_faces(collection_id, 1)
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        _disassociate(rekognition, collection_id, "nobody", [face])
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        _disassociate(rekognition, "no-such-collection", "nobody", [face])


# --- AssociateFaces ------------------------------------------------------------------


def test_associate_faces_first_faces_need_no_match(
    rekognition, collection_id, alice, make_faces
):
    # Two different people: with no faces yet, the user has nothing to match against.
    faces = make_faces(collection_id, 1) + make_faces(collection_id, 1)
    response = _associate(rekognition, collection_id, alice, faces)
    assert response["AssociatedFaces"] == [{"FaceId": f} for f in faces]
    assert response["UnsuccessfulFaceAssociations"] == []
    assert response["UserStatus"] == "UPDATING"


def test_associate_faces_ignores_face_already_of_this_user(
    rekognition, collection_id, alice, make_faces
):
    faces = make_faces(collection_id, 2)
    _associate(rekognition, collection_id, alice, faces)
    response = _associate(rekognition, collection_id, alice, faces)
    assert response["AssociatedFaces"] == []
    assert response["UnsuccessfulFaceAssociations"] == []
    assert response["UserStatus"] == "ACTIVE"


def test_associate_faces_reports_face_of_other_user_and_unknown_face(
    rekognition, collection_id, alice, make_faces
):
    [bobs] = make_faces(collection_id, 1)
    rekognition.create_user(CollectionId=collection_id, UserId="bob")
    _associate(rekognition, collection_id, "bob", [bobs])
    unknown = str(uuid.uuid4())

    response = _associate(rekognition, collection_id, alice, [bobs, unknown, unknown])
    assert response["AssociatedFaces"] == []
    assert response["UnsuccessfulFaceAssociations"] == [
        {
            "FaceId": bobs,
            "UserId": "bob",
            "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
        },
        {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]},
    ]
    assert _owners(rekognition, collection_id) == {bobs: "bob"}


def test_associate_faces_rejects_another_persons_face_once_user_has_faces(
    rekognition, collection_id, alice, make_faces
):
    her = made_up.person()
    first = make_faces(collection_id, 2, person=her)
    _associate(rekognition, collection_id, alice, first)
    [same_person] = make_faces(collection_id, 1, person=her)
    [stranger] = make_faces(collection_id, 1)

    response = _associate(rekognition, collection_id, alice, [stranger, same_person])
    assert response["AssociatedFaces"] == [{"FaceId": same_person}]
    [rejected] = response["UnsuccessfulFaceAssociations"]
    assert rejected["FaceId"] == stranger
    assert rejected["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert 0 <= rejected["Confidence"] < 75
    assert "UserId" not in rejected
    assert _owners(rekognition, collection_id)[stranger] is None


def test_associate_faces_threshold_zero_accepts_any_face(
    rekognition, collection_id, alice, make_faces
):
    _associate(rekognition, collection_id, alice, make_faces(collection_id, 1))
    [stranger] = make_faces(collection_id, 1)
    response = _associate(
        rekognition, collection_id, alice, [stranger], UserMatchThreshold=0
    )
    assert response["AssociatedFaces"] == [{"FaceId": stranger}]


def test_associate_faces_high_threshold_rejects_a_weak_match(
    rekognition, collection_id, alice, make_faces
):
    her = made_up.person()
    _associate(
        rekognition, collection_id, alice, make_faces(collection_id, 1, person=her)
    )
    [same_person] = make_faces(collection_id, 1, person=her)
    response = _associate(
        rekognition, collection_id, alice, [same_person], UserMatchThreshold=100
    )
    [rejected] = response["UnsuccessfulFaceAssociations"]
    assert rejected["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert 99 < rejected["Confidence"] < 100


def test_associate_faces_caps_a_user_at_100_faces(
    rekognition, collection_id, alice, make_faces
):
    her = made_up.person()
    faces = make_faces(collection_id, 101, person=her)
    _associate(rekognition, collection_id, alice, faces[:60])

    # Crossing the cap fails as a whole: nothing of this call is associated.
    with pytest.raises(rekognition.exceptions.ServiceQuotaExceededException):
        _associate(rekognition, collection_id, alice, faces[60:])
    owned = [f for f, user in _owners(rekognition, collection_id).items() if user]
    assert len(owned) == 60

    _associate(rekognition, collection_id, alice, faces[60:100])
    with pytest.raises(rekognition.exceptions.ServiceQuotaExceededException):
        _associate(rekognition, collection_id, alice, faces[100:])
    users = rekognition.list_faces(CollectionId=collection_id, UserId=alice)["Faces"]
    assert len(users) == 100


def test_associate_faces_of_missing_user_is_not_found(
    rekognition, collection_id, make_faces
):
    [face] = make_faces(collection_id, 1)
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        _associate(rekognition, collection_id, "nobody", [face])
    assert _owners(rekognition, collection_id) == {face: None}
