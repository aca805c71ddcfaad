"""The bad-input table: for every implemented operation, requests that break the
constraints of botocore's Rekognition model (required, type, length, list size,
numeric range, pattern, enum, unknown member), sent over real HTTP to `rekollect serve`.

Each must be answered with InvalidParameterException (HTTP 400), a message in AWS's
"N validation errors detected: Value ... at 'member' failed to satisfy constraint: ..."
form naming every failing member and constraint, and no change in the store.

Every bad request is a valid request of its operation (`BASELINES`) with some members
broken, so if validation let it through it would change the store: the baselines are
checked to do so, which keeps the "nothing changed" assertions able to fail. Most
requests go through boto3 with client-side validation off; what boto3 cannot put on
the wire (nulls, unknown members, lists and maps of the wrong type) is posted as raw
JSON.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from tests import faces as made_up
from tests.conftest import ACCOUNT, REGION, http_client

CONTENT_TYPE = "application/x-amz-json-1.1"

COLLECTION_ID_PATTERN = r"[a-zA-Z0-9_.\-]+"
USER_ID_PATTERN = r"[a-zA-Z0-9_.\-:]+"
TOKEN_PATTERN = r"^[a-zA-Z0-9-_]+$"
FACE_ID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TAG_KEY_PATTERN = r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$"
TAG_VALUE_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"

ENUM_QUALITY_FILTER = (
    "Member must satisfy enum value set: [NONE, AUTO, LOW, MEDIUM, HIGH]"
)
ENUM_ATTRIBUTES = (
    "Member must satisfy enum value set: [DEFAULT, ALL, AGE_RANGE, BEARD, EMOTIONS, "
    "EYE_DIRECTION, EYEGLASSES, EYES_OPEN, GENDER, MOUTH_OPEN, MUSTACHE, "
    "FACE_OCCLUDED, SMILE, SUNGLASSES]"
)

# A photo of one face for the image operations' valid requests. Validation comes
# before an image is decoded, so without the photo only the baselines of the image
# operations (which need a face) are skipped.
PHOTO = (
    Path(__file__).resolve().parents[2]
    / "shared/datasets/face-recognition-examples/examples__obama-480p.jpg"
)
PHOTO_BYTES = PHOTO.read_bytes() if PHOTO.is_file() else b"\xff\xd8 no photo"
IMAGE_OPERATIONS = {
    "IndexFaces",
    "DetectFaces",
    "CompareFaces",
    "SearchFacesByImage",
    "SearchUsersByImage",
}

# A well-formed face id in upper case: the FaceId pattern only takes [0-9a-f].
UPPER_CASE_FACE_ID = "0E7B4C4A-9F0E-4E5C-8B2A-3C1D2E3F4A5B"


def fake_face_ids(count: int) -> list[str]:
    """Face ids that match the pattern but name no face."""
    return [str(uuid.UUID(int=i + 1)) for i in range(count)]


# --- The store each test runs against -------------------------------------------------


@dataclass(frozen=True)
class World:
    """A collection with tag team=vision, user alice holding two faces of one person,
    user bob with none, and one face of nobody; plus the name of a collection that
    does not exist yet and a ClientRequestToken no request has used."""

    collection: str
    arn: str
    alices_faces: list[str]
    free_face: str
    new_collection: str
    token: str
    alice: str = "alice"
    bob: str = "bob"


def collection_arn(collection: str) -> str:
    return f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{collection}"


@pytest.fixture(scope="module")
def client(server: str) -> Any:
    """boto3 with client-side validation off, and no retries to hide a 500."""
    return http_client(
        server, parameter_validation=False, retries={"total_max_attempts": 1}
    )


@pytest.fixture(scope="module")
def wire(server: str) -> Iterator[httpx.Client]:
    """A plain HTTP client for bodies boto3 cannot serialise."""
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


@pytest.fixture
def world(client: Any, make_faces: Callable[..., list[str]]) -> Iterator[World]:
    name = f"bad-input-{uuid.uuid4().hex[:12]}"
    client.create_collection(CollectionId=name, Tags={"team": "vision"})
    client.create_user(CollectionId=name, UserId="alice")
    client.create_user(CollectionId=name, UserId="bob")
    alices = make_faces(name, 2, person=made_up.person())
    client.associate_faces(CollectionId=name, UserId="alice", FaceIds=alices)
    [free] = make_faces(name, 1)
    created = World(
        collection=name,
        arn=collection_arn(name),
        alices_faces=alices,
        free_face=free,
        new_collection=f"{name}-new",
        token=f"token-{uuid.uuid4().hex}",
    )
    yield created
    for leftover in (created.collection, created.new_collection):
        try:
            client.delete_collection(CollectionId=leftover)
        except client.exceptions.ResourceNotFoundException:
            pass


def snapshot(client: Any, world: World) -> dict[str, Any]:
    """Everything of the store a request in this file could change."""
    pages = client.get_paginator("list_collections").paginate()
    collections = sorted(cid for page in pages for cid in page["CollectionIds"])
    state: dict[str, Any] = {"collections": collections}
    if world.collection not in collections:
        return state
    description = client.describe_collection(CollectionId=world.collection)
    description.pop("ResponseMetadata")
    faces = client.list_faces(CollectionId=world.collection, MaxResults=4096)["Faces"]
    state |= {
        "description": description,
        "users": client.list_users(CollectionId=world.collection)["Users"],
        "owners": {face["FaceId"]: face.get("UserId") for face in faces},
        "tags": client.list_tags_for_resource(ResourceArn=world.arn)["Tags"],
    }
    return state


# --- Valid requests, one per operation, that the table breaks --------------------------

BASELINES: dict[str, Callable[[World], dict[str, Any]]] = {
    "CreateCollection": lambda w: {
        "CollectionId": w.new_collection,
        "Tags": {"team": "vision"},
    },
    "DeleteCollection": lambda w: {"CollectionId": w.collection},
    "DescribeCollection": lambda w: {"CollectionId": w.collection},
    "ListCollections": lambda w: {"MaxResults": 10},
    "CreateUser": lambda w: {
        "CollectionId": w.collection,
        "UserId": "carol",
        "ClientRequestToken": w.token,
    },
    "DeleteUser": lambda w: {
        "CollectionId": w.collection,
        "UserId": w.alice,
        "ClientRequestToken": w.token,
    },
    "ListUsers": lambda w: {"CollectionId": w.collection, "MaxResults": 10},
    "AssociateFaces": lambda w: {
        "CollectionId": w.collection,
        "UserId": w.alice,
        "FaceIds": [w.free_face],
        "UserMatchThreshold": 0,
        "ClientRequestToken": w.token,
    },
    "DisassociateFaces": lambda w: {
        "CollectionId": w.collection,
        "UserId": w.alice,
        "FaceIds": [w.alices_faces[0]],
        "ClientRequestToken": w.token,
    },
    "ListFaces": lambda w: {
        "CollectionId": w.collection,
        "UserId": w.alice,
        "FaceIds": w.alices_faces,
        "MaxResults": 10,
    },
    "DeleteFaces": lambda w: {"CollectionId": w.collection, "FaceIds": [w.free_face]},
    "TagResource": lambda w: {"ResourceArn": w.arn, "Tags": {"env": "prod"}},
    "UntagResource": lambda w: {"ResourceArn": w.arn, "TagKeys": ["team"]},
    "ListTagsForResource": lambda w: {"ResourceArn": w.arn},
    "IndexFaces": lambda w: {
        "CollectionId": w.collection,
        "Image": {"Bytes": PHOTO_BYTES},
        "ExternalImageId": "obama-480p.jpg",
        "DetectionAttributes": ["DEFAULT"],
        "MaxFaces": 1,
        "QualityFilter": "AUTO",
    },
    "DetectFaces": lambda w: {
        "Image": {"Bytes": PHOTO_BYTES},
        "Attributes": ["DEFAULT"],
    },
    "CompareFaces": lambda w: {
        "SourceImage": {"Bytes": PHOTO_BYTES},
        "TargetImage": {"Bytes": PHOTO_BYTES},
        "SimilarityThreshold": 80,
        "QualityFilter": "NONE",
    },
    "SearchFaces": lambda w: {
        "CollectionId": w.collection,
        "FaceId": w.free_face,
        "MaxFaces": 10,
        "FaceMatchThreshold": 80,
    },
    "SearchFacesByImage": lambda w: {
        "CollectionId": w.collection,
        "Image": {"Bytes": PHOTO_BYTES},
        "MaxFaces": 10,
        "FaceMatchThreshold": 80,
        "QualityFilter": "NONE",
    },
    "SearchUsers": lambda w: {
        "CollectionId": w.collection,
        "UserId": w.alice,
        "UserMatchThreshold": 80,
        "MaxUsers": 10,
    },
    "SearchUsersByImage": lambda w: {
        "CollectionId": w.collection,
        "Image": {"Bytes": PHOTO_BYTES},
        "UserMatchThreshold": 80,
        "MaxUsers": 10,
        "QualityFilter": "NONE",
    },
}

READ_ONLY = {
    "DescribeCollection",
    "ListCollections",
    "ListUsers",
    "ListFaces",
    "ListTagsForResource",
    "DetectFaces",
    "CompareFaces",
    "SearchFaces",
    "SearchFacesByImage",
    "SearchUsers",
    "SearchUsersByImage",
}
WITH_TOKEN = ["CreateUser", "DeleteUser", "AssociateFaces", "DisassociateFaces"]


# --- Expected violations, in the wording of AWS's validation messages -----------------


@dataclass(frozen=True)
class Expect:
    path: str
    constraint: str
    value: Any  # None: the message shows `null`


def null(path: str) -> Expect:
    return Expect(path, "Member must not be null", None)


def not_a(kind: str, path: str, value: Any) -> Expect:
    article = "an" if kind[0] in "aeiou" else "a"
    return Expect(path, f"Member must be {article} {kind}", value)


def pattern(path: str, value: Any, regex: str) -> Expect:
    return Expect(
        path, f"Member must satisfy regular expression pattern: {regex}", value
    )


def longer_than(path: str, value: Any, most: int) -> Expect:
    return Expect(path, f"Member must have length less than or equal to {most}", value)


def shorter_than(path: str, value: Any, least: int) -> Expect:
    return Expect(
        path, f"Member must have length greater than or equal to {least}", value
    )


def above(path: str, value: Any, most: float) -> Expect:
    return Expect(path, f"Member must have value less than or equal to {most}", value)


def below(path: str, value: Any, least: float) -> Expect:
    return Expect(
        path, f"Member must have value greater than or equal to {least}", value
    )


def undefined(path: str, value: Any, operation: str) -> Expect:
    return Expect(path, f"Member is not defined in {operation}Request", value)


def map_key(path: str, key: str, inner: Expect) -> Expect:
    return Expect(path, f"Map keys must satisfy constraint: [{inner.constraint}]", key)


def map_value(path: str, value: Any, inner: Expect) -> Expect:
    return Expect(
        path, f"Map values must satisfy constraint: [{inner.constraint}]", value
    )


def empty_string(path: str, regex: str) -> list[Expect]:
    """'' breaks both the minimum length 1 and a `+` pattern."""
    return [shorter_than(path, "", 1), pattern(path, "", regex)]


# --- The table -------------------------------------------------------------------------

MISSING = object()  # drop the member from the baseline request

Changes = dict[str, Any] | Callable[[World], dict[str, Any]]
Expected = list[Expect] | Callable[[World], list[Expect]]


@dataclass(frozen=True)
class Case:
    operation: str
    name: str  # "<Member>-<constraint>"
    changes: Changes
    errors: Expected
    raw: bool = False  # post the JSON body directly: boto3 cannot send it
    bug: str | None = None

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, reason=self.bug)] if self.bug else []
        return pytest.param(self, id=f"{self.operation}-{self.name}", marks=marks)


def resolve(value: Any, world: World) -> Any:
    return value(world) if callable(value) else value


LONG_COLLECTION_ID = "c" * 256
LONG_USER_ID = "u" * 129
LONG_EXTERNAL_IMAGE_ID = "e" * 256
EXTERNAL_IMAGE_ID_PATTERN = r"[a-zA-Z0-9_.\-:]+"
LONG_TOKEN = "t" * 65
LONG_TAG_VALUE = "v" * 257
LONG_TAG_KEY = "k" * 129
LONG_NEXT_TOKEN = "n" * 256
LONG_ARN = "arn:" + "a" * 2045
SHORT_ARN = "arn:aws:rekognition"  # 19 characters
TOO_MANY_TAGS = {f"k{i}": "v" for i in range(201)}
TOO_MANY_TAG_KEYS = [f"k{i}" for i in range(201)]


def collection_id_cases(operation: str) -> list[Case]:
    """Every constraint of CollectionId."""
    return [
        Case(operation, "CollectionId-required", {"CollectionId": MISSING}, [
            null("collectionId")
        ]),
        Case(operation, "CollectionId-null", {"CollectionId": None}, [
            null("collectionId")
        ], raw=True),
        Case(operation, "CollectionId-type", {"CollectionId": 42}, [
            not_a("string", "collectionId", 42)
        ]),
        Case(operation, "CollectionId-pattern", {"CollectionId": "bad id!"}, [
            pattern("collectionId", "bad id!", COLLECTION_ID_PATTERN)
        ]),
        Case(operation, "CollectionId-min-length", {"CollectionId": ""},
             empty_string("collectionId", COLLECTION_ID_PATTERN)),
        Case(operation, "CollectionId-max-length", {"CollectionId": LONG_COLLECTION_ID}, [
            longer_than("collectionId", LONG_COLLECTION_ID, 255)
        ]),
    ]  # fmt: skip


def user_id_cases(operation: str) -> list[Case]:
    """Every constraint of UserId."""
    return [
        Case(operation, "UserId-required", {"UserId": MISSING}, [null("userId")]),
        Case(operation, "UserId-type", {"UserId": ["alice"]}, [
            not_a("string", "userId", ["alice"])
        ]),
        Case(operation, "UserId-pattern", {"UserId": "alice smith"}, [
            pattern("userId", "alice smith", USER_ID_PATTERN)
        ]),
        Case(operation, "UserId-min-length", {"UserId": ""},
             empty_string("userId", USER_ID_PATTERN)),
        Case(operation, "UserId-max-length", {"UserId": LONG_USER_ID}, [
            longer_than("userId", LONG_USER_ID, 128)
        ]),
    ]  # fmt: skip


def token_cases(operation: str) -> list[Case]:
    """Every constraint of ClientRequestToken."""
    return [
        Case(operation, "ClientRequestToken-type", {"ClientRequestToken": 7}, [
            not_a("string", "clientRequestToken", 7)
        ]),
        Case(operation, "ClientRequestToken-pattern", {"ClientRequestToken": "tok en!"}, [
            pattern("clientRequestToken", "tok en!", TOKEN_PATTERN)
        ]),
        Case(operation, "ClientRequestToken-min-length", {"ClientRequestToken": ""},
             empty_string("clientRequestToken", TOKEN_PATTERN)),
        Case(operation, "ClientRequestToken-max-length", {"ClientRequestToken": LONG_TOKEN}, [
            longer_than("clientRequestToken", LONG_TOKEN, 64)
        ]),
    ]  # fmt: skip


def user_face_ids_cases(operation: str) -> list[Case]:
    """Every constraint of FaceIds in AssociateFaces and DisassociateFaces (1-100)."""
    return [
        Case(operation, "FaceIds-required", {"FaceIds": MISSING}, [null("faceIds")]),
        Case(operation, "FaceIds-type", lambda w: {"FaceIds": w.free_face},
             lambda w: [not_a("list", "faceIds", w.free_face)], raw=True),
        Case(operation, "FaceIds-min-items", {"FaceIds": []}, [
            shorter_than("faceIds", [], 1)
        ]),
        Case(operation, "FaceIds-max-items",
             lambda w: {"FaceIds": [w.free_face, *fake_face_ids(100)]},
             lambda w: [longer_than("faceIds", [w.free_face, *fake_face_ids(100)], 100)]),
        Case(operation, "FaceIds-item-pattern",
             lambda w: {"FaceIds": [w.free_face, *w.alices_faces, UPPER_CASE_FACE_ID]},
             [pattern("faceIds.4.member", UPPER_CASE_FACE_ID, FACE_ID_PATTERN)]),
        Case(operation, "FaceIds-item-type",
             lambda w: {"FaceIds": [w.free_face, 1234]},
             [not_a("string", "faceIds.2.member", 1234)]),
    ]  # fmt: skip


def unknown_member_case(operation: str, member: str = "Bogus") -> Case:
    return Case(
        operation,
        f"{member}-unknown-member",
        {member: 1},
        [undefined(xform_path(member), 1, operation)],
        raw=True,
    )


def xform_path(member: str) -> str:
    return member[:1].lower() + member[1:]


CASES: list[Case] = [
    # CreateCollection: CollectionId, and the TagMap with its keys and values.
    *collection_id_cases("CreateCollection"),
    Case("CreateCollection", "Tags-type", {"Tags": ["team"]}, [
        not_a("map", "tags", ["team"])
    ], raw=True),
    Case("CreateCollection", "Tags-max-items", {"Tags": TOO_MANY_TAGS}, [
        longer_than("tags", TOO_MANY_TAGS, 200)
    ]),
    Case("CreateCollection", "Tags-key-pattern", {"Tags": {"aws:team": "vision"}}, [
        map_key("tags", "aws:team", pattern("", "", TAG_KEY_PATTERN))
    ]),
    Case("CreateCollection", "Tags-key-max-length", {"Tags": {LONG_TAG_KEY: "v"}}, [
        map_key("tags", LONG_TAG_KEY, longer_than("", "", 128))
    ]),
    Case("CreateCollection", "Tags-value-pattern", {"Tags": {"team": "vision!"}}, [
        map_value("tags", "vision!", pattern("", "", TAG_VALUE_PATTERN))
    ]),
    Case("CreateCollection", "Tags-value-max-length", {"Tags": {"team": LONG_TAG_VALUE}}, [
        map_value("tags", LONG_TAG_VALUE, longer_than("", "", 256))
    ]),
    unknown_member_case("CreateCollection"),
    # DeleteCollection, DescribeCollection: their one member.
    *collection_id_cases("DeleteCollection"),
    unknown_member_case("DeleteCollection"),
    Case("DescribeCollection", "CollectionId-required", {"CollectionId": MISSING}, [
        null("collectionId")
    ]),
    Case("DescribeCollection", "CollectionId-max-length", {"CollectionId": LONG_COLLECTION_ID}, [
        longer_than("collectionId", LONG_COLLECTION_ID, 255)
    ]),
    unknown_member_case("DescribeCollection"),
    # ListCollections: MaxResults (0-4096) and NextToken (at most 255 characters).
    Case("ListCollections", "MaxResults-type", {"MaxResults": "ten"}, [
        not_a("integer", "maxResults", "ten")
    ]),
    Case("ListCollections", "MaxResults-fraction", {"MaxResults": 2.5}, [
        not_a("integer", "maxResults", 2.5)
    ]),
    Case("ListCollections", "MaxResults-boolean", {"MaxResults": True}, [
        not_a("integer", "maxResults", True)
    ]),
    Case("ListCollections", "MaxResults-min-value", {"MaxResults": -1}, [
        below("maxResults", -1, 0)
    ]),
    Case("ListCollections", "MaxResults-max-value", {"MaxResults": 4097}, [
        above("maxResults", 4097, 4096)
    ]),
    Case("ListCollections", "NextToken-type", {"NextToken": 5}, [
        not_a("string", "nextToken", 5)
    ]),
    Case("ListCollections", "NextToken-max-length", {"NextToken": LONG_NEXT_TOKEN}, [
        longer_than("nextToken", LONG_NEXT_TOKEN, 255)
    ]),
    unknown_member_case("ListCollections"),
    # CreateUser, DeleteUser: CollectionId, UserId, ClientRequestToken.
    Case("CreateUser", "CollectionId-pattern", {"CollectionId": "bad id!"}, [
        pattern("collectionId", "bad id!", COLLECTION_ID_PATTERN)
    ]),
    *user_id_cases("CreateUser"),
    *token_cases("CreateUser"),
    unknown_member_case("CreateUser"),
    Case("DeleteUser", "CollectionId-required", {"CollectionId": MISSING}, [
        null("collectionId")
    ]),
    *user_id_cases("DeleteUser"),
    Case("DeleteUser", "ClientRequestToken-pattern", {"ClientRequestToken": "tok en!"}, [
        pattern("clientRequestToken", "tok en!", TOKEN_PATTERN)
    ]),
    Case("DeleteUser", "ClientRequestToken-max-length", {"ClientRequestToken": LONG_TOKEN}, [
        longer_than("clientRequestToken", LONG_TOKEN, 64)
    ]),
    unknown_member_case("DeleteUser"),
    # ListUsers: MaxResults (1-500) and NextToken.
    Case("ListUsers", "CollectionId-pattern", {"CollectionId": "bad id!"}, [
        pattern("collectionId", "bad id!", COLLECTION_ID_PATTERN)
    ]),
    Case("ListUsers", "MaxResults-min-value", {"MaxResults": 0}, [
        below("maxResults", 0, 1)
    ]),
    Case("ListUsers", "MaxResults-max-value", {"MaxResults": 501}, [
        above("maxResults", 501, 500)
    ]),
    Case("ListUsers", "NextToken-max-length", {"NextToken": LONG_NEXT_TOKEN}, [
        longer_than("nextToken", LONG_NEXT_TOKEN, 255)
    ]),
    unknown_member_case("ListUsers"),
    # AssociateFaces: every constraint of every member.
    *collection_id_cases("AssociateFaces"),
    *user_id_cases("AssociateFaces"),
    *user_face_ids_cases("AssociateFaces"),
    Case("AssociateFaces", "UserMatchThreshold-type", {"UserMatchThreshold": "high"}, [
        not_a("number", "userMatchThreshold", "high")
    ], raw=True),
    Case("AssociateFaces", "UserMatchThreshold-min-value", {"UserMatchThreshold": -0.5}, [
        below("userMatchThreshold", -0.5, 0)
    ]),
    Case("AssociateFaces", "UserMatchThreshold-max-value", {"UserMatchThreshold": 100.5}, [
        above("userMatchThreshold", 100.5, 100)
    ]),
    *token_cases("AssociateFaces"),
    unknown_member_case("AssociateFaces"),
    Case("AssociateFaces", "several-errors", {
        "CollectionId": "bad id!",
        "UserId": MISSING,
        "FaceIds": [],
        "UserMatchThreshold": 100.5,
        "ClientRequestToken": LONG_TOKEN,
    }, [
        pattern("collectionId", "bad id!", COLLECTION_ID_PATTERN),
        null("userId"),
        shorter_than("faceIds", [], 1),
        above("userMatchThreshold", 100.5, 100),
        longer_than("clientRequestToken", LONG_TOKEN, 64),
    ]),
    # DisassociateFaces: every constraint of every member.
    *collection_id_cases("DisassociateFaces"),
    *user_id_cases("DisassociateFaces"),
    *user_face_ids_cases("DisassociateFaces"),
    *token_cases("DisassociateFaces"),
    unknown_member_case("DisassociateFaces"),
    unknown_member_case("DisassociateFaces", "UserMatchThreshold"),
    Case("DisassociateFaces", "several-errors", lambda w: {
        "CollectionId": LONG_COLLECTION_ID,
        "UserId": "alice smith",
        "FaceIds": [w.alices_faces[0], UPPER_CASE_FACE_ID],
        "ClientRequestToken": "tok en!",
        "Bogus": 1,
    }, [
        longer_than("collectionId", LONG_COLLECTION_ID, 255),
        pattern("userId", "alice smith", USER_ID_PATTERN),
        pattern("faceIds.2.member", UPPER_CASE_FACE_ID, FACE_ID_PATTERN),
        pattern("clientRequestToken", "tok en!", TOKEN_PATTERN),
        undefined("bogus", 1, "DisassociateFaces"),
    ], raw=True),
    # ListFaces: FaceIds (1-4096), UserId, MaxResults (0-4096), NextToken.
    Case("ListFaces", "CollectionId-required", {"CollectionId": MISSING}, [
        null("collectionId")
    ]),
    Case("ListFaces", "UserId-pattern", {"UserId": "alice smith"}, [
        pattern("userId", "alice smith", USER_ID_PATTERN)
    ]),
    Case("ListFaces", "FaceIds-min-items", {"FaceIds": []}, [
        shorter_than("faceIds", [], 1)
    ]),
    Case("ListFaces", "FaceIds-max-items", {"FaceIds": fake_face_ids(4097)}, [
        longer_than("faceIds", fake_face_ids(4097), 4096)
    ]),
    Case("ListFaces", "FaceIds-item-pattern", {"FaceIds": [UPPER_CASE_FACE_ID]}, [
        pattern("faceIds.1.member", UPPER_CASE_FACE_ID, FACE_ID_PATTERN)
    ]),
    Case("ListFaces", "MaxResults-min-value", {"MaxResults": -1}, [
        below("maxResults", -1, 0)
    ]),
    Case("ListFaces", "MaxResults-max-value", {"MaxResults": 4097}, [
        above("maxResults", 4097, 4096)
    ]),
    Case("ListFaces", "NextToken-max-length", {"NextToken": LONG_NEXT_TOKEN}, [
        longer_than("nextToken", LONG_NEXT_TOKEN, 255)
    ]),
    unknown_member_case("ListFaces"),
    # DeleteFaces: CollectionId and FaceIds (1-4096).
    Case("DeleteFaces", "CollectionId-pattern", {"CollectionId": "bad id!"}, [
        pattern("collectionId", "bad id!", COLLECTION_ID_PATTERN)
    ]),
    Case("DeleteFaces", "FaceIds-required", {"FaceIds": MISSING}, [null("faceIds")]),
    Case("DeleteFaces", "FaceIds-type", lambda w: {"FaceIds": {"FaceId": w.free_face}},
         lambda w: [not_a("list", "faceIds", {"FaceId": w.free_face})], raw=True),
    Case("DeleteFaces", "FaceIds-min-items", {"FaceIds": []}, [
        shorter_than("faceIds", [], 1)
    ]),
    Case("DeleteFaces", "FaceIds-max-items",
         lambda w: {"FaceIds": [w.free_face, *fake_face_ids(4096)]},
         lambda w: [longer_than("faceIds", [w.free_face, *fake_face_ids(4096)], 4096)]),
    Case("DeleteFaces", "FaceIds-item-pattern",
         lambda w: {"FaceIds": [w.free_face, "face-1"]},
         [pattern("faceIds.2.member", "face-1", FACE_ID_PATTERN)]),
    unknown_member_case("DeleteFaces"),
    # TagResource: ResourceArn (20-2048 characters) and the TagMap.
    Case("TagResource", "ResourceArn-required", {"ResourceArn": MISSING}, [
        null("resourceArn")
    ]),
    Case("TagResource", "ResourceArn-min-length", {"ResourceArn": SHORT_ARN}, [
        shorter_than("resourceArn", SHORT_ARN, 20)
    ]),
    Case("TagResource", "ResourceArn-max-length", {"ResourceArn": LONG_ARN}, [
        longer_than("resourceArn", LONG_ARN, 2048)
    ]),
    Case("TagResource", "Tags-required", {"Tags": MISSING}, [null("tags")]),
    Case("TagResource", "Tags-type", {"Tags": "env=prod"}, [
        not_a("map", "tags", "env=prod")
    ], raw=True),
    Case("TagResource", "Tags-max-items", {"Tags": TOO_MANY_TAGS}, [
        longer_than("tags", TOO_MANY_TAGS, 200)
    ]),
    Case("TagResource", "Tags-key-min-length", {"Tags": {"": "prod"}}, [
        map_key("tags", "", shorter_than("", "", 1))
    ]),
    Case("TagResource", "Tags-key-pattern", {"Tags": {"aws:env": "prod"}}, [
        map_key("tags", "aws:env", pattern("", "", TAG_KEY_PATTERN))
    ]),
    Case("TagResource", "Tags-value-type", {"Tags": {"env": 5}}, [
        map_value("tags", 5, not_a("string", "", 5))
    ]),
    Case("TagResource", "Tags-value-max-length", {"Tags": {"env": LONG_TAG_VALUE}}, [
        map_value("tags", LONG_TAG_VALUE, longer_than("", "", 256))
    ]),
    unknown_member_case("TagResource"),
    # UntagResource: ResourceArn and TagKeys (0-200 keys of 1-128 characters).
    Case("UntagResource", "ResourceArn-min-length", {"ResourceArn": SHORT_ARN}, [
        shorter_than("resourceArn", SHORT_ARN, 20)
    ]),
    Case("UntagResource", "TagKeys-required", {"TagKeys": MISSING}, [null("tagKeys")]),
    Case("UntagResource", "TagKeys-type", {"TagKeys": "team"}, [
        not_a("list", "tagKeys", "team")
    ], raw=True),
    Case("UntagResource", "TagKeys-max-items", {"TagKeys": ["team", *TOO_MANY_TAG_KEYS]}, [
        longer_than("tagKeys", ["team", *TOO_MANY_TAG_KEYS], 200)
    ]),
    Case("UntagResource", "TagKeys-item-min-length", {"TagKeys": ["team", ""]}, [
        shorter_than("tagKeys.2.member", "", 1)
    ]),
    Case("UntagResource", "TagKeys-item-max-length", {"TagKeys": ["team", LONG_TAG_KEY]}, [
        longer_than("tagKeys.2.member", LONG_TAG_KEY, 128)
    ]),
    Case("UntagResource", "TagKeys-item-pattern", {"TagKeys": ["team", "aws:team"]}, [
        pattern("tagKeys.2.member", "aws:team", TAG_KEY_PATTERN)
    ]),
    unknown_member_case("UntagResource"),
    # ListTagsForResource: ResourceArn.
    Case("ListTagsForResource", "ResourceArn-required", {"ResourceArn": MISSING}, [
        null("resourceArn")
    ]),
    Case("ListTagsForResource", "ResourceArn-type", {"ResourceArn": 12345678901234567890}, [
        not_a("string", "resourceArn", 12345678901234567890)
    ]),
    Case("ListTagsForResource", "ResourceArn-min-length", {"ResourceArn": SHORT_ARN}, [
        shorter_than("resourceArn", SHORT_ARN, 20)
    ]),
    Case("ListTagsForResource", "ResourceArn-max-length", {"ResourceArn": LONG_ARN}, [
        longer_than("resourceArn", LONG_ARN, 2048)
    ]),
    unknown_member_case("ListTagsForResource"),
    # IndexFaces: CollectionId, the Image union, ExternalImageId, the enums, MaxFaces.
    *collection_id_cases("IndexFaces"),
    Case("IndexFaces", "Image-required", {"Image": MISSING}, [null("image")]),
    Case("IndexFaces", "Image-Bytes-min-length", {"Image": {"Bytes": b""}}, [
        shorter_than("image.bytes", "<0 bytes>", 1)
    ]),
    Case("IndexFaces", "Image-Bytes-type", {"Image": {"Bytes": 5}}, [
        Expect("image.bytes", "Member must be a base64-encoded string", 5)
    ], raw=True),
    Case("IndexFaces", "Image-S3Object-members",
         {"Image": {"S3Object": {"Bucket": "a b", "Name": ""}}}, [
        pattern("image.s3Object.bucket", "a b", r"[0-9A-Za-z\.\-_]*"),
        shorter_than("image.s3Object.name", "", 1),
    ]),
    Case("IndexFaces", "ExternalImageId-pattern", {"ExternalImageId": "obama 1.jpg"}, [
        pattern("externalImageId", "obama 1.jpg", EXTERNAL_IMAGE_ID_PATTERN)
    ]),
    Case("IndexFaces", "ExternalImageId-max-length",
         {"ExternalImageId": LONG_EXTERNAL_IMAGE_ID}, [
        longer_than("externalImageId", LONG_EXTERNAL_IMAGE_ID, 255)
    ]),
    Case("IndexFaces", "MaxFaces-min-value", {"MaxFaces": 0}, [
        below("maxFaces", 0, 1)
    ]),
    Case("IndexFaces", "QualityFilter-enum", {"QualityFilter": "BEST"}, [
        Expect("qualityFilter", ENUM_QUALITY_FILTER, "BEST")
    ]),
    Case("IndexFaces", "DetectionAttributes-item-enum",
         {"DetectionAttributes": ["DEFAULT", "AGE"]}, [
        Expect("detectionAttributes.2.member", ENUM_ATTRIBUTES, "AGE")
    ]),
    unknown_member_case("IndexFaces"),
    # DetectFaces: Image and Attributes.
    Case("DetectFaces", "Image-required", {"Image": MISSING}, [null("image")]),
    Case("DetectFaces", "Attributes-type", {"Attributes": "ALL"}, [
        not_a("list", "attributes", "ALL")
    ], raw=True),
    Case("DetectFaces", "Attributes-item-enum", {"Attributes": ["SMILES"]}, [
        Expect("attributes.1.member", ENUM_ATTRIBUTES, "SMILES")
    ]),
    unknown_member_case("DetectFaces"),
    # CompareFaces: both images, SimilarityThreshold (0-100), QualityFilter.
    Case("CompareFaces", "images-required",
         {"SourceImage": MISSING, "TargetImage": MISSING},
         [null("sourceImage"), null("targetImage")]),
    Case("CompareFaces", "SimilarityThreshold-max-value", {"SimilarityThreshold": 101}, [
        above("similarityThreshold", 101, 100)
    ]),
    Case("CompareFaces", "SimilarityThreshold-type", {"SimilarityThreshold": "80"}, [
        not_a("number", "similarityThreshold", "80")
    ], raw=True),
    Case("CompareFaces", "QualityFilter-enum", {"QualityFilter": "none"}, [
        Expect("qualityFilter", ENUM_QUALITY_FILTER, "none")
    ]),
    unknown_member_case("CompareFaces"),
    # SearchFaces: CollectionId, FaceId, MaxFaces (1-4096), FaceMatchThreshold (0-100).
    *collection_id_cases("SearchFaces"),
    Case("SearchFaces", "FaceId-required", {"FaceId": MISSING}, [null("faceId")]),
    Case("SearchFaces", "FaceId-pattern", {"FaceId": UPPER_CASE_FACE_ID}, [
        pattern("faceId", UPPER_CASE_FACE_ID, FACE_ID_PATTERN)
    ]),
    Case("SearchFaces", "MaxFaces-max-value", {"MaxFaces": 4097}, [
        above("maxFaces", 4097, 4096)
    ]),
    Case("SearchFaces", "FaceMatchThreshold-min-value", {"FaceMatchThreshold": -1}, [
        below("faceMatchThreshold", -1, 0)
    ]),
    unknown_member_case("SearchFaces"),
    # SearchFacesByImage.
    Case("SearchFacesByImage", "CollectionId-pattern", {"CollectionId": "bad id!"}, [
        pattern("collectionId", "bad id!", COLLECTION_ID_PATTERN)
    ]),
    Case("SearchFacesByImage", "Image-required", {"Image": MISSING}, [null("image")]),
    Case("SearchFacesByImage", "MaxFaces-min-value", {"MaxFaces": 0}, [
        below("maxFaces", 0, 1)
    ]),
    Case("SearchFacesByImage", "FaceMatchThreshold-max-value",
         {"FaceMatchThreshold": 100.5}, [
        above("faceMatchThreshold", 100.5, 100)
    ]),
    Case("SearchFacesByImage", "QualityFilter-enum", {"QualityFilter": "MAX"}, [
        Expect("qualityFilter", ENUM_QUALITY_FILTER, "MAX")
    ]),
    unknown_member_case("SearchFacesByImage"),
    # SearchUsers: UserId or FaceId, UserMatchThreshold, MaxUsers (1-500).
    *collection_id_cases("SearchUsers"),
    Case("SearchUsers", "UserId-pattern", {"UserId": "alice smith"}, [
        pattern("userId", "alice smith", USER_ID_PATTERN)
    ]),
    Case("SearchUsers", "UserId-max-length", {"UserId": LONG_USER_ID}, [
        longer_than("userId", LONG_USER_ID, 128)
    ]),
    Case("SearchUsers", "FaceId-pattern",
         {"UserId": MISSING, "FaceId": "face-1"}, [
        pattern("faceId", "face-1", FACE_ID_PATTERN)
    ]),
    Case("SearchUsers", "UserMatchThreshold-max-value", {"UserMatchThreshold": 101}, [
        above("userMatchThreshold", 101, 100)
    ]),
    Case("SearchUsers", "MaxUsers-max-value", {"MaxUsers": 501}, [
        above("maxUsers", 501, 500)
    ]),
    unknown_member_case("SearchUsers"),
    # SearchUsersByImage.
    Case("SearchUsersByImage", "CollectionId-required", {"CollectionId": MISSING}, [
        null("collectionId")
    ]),
    Case("SearchUsersByImage", "Image-required", {"Image": MISSING}, [null("image")]),
    Case("SearchUsersByImage", "MaxUsers-min-value", {"MaxUsers": 0}, [
        below("maxUsers", 0, 1)
    ]),
    Case("SearchUsersByImage", "UserMatchThreshold-min-value",
         {"UserMatchThreshold": -0.5}, [
        below("userMatchThreshold", -0.5, 0)
    ]),
    Case("SearchUsersByImage", "QualityFilter-enum", {"QualityFilter": "LOWEST"}, [
        Expect("qualityFilter", ENUM_QUALITY_FILTER, "LOWEST")
    ]),
    unknown_member_case("SearchUsersByImage"),
]  # fmt: skip


# --- Sending a request and reading the answer ------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    code: str
    message: str


def request_body(case: Case, world: World) -> dict[str, Any]:
    body = BASELINES[case.operation](world)
    for member, value in resolve(case.changes, world).items():
        if value is MISSING:
            body.pop(member)
        else:
            body[member] = value
    return body


def post_raw(wire: httpx.Client, operation: str, body: Any) -> Answer:
    """POST a JSON body as is, the way any AWS JSON 1.1 client would frame it."""
    response = wire.post(
        "/",
        headers={
            "X-Amz-Target": f"RekognitionService.{operation}",
            "Content-Type": CONTENT_TYPE,
        },
        content=json.dumps(body, default=_base64).encode(),
    )
    if response.status_code == 200:
        return Answer(200, "", "")
    error = response.json()
    assert response.headers["x-amzn-ErrorType"] == error["__type"]
    return Answer(response.status_code, error["__type"], error["Message"])


def _base64(value: Any) -> str:
    """Blobs travel as base64 strings in AWS JSON 1.1."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def send_boto3(client: Any, operation: str, body: dict[str, Any]) -> Answer:
    try:
        getattr(client, xform_name(operation))(**body)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == "InvalidParameterException":
            assert isinstance(error, client.exceptions.InvalidParameterException)
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        return Answer(status, code, error.response["Error"]["Message"])
    return Answer(200, "", "")


