"""The whole face story through real boto3 clients (HTTP and in-process) on real
photos: index, enrol users, associate, search, compare, disassociate.

The photos are ../shared/datasets/face-recognition-examples (public figures); the
module skips when that folder is absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from PIL import Image

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PHOTOS = DATASETS / "face-recognition-examples"

pytestmark = pytest.mark.skipif(
    not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}"
)

ENROL = {
    "obama": "examples__knn_examples__train__obama__obama.jpg",
    "biden": "examples__knn_examples__train__biden__biden2.jpg",
    "kit": "examples__knn_examples__train__kit_harington__john2.jpeg",
}
PROBES = {
    "obama": "examples__obama-480p.jpg",
    "biden": "examples__knn_examples__train__biden__biden.jpg",
    "kit": "examples__knn_examples__train__kit_harington__john1.jpeg",
}
TWO_PEOPLE = "extra/examples__two_people.jpg"


def photo(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def blank_photo() -> bytes:
    """A real JPEG with no face in it."""
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(out, "JPEG")
    return out.getvalue()


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


@pytest.fixture
def enrolled(rekognition, collection_id):
    """Each person's photo indexed, a user per person holding that face."""
    face_ids = {}
    for person, name in ENROL.items():
        answer = rekognition.index_faces(
            CollectionId=collection_id,
            Image={"Bytes": photo(name)},
            ExternalImageId=person,
            MaxFaces=1,
        )
        assert len(answer["FaceRecords"]) == 1, answer
        face_ids[person] = answer["FaceRecords"][0]["Face"]["FaceId"]
        rekognition.create_user(CollectionId=collection_id, UserId=person)
        rekognition.associate_faces(
            CollectionId=collection_id, UserId=person, FaceIds=[face_ids[person]]
        )
    return face_ids


def test_index_faces_returns_face_records_with_real_details(rekognition, collection_id):
    answer = rekognition.index_faces(
        CollectionId=collection_id,
        Image={"Bytes": photo(ENROL["obama"])},
        ExternalImageId="obama-1",
    )
    assert answer["FaceModelVersion"] == "1.0"
    [record] = answer["FaceRecords"]
    face, detail = record["Face"], record["FaceDetail"]
    assert face["ExternalImageId"] == "obama-1"
    assert face["IndexFacesModelVersion"] == "1.0"
    box = face["BoundingBox"]
    assert 0 < box["Width"] < 1 and 0 < box["Height"] < 1
    assert 0 <= box["Left"] < 1 and 0 <= box["Top"] < 1
    assert detail["BoundingBox"] == box
    assert face["Confidence"] > 90
    kinds = {mark["Type"] for mark in detail["Landmarks"]}
    assert {"eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"} <= kinds
    for mark in detail["Landmarks"]:
        assert box["Left"] <= mark["X"] <= box["Left"] + box["Width"]
        assert box["Top"] <= mark["Y"] <= box["Top"] + box["Height"]
    assert abs(detail["Pose"]["Roll"]) < 20 and abs(detail["Pose"]["Yaw"]) < 30
    assert 0 < detail["Quality"]["Brightness"] <= 100
    assert 0 < detail["Quality"]["Sharpness"] <= 100
    # Attributes the engine cannot estimate are absent, never invented.
    assert "AgeRange" not in detail and "Gender" not in detail

    listed = rekognition.list_faces(CollectionId=collection_id)["Faces"]
    assert [f["FaceId"] for f in listed] == [face["FaceId"]]


def test_the_same_image_and_external_id_store_no_duplicate(rekognition, collection_id):
    first = rekognition.index_faces(
        CollectionId=collection_id,
        Image={"Bytes": photo(TWO_PEOPLE)},
        ExternalImageId="x",
    )
    again = rekognition.index_faces(
        CollectionId=collection_id,
        Image={"Bytes": photo(TWO_PEOPLE)},
        ExternalImageId="x",
    )
    ids = sorted(r["Face"]["FaceId"] for r in first["FaceRecords"])
    assert len(ids) == 2
    assert sorted(r["Face"]["FaceId"] for r in again["FaceRecords"]) == ids
    other = rekognition.index_faces(
        CollectionId=collection_id,
        Image={"Bytes": photo(TWO_PEOPLE)},
        ExternalImageId="y",
    )
    assert not set(r["Face"]["FaceId"] for r in other["FaceRecords"]) & set(ids)
    assert len(rekognition.list_faces(CollectionId=collection_id)["Faces"]) == 4


def test_max_faces_keeps_the_largest_and_reports_the_rest(rekognition, collection_id):
    answer = rekognition.index_faces(
        CollectionId=collection_id, Image={"Bytes": photo(TWO_PEOPLE)}, MaxFaces=1
    )
    assert len(answer["FaceRecords"]) == 1
    [dropped] = answer["UnindexedFaces"]
    assert dropped["Reasons"] == ["EXCEEDS_MAX_FACES"]


def test_search_users_by_image_finds_the_right_person(
    rekognition, collection_id, enrolled
):
    for person, probe in PROBES.items():
        answer = rekognition.search_users_by_image(
            CollectionId=collection_id, Image={"Bytes": photo(probe)}
        )
        matches = answer["UserMatches"]
        assert matches, f"{person} not found"
        assert matches[0]["User"] == {"UserId": person, "UserStatus": "ACTIVE"}
        assert matches[0]["Similarity"] >= 80
        assert [m["User"]["UserId"] for m in matches] == [person]
        assert "BoundingBox" in answer["SearchedFace"]["FaceDetail"]


def test_search_faces_by_image_and_by_face_id(rekognition, collection_id, enrolled):
    answer = rekognition.search_faces_by_image(
        CollectionId=collection_id, Image={"Bytes": photo(PROBES["biden"])}
    )
    assert [m["Face"]["FaceId"] for m in answer["FaceMatches"]] == [enrolled["biden"]]
    assert answer["FaceMatches"][0]["Face"]["UserId"] == "biden"
    assert answer["SearchedFaceConfidence"] > 90
    assert 0 < answer["SearchedFaceBoundingBox"]["Width"] < 1

    # A second photo of Obama: searching by its face id finds the first, never itself.
    second = rekognition.index_faces(
        CollectionId=collection_id, Image={"Bytes": photo(PROBES["obama"])}
    )["FaceRecords"][0]["Face"]["FaceId"]
    found = rekognition.search_faces(CollectionId=collection_id, FaceId=second)
    assert found["SearchedFaceId"] == second
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [enrolled["obama"]]

    everyone = rekognition.search_faces(
        CollectionId=collection_id, FaceId=second, FaceMatchThreshold=0
    )
    ids = [m["Face"]["FaceId"] for m in everyone["FaceMatches"]]
    assert second not in ids and len(ids) == 3
    similarities = [m["Similarity"] for m in everyone["FaceMatches"]]
    assert similarities == sorted(similarities, reverse=True)


def test_search_users_by_user_and_by_face(rekognition, collection_id, enrolled):
    second = rekognition.index_faces(
        CollectionId=collection_id, Image={"Bytes": photo(PROBES["kit"])}
    )["FaceRecords"][0]["Face"]["FaceId"]
    by_face = rekognition.search_users(CollectionId=collection_id, FaceId=second)
    assert by_face["SearchedFace"] == {"FaceId": second}
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["kit"]

    by_user = rekognition.search_users(
        CollectionId=collection_id, UserId="kit", UserMatchThreshold=0
    )
    assert by_user["SearchedUser"] == {"UserId": "kit"}
    assert "kit" not in [m["User"]["UserId"] for m in by_user["UserMatches"]]
    assert {m["User"]["UserId"] for m in by_user["UserMatches"]} == {"obama", "biden"}

    with pytest.raises(ClientError) as missing:
        rekognition.search_users(CollectionId=collection_id, UserId="nobody")
    assert error_code(missing) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as neither:
        rekognition.search_users(CollectionId=collection_id)
    assert error_code(neither) == "InvalidParameterException"


def test_after_disassociation_the_user_is_not_found_through_that_face(
    rekognition, collection_id, enrolled
):
    probe = {"Bytes": photo(PROBES["obama"])}
    before = rekognition.search_users_by_image(CollectionId=collection_id, Image=probe)
    assert [m["User"]["UserId"] for m in before["UserMatches"]] == ["obama"]

    answer = rekognition.disassociate_faces(
        CollectionId=collection_id, UserId="obama", FaceIds=[enrolled["obama"]]
    )
    assert answer["DisassociatedFaces"] == [{"FaceId": enrolled["obama"]}]

    after = rekognition.search_users_by_image(CollectionId=collection_id, Image=probe)
    assert after["UserMatches"] == []
    # The face itself is still in the collection and still found as a face.
    faces = rekognition.search_faces_by_image(CollectionId=collection_id, Image=probe)
    assert [m["Face"]["FaceId"] for m in faces["FaceMatches"]] == [enrolled["obama"]]
    assert "UserId" not in faces["FaceMatches"][0]["Face"]