def send(case: Case, body: dict[str, Any], client: Any, wire: httpx.Client) -> Answer:
    if case.raw:
        return post_raw(wire, case.operation, body)
    return send_boto3(client, case.operation, body)


_HEADER = re.compile(r"(\d+) validation (errors?) detected: (.*)", re.DOTALL)
_VIOLATION = re.compile(
    r"Value (?P<shown>null|'.*') at '(?P<path>[^']*)' "
    r"failed to satisfy constraint: (?P<constraint>.*)",
    re.DOTALL,
)


def as_text(value: Any) -> str:
    """A value as AWS's messages show it (Java's toString of the request member)."""
    if isinstance(value, list):
        return "[" + ", ".join(as_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={as_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shows(shown: str, value: Any) -> bool:
    """Whether `shown` is `value` as a message shows it, whole or cut short with '...'."""
    if value is None:
        return shown == "null"
    text = as_text(value)
    if shown == f"'{text}'":
        return True
    cut = shown.removeprefix("'").removesuffix("...'")
    return shown.endswith("...'") and len(cut) >= 20 and text.startswith(cut)


def assert_violations(message: str, expected: list[Expect]) -> None:
    """`message` reports exactly `expected`, in any order, in AWS's wording."""
    header = _HEADER.fullmatch(message)
    assert header, message
    count, noun, listed = header.groups()
    assert int(count) == len(expected), message
    assert noun == ("error" if len(expected) == 1 else "errors"), message

    found = []
    for part in re.split(r"; (?=Value )", listed):
        violation = _VIOLATION.fullmatch(part)
        assert violation, f"not a violation: {part!r} in {message!r}"
        found.append(violation)
    assert len(found) == len(expected), message

    unmatched = list(expected)
    for violation in found:
        match = next(
            (
                e
                for e in unmatched
                if (e.path, e.constraint)
                == (violation["path"], violation["constraint"])
                and shows(violation["shown"], e.value)
            ),
            None,
        )
        assert match is not None, f"unexpected {violation.group(0)!r} in {message!r}"
        unmatched.remove(match)
    assert not unmatched, message


# --- The tests -------------------------------------------------------------------------


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_bad_input_is_invalid_parameter_and_changes_nothing(
    case: Case, client: Any, wire: httpx.Client, world: World
) -> None:
    body = request_body(case, world)
    before = snapshot(client, world)

    answer = send(case, body, client, wire)

    assert (answer.status, answer.code) == (400, "InvalidParameterException"), answer
    assert_violations(answer.message, resolve(case.errors, world))
    assert snapshot(client, world) == before


@pytest.mark.parametrize("operation", list(BASELINES))
def test_baseline_request_is_valid_and_would_change_the_store(
    operation: str, client: Any, world: World
) -> None:
    """What the table breaks is a request that works: so a bad request that got
    through would show in the snapshot (read-only operations excepted)."""
    if operation in IMAGE_OPERATIONS and not PHOTO.is_file():
        pytest.skip(f"face photo not found at {PHOTO}")
    before = snapshot(client, world)
    response = getattr(client, xform_name(operation))(**BASELINES[operation](world))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    changed = snapshot(client, world) != before
    assert changed == (operation not in READ_ONLY)


@pytest.mark.parametrize("operation", WITH_TOKEN)
def test_rejected_request_does_not_use_up_its_client_request_token(
    operation: str, client: Any, world: World
) -> None:
    """The token of a request refused as invalid still works for a valid request
    with other parameters (a stored token would be IdempotentParameterMismatch)."""
    bad = BASELINES[operation](world) | {"CollectionId": "bad id!"}
    with pytest.raises(client.exceptions.InvalidParameterException):
        getattr(client, xform_name(operation))(**bad)
    response = getattr(client, xform_name(operation))(**BASELINES[operation](world))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_enum_value_outside_the_set_is_invalid_parameter(wire: httpx.Client) -> None:
    """Validation comes before the operation is looked up, as in AWS: an operation
    rekollect does not implement still checks its enums (the table covers the enums
    of the implemented ones)."""
    valid = post_raw(wire, "CreateProject", {"ProjectName": "p"})
    assert (valid.status, valid.code) == (400, "UnsupportedOperationException")

    answer = post_raw(wire, "CreateProject", {"ProjectName": "p", "Feature": "FACES"})
    assert (answer.status, answer.code) == (400, "InvalidParameterException")
    assert_violations(
        answer.message,
        [
            Expect(
                "feature",
                "Member must satisfy enum value set: [CONTENT_MODERATION, CUSTOM_LABELS]",
                "FACES",
            )
        ],
    )


def test_table_covers_every_operation_and_matches_the_model() -> None:
    """The table names every operation rekollect implements, and the limits and
    patterns it expects are the ones in botocore's model."""
    from rekollect.service import OPERATIONS

    covered = {case.operation for case in CASES}
    assert covered == set(OPERATIONS) == set(BASELINES)

    model = botocore.session.get_session().get_service_model("rekognition")

    def constraints(operation: str, member: str) -> dict[str, Any]:
        shape = model.operation_model(operation).input_shape.members[member]
        return shape.metadata

    assert constraints("CreateCollection", "CollectionId") == {
        "min": 1,
        "max": 255,
        "pattern": COLLECTION_ID_PATTERN,
    }
    assert constraints("CreateUser", "UserId")["pattern"] == USER_ID_PATTERN
    assert constraints("CreateUser", "ClientRequestToken")["pattern"] == TOKEN_PATTERN
    face_id = model.operation_model("AssociateFaces").input_shape.members["FaceIds"]
    assert face_id.member.metadata["pattern"] == FACE_ID_PATTERN
    tags = model.operation_model("TagResource").input_shape.members["Tags"]
    assert tags.key.metadata["pattern"] == TAG_KEY_PATTERN
    assert tags.value.metadata["pattern"] == TAG_VALUE_PATTERN