def test_deleted_faces_are_no_longer_found(rekognition, collection_id):
    face_id = rekognition.index_faces(
        CollectionId=collection_id, Image={"Bytes": photo(ENROL["kit"])}
    )["FaceRecords"][0]["Face"]["FaceId"]
    probe = {"Bytes": photo(PROBES["kit"])}
    found = rekognition.search_faces_by_image(CollectionId=collection_id, Image=probe)
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [face_id]

    rekognition.delete_faces(CollectionId=collection_id, FaceIds=[face_id])
    found = rekognition.search_faces_by_image(CollectionId=collection_id, Image=probe)
    assert found["FaceMatches"] == []


def test_compare_faces_matches_the_same_person_only(rekognition):
    answer = rekognition.compare_faces(
        SourceImage={"Bytes": photo(ENROL["obama"])},
        TargetImage={"Bytes": photo(PROBES["obama"])},
    )
    [match] = answer["FaceMatches"]
    assert match["Similarity"] > 95
    assert answer["UnmatchedFaces"] == []
    assert answer["SourceImageFace"]["Confidence"] > 90

    # Obama stands on the left of the two-people photo, Biden on the right.
    pair = rekognition.compare_faces(
        SourceImage={"Bytes": photo(ENROL["obama"])},
        TargetImage={"Bytes": photo(TWO_PEOPLE)},
    )
    [match] = pair["FaceMatches"]
    assert match["Face"]["BoundingBox"]["Left"] < 0.5
    [unmatched] = pair["UnmatchedFaces"]
    assert unmatched["BoundingBox"]["Left"] > 0.5

    nobody = rekognition.compare_faces(
        SourceImage={"Bytes": photo(ENROL["kit"])},
        TargetImage={"Bytes": photo(TWO_PEOPLE)},
    )
    assert nobody["FaceMatches"] == []
    assert len(nobody["UnmatchedFaces"]) == 2


def test_detect_faces_finds_every_face(rekognition):
    answer = rekognition.detect_faces(Image={"Bytes": photo(TWO_PEOPLE)})
    details = answer["FaceDetails"]
    assert len(details) == 2
    areas = [d["BoundingBox"]["Width"] * d["BoundingBox"]["Height"] for d in details]
    assert areas == sorted(areas, reverse=True)
    assert rekognition.detect_faces(Image={"Bytes": blank_photo()})["FaceDetails"] == []


def test_images_without_a_face(rekognition, collection_id, enrolled):
    blank = {"Bytes": blank_photo()}
    with pytest.raises(ClientError) as no_face:
        rekognition.search_faces_by_image(CollectionId=collection_id, Image=blank)
    assert error_code(no_face) == "InvalidParameterException"

    answer = rekognition.search_users_by_image(CollectionId=collection_id, Image=blank)
    assert answer["UserMatches"] == [] and "SearchedFace" not in answer

    indexed = rekognition.index_faces(CollectionId=collection_id, Image=blank)
    assert indexed["FaceRecords"] == [] and indexed["UnindexedFaces"] == []

    with pytest.raises(ClientError) as compare:
        rekognition.compare_faces(SourceImage=blank, TargetImage=blank)
    assert error_code(compare) == "InvalidParameterException"


def test_search_users_by_image_lists_the_faces_it_did_not_search(
    rekognition, collection_id, enrolled
):
    answer = rekognition.search_users_by_image(
        CollectionId=collection_id, Image={"Bytes": photo(TWO_PEOPLE)}
    )
    [other] = answer["UnsearchedFaces"]
    assert other["Reasons"] == ["FACE_NOT_LARGEST"]
    assert "BoundingBox" in other["FaceDetails"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GIF89a" + bytes(64), "InvalidImageFormatException"),
        (b"not an image at all", "InvalidImageFormatException"),
    ],
    ids=["gif", "garbage"],
)
def test_bad_images_get_the_aws_error(rekognition, collection_id, data, code):
    with pytest.raises(ClientError) as raised:
        rekognition.index_faces(CollectionId=collection_id, Image={"Bytes": data})
    assert error_code(raised) == code
    assert rekognition.list_faces(CollectionId=collection_id)["Faces"] == []


def test_image_operations_on_a_missing_collection(rekognition):
    with pytest.raises(ClientError) as raised:
        rekognition.index_faces(
            CollectionId="no-such-collection", Image={"Bytes": photo(ENROL["kit"])}
        )
    assert error_code(raised) == "ResourceNotFoundException"
