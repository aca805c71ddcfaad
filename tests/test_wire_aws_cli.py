"""The real aws CLI v1, run as a subprocess against a real `rekollect serve`: what a
shell user sees for collections, users, face associations, ListFaces pagination and
tags. Faces are stored through the service layer (`make_faces`); state is checked
afterwards with a boto3 client on the same server."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import faces as made_up
from tests.conftest import ACCOUNT, REGION, aws_cli_env, aws_executable, http_client

CLI_TIMEOUT_S = 60
COLLECTION_ID_PATTERN = r"[a-zA-Z0-9_.\-]+"


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    json: Any  # stdout parsed, when the command succeeded and printed JSON


def aws(*args: str, server: str, home: Path, output: str = "json") -> CliRun:
    """Run `aws rekognition *args` against `server`, with a clean configuration."""
    command = [aws_executable(), "rekognition", *args]
    command += ["--endpoint-url", server, "--output", output]
    completed = subprocess.run(
        command,
        env=aws_cli_env(home),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    parsed = None
    if completed.returncode == 0 and output == "json" and completed.stdout.strip():
        parsed = json.loads(completed.stdout)
    return CliRun(completed.returncode, completed.stdout, completed.stderr, parsed)


def cli_error(run: CliRun, code: str, operation: str) -> str:
    """The message of the service error the CLI reported, checking how it reported it."""
    prefix = f"An error occurred ({code}) when calling the {operation} operation: "
    assert run.returncode == 255, run
    assert run.stdout == ""
    line = run.stderr.strip()
    assert line.startswith(prefix), run.stderr
    assert "\n" not in line
    return line.removeprefix(prefix)


def succeeded_silently(run: CliRun) -> bool:
    return (run.returncode, run.stdout) == (0, "")


def unique_name(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def client(server: str) -> Any:
    return http_client(server)


@pytest.fixture
def collection(client: Any) -> Iterator[str]:
    """A fresh collection, created over boto3 and deleted afterwards."""
    name = unique_name()
    client.create_collection(CollectionId=name)
    yield name
    try:
        client.delete_collection(CollectionId=name)
    except client.exceptions.ResourceNotFoundException:
        pass


def owners(client: Any, collection: str) -> dict[str, str | None]:
    """Every face of the collection with the user it belongs to (None: no user)."""
    faces = client.list_faces(CollectionId=collection, MaxResults=4096)["Faces"]
    return {face["FaceId"]: face.get("UserId") for face in faces}


def give(client: Any, collection: str, user_id: str, face_ids: list[str]) -> None:
    """Create a user over boto3 and associate faces with it."""
    client.create_user(CollectionId=collection, UserId=user_id)
    if face_ids:
        response = client.associate_faces(
            CollectionId=collection, UserId=user_id, FaceIds=face_ids
        )
        assert len(response["AssociatedFaces"]) == len(face_ids)


# Collections


def test_collection_lifecycle_prints_what_aws_prints(
    server, client, make_faces, tmp_path
):
    name = unique_name()
    try:
        created = aws(
            "create-collection", "--collection-id", name, server=server, home=tmp_path
        )
        assert created.returncode == 0, created
        assert created.json == {
            "StatusCode": 200,
            "CollectionArn": f"aws:rekognition:{REGION}:{ACCOUNT}:collection/{name}",
            "FaceModelVersion": "1.0",
        }

        make_faces(name, 2)
        client.create_user(CollectionId=name, UserId="alice")
        described = aws(
            "describe-collection", "--collection-id", name, server=server, home=tmp_path
        )
        assert described.returncode == 0, described
        assert described.json["CollectionARN"] == (
            f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{name}"
        )
        assert described.json["FaceCount"] == 2
        assert described.json["UserCount"] == 1
        assert described.json["FaceModelVersion"] == "1.0"
        # The CLI prints the raw epoch seconds, not an ISO date.
        assert re.search(r'"CreationTimestamp": \d+(\.\d+)?,?\n', described.stdout)
        created_at = described.json["CreationTimestamp"]
        assert 0 <= time.time() - created_at < 300

        listed = aws("list-collections", server=server, home=tmp_path)
        assert listed.returncode == 0, listed
        ids, versions = listed.json["CollectionIds"], listed.json["FaceModelVersions"]
        assert len(ids) == len(versions)
        assert versions[ids.index(name)] == "1.0"
        assert "NextToken" not in listed.json

        deleted = aws(
            "delete-collection", "--collection-id", name, server=server, home=tmp_path
        )
        assert deleted.returncode == 0, deleted
        assert deleted.json == {"StatusCode": 200}

        gone = aws(
            "describe-collection", "--collection-id", name, server=server, home=tmp_path
        )
        assert name in cli_error(
            gone, "ResourceNotFoundException", "DescribeCollection"
        )
        assert name not in client.list_collections(MaxResults=4096)["CollectionIds"]
    finally:
        try:
            client.delete_collection(CollectionId=name)
        except client.exceptions.ResourceNotFoundException:
            pass


def test_invalid_collection_id_is_invalid_parameter_exception_naming_the_pattern(
    server, client, tmp_path
):
    run = aws(
        "create-collection", "--collection-id", "bad id!", server=server, home=tmp_path
    )
    message = cli_error(run, "InvalidParameterException", "CreateCollection")
    assert "collectionId" in message
    assert COLLECTION_ID_PATTERN in message
    assert "bad id!" not in client.list_collections(MaxResults=4096)["CollectionIds"]


# Users


def test_create_user_prints_nothing_and_list_users_shows_it_created(
    server, client, collection, tmp_path
):
    base = ("--collection-id", collection, "--user-id", "alice")
    created = aws("create-user", *base, server=server, home=tmp_path)
    assert succeeded_silently(created), created

    listed = aws(
        "list-users", "--collection-id", collection, server=server, home=tmp_path
    )
    assert listed.returncode == 0, listed
    assert listed.json == {"Users": [{"UserId": "alice", "UserStatus": "CREATED"}]}

    deleted = aws("delete-user", *base, server=server, home=tmp_path)
    assert succeeded_silently(deleted), deleted
    assert client.list_users(CollectionId=collection)["Users"] == []


def test_create_user_twice_is_conflict_exception_and_keeps_the_user(
    server, client, collection, make_faces, tmp_path
):
    face = make_faces(collection, 1)[0]
    give(client, collection, "alice", [face])

    again = aws(
        "create-user",
        "--collection-id",
        collection,
        "--user-id",
        "alice",
        server=server,
        home=tmp_path,
    )
    assert "alice" in cli_error(again, "ConflictException", "CreateUser")
    assert client.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "ACTIVE"}
    ]
    assert owners(client, collection) == {face: "alice"}


def test_create_user_with_repeated_client_request_token_succeeds_again(
    server, client, collection, tmp_path
):
    token = f"token-{uuid.uuid4().hex}"
    args = ("create-user", "--collection-id", collection, "--user-id", "alice")
    args += ("--client-request-token", token)
    first = aws(*args, server=server, home=tmp_path)
    assert succeeded_silently(first), first
    again = aws(*args, server=server, home=tmp_path)
    assert succeeded_silently(again), again
    assert client.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "CREATED"}
    ]


# DisassociateFaces


def test_disassociate_faces_reports_each_face_by_whom_it_belongs_to(
    server, client, collection, make_faces, tmp_path
):
    mine = make_faces(collection, 2)
    bobs = make_faces(collection, 1)[0]
    loose = make_faces(collection, 1)[0]
    unknown = str(uuid.uuid4())
    give(client, collection, "alice", mine)
    give(client, collection, "bob", [bobs])

    run = aws(
        "disassociate-faces",
        "--collection-id",
        collection,
        "--user-id",
        "alice",
        "--face-ids",
        mine[0],
        loose,
        bobs,
        unknown,
        mine[0],
        server=server,
        home=tmp_path,
    )
    assert run.returncode == 0, run
    assert run.json == {
        "DisassociatedFaces": [{"FaceId": mine[0]}],
        "UnsuccessfulFaceDisassociations": [
            {
                "FaceId": bobs,
                "UserId": "bob",
                "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
            },
            {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]},
        ],
        "UserStatus": "UPDATING",
    }
    assert owners(client, collection) == {
        mine[0]: None,
        mine[1]: "alice",
        bobs: "bob",
        loose: None,
    }


def test_disassociate_faces_ignores_face_of_no_user_and_reports_user_status(
    server, client, collection, make_faces, tmp_path
):
    mine = make_faces(collection, 1)[0]
    loose = make_faces(collection, 1)[0]
    give(client, collection, "alice", [mine])
    base = ("disassociate-faces", "--collection-id", collection, "--user-id", "alice")

    ignored = aws(*base, "--face-ids", loose, server=server, home=tmp_path)
    assert ignored.returncode == 0, ignored
    assert ignored.json == {
        "DisassociatedFaces": [],
        "UnsuccessfulFaceDisassociations": [],
        "UserStatus": "ACTIVE",
    }
    assert owners(client, collection) == {mine: "alice", loose: None}

    last = aws(*base, "--face-ids", mine, server=server, home=tmp_path)
    assert last.returncode == 0, last
    assert last.json["DisassociatedFaces"] == [{"FaceId": mine}]
    assert last.json["UserStatus"] == "UPDATING"
    assert client.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "CREATED"}
    ]


def test_disassociate_faces_of_missing_user_or_collection_is_resource_not_found(
    server, client, collection, make_faces, tmp_path
):
    face = make_faces(collection, 1)[0]
    give(client, collection, "alice", [face])
    missing = unique_name("missing")

    no_user = aws(
        "disassociate-faces",
        "--collection-id",
        collection,
        "--user-id",
        "nobody",
        "--face-ids",
        face,
        server=server,
        home=tmp_path,
    )
    assert "nobody" in cli_error(
        no_user, "ResourceNotFoundException", "DisassociateFaces"
    )

    no_collection = aws(
        "disassociate-faces",
        "--collection-id",
        missing,
        "--user-id",
        "alice",
        "--face-ids",
        face,
        server=server,
        home=tmp_path,
    )
    message = cli_error(no_collection, "ResourceNotFoundException", "DisassociateFaces")
    assert missing in message
    assert owners(client, collection) == {face: "alice"}
    assert client.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "ACTIVE"}
    ]


def test_client_request_token_repeats_the_first_disassociate_faces_response(
    server, client, collection, make_faces, tmp_path
):
    first_face, second_face = make_faces(collection, 2)
    give(client, collection, "alice", [first_face, second_face])
    token = f"token-{uuid.uuid4().hex}"
    base = ("disassociate-faces", "--collection-id", collection, "--user-id", "alice")
    base += ("--client-request-token", token)

    first = aws(*base, "--face-ids", first_face, server=server, home=tmp_path)
    assert first.returncode == 0, first
    assert first.json == {
        "DisassociatedFaces": [{"FaceId": first_face}],
        "UnsuccessfulFaceDisassociations": [],
        "UserStatus": "UPDATING",
    }

    # The face is no longer alice's; a new request would disassociate nothing.
    again = aws(*base, "--face-ids", first_face, server=server, home=tmp_path)
    assert again.returncode == 0, again
    assert again.json == first.json

    other = aws(*base, "--face-ids", second_face, server=server, home=tmp_path)
    message = cli_error(
        other, "IdempotentParameterMismatchException", "DisassociateFaces"
    )
    assert (
        message
        == f"The ClientRequestToken: {token} you have supplied is already in use."
    )
    assert owners(client, collection) == {first_face: None, second_face: "alice"}


# AssociateFaces


def test_associate_faces_reports_unknown_faces_and_faces_of_other_users(
    server, client, collection, make_faces, tmp_path
):
    mine = make_faces(collection, 2)
    bobs = make_faces(collection, 1)[0]
    unknown = str(uuid.uuid4())
    give(client, collection, "alice", [])
    give(client, collection, "bob", [bobs])

    run = aws(
        "associate-faces",
        "--collection-id",
        collection,
        "--user-id",
        "alice",
        "--face-ids",
        mine[0],
        unknown,
        bobs,
        mine[1],
        mine[0],
        server=server,
        home=tmp_path,
    )
    assert run.returncode == 0, run
    assert run.json == {
        "AssociatedFaces": [{"FaceId": mine[0]}, {"FaceId": mine[1]}],
        "UnsuccessfulFaceAssociations": [
            {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]},
            {
                "FaceId": bobs,
                "UserId": "bob",
                "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
            },
        ],
        "UserStatus": "UPDATING",
    }
    assert owners(client, collection) == {
        mine[0]: "alice",
        mine[1]: "alice",
        bobs: "bob",
    }


def test_associate_faces_of_another_person_is_low_match_confidence_unless_threshold_allows(
    server, client, collection, make_faces, tmp_path
):
    alice = made_up.person()
    first, second = make_faces(collection, 2, person=alice)
    stranger = make_faces(collection, 1, person=made_up.person())[0]
    give(client, collection, "alice", [first])
    base = ("associate-faces", "--collection-id", collection, "--user-id", "alice")

    run = aws(*base, "--face-ids", stranger, second, server=server, home=tmp_path)
    assert run.returncode == 0, run
    assert run.json["AssociatedFaces"] == [{"FaceId": second}]
    [low] = run.json["UnsuccessfulFaceAssociations"]
    assert low["FaceId"] == stranger
    assert low["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert "UserId" not in low
    assert 0 <= low["Confidence"] < 75
    assert run.json["UserStatus"] == "UPDATING"
    assert owners(client, collection)[stranger] is None

    # A face already alice's is silently ignored.
    allowed = aws(
        *base,
        "--face-ids",
        stranger,
        first,
        "--user-match-threshold",
        "0",
        server=server,
        home=tmp_path,
    )
    assert allowed.returncode == 0, allowed
    assert allowed.json == {
        "AssociatedFaces": [{"FaceId": stranger}],
        "UnsuccessfulFaceAssociations": [],
        "UserStatus": "UPDATING",
    }
    assert owners(client, collection) == {
        first: "alice",
        second: "alice",
        stranger: "alice",
    }


# ListFaces


def test_list_faces_of_one_user_and_as_text_with_a_query(
    server, client, collection, make_faces, tmp_path
):
    five = make_faces(collection, 5)
    give(client, collection, "alice", five[:2])

    alices = aws(
        "list-faces",
        "--collection-id",
        collection,
        "--user-id",
        "alice",
        server=server,
        home=tmp_path,
    )
    assert alices.returncode == 0, alices
    assert [face["FaceId"] for face in alices.json["Faces"]] == sorted(five[:2])
    for face in alices.json["Faces"]:
        assert face["UserId"] == "alice"
        assert set(face) >= {
            "BoundingBox",
            "ImageId",
            "Confidence",
            "IndexFacesModelVersion",
        }
    assert alices.json["FaceModelVersion"] == "1.0"
    assert "NextToken" not in alices.json

    text = aws(
        "list-faces",
        "--collection-id",
        collection,
        "--query",
        "Faces[].FaceId",
        server=server,
        home=tmp_path,
        output="text",
    )
    assert text.returncode == 0, text
    assert text.stdout.split() == sorted(five)


def test_list_faces_follows_next_token_unless_told_not_to(
    server, collection, make_faces, tmp_path
):
    five = sorted(make_faces(collection, 5))
    base = ("list-faces", "--collection-id", collection)

    paged = aws(*base, "--page-size", "2", "--debug", server=server, home=tmp_path)
    assert paged.returncode == 0, paged.stderr[-2000:]
    assert [face["FaceId"] for face in paged.json["Faces"]] == five
    assert "NextToken" not in paged.json
    assert paged.stderr.count("Making request for OperationModel(name=ListFaces)") == 3

    first = aws(
        *base, "--page-size", "2", "--max-items", "2", server=server, home=tmp_path
    )
    assert first.returncode == 0, first
    assert [face["FaceId"] for face in first.json["Faces"]] == five[:2]
    token = first.json["NextToken"]

    rest = aws(
        *base,
        "--page-size",
        "2",
        "--starting-token",
        token,
        server=server,
        home=tmp_path,
    )
    assert rest.returncode == 0, rest
    assert [face["FaceId"] for face in rest.json["Faces"]] == five[2:]
    assert "NextToken" not in rest.json

    single = aws(
        *base, "--no-paginate", "--max-results", "2", server=server, home=tmp_path
    )
    assert single.returncode == 0, single
    assert [face["FaceId"] for face in single.json["Faces"]] == five[:2]
    assert single.json["NextToken"]


# Tags


def test_tag_untag_and_list_tags_on_the_arn_from_describe_collection(
    server, client, collection, tmp_path
):
    described = aws(
        "describe-collection",
        "--collection-id",
        collection,
        server=server,
        home=tmp_path,
    )
    arn = described.json["CollectionARN"]

    tagged = aws(
        "tag-resource",
        "--resource-arn",
        arn,
        "--tags",
        "team=vision,env=test",
        server=server,
        home=tmp_path,
    )
    assert succeeded_silently(tagged), tagged

    listed = aws(
        "list-tags-for-resource", "--resource-arn", arn, server=server, home=tmp_path
    )
    assert listed.returncode == 0, listed
    assert listed.json == {"Tags": {"team": "vision", "env": "test"}}

    untagged = aws(
        "untag-resource",
        "--resource-arn",
        arn,
        "--tag-keys",
        "env",
        server=server,
        home=tmp_path,
    )
    assert succeeded_silently(untagged), untagged
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "vision"}


# Unsigned requests


def test_unsigned_requests_are_accepted(server, client, collection, tmp_path):
    base = ("--no-sign-request", "--collection-id", collection)
    created = aws(
        "create-user", *base, "--user-id", "alice", server=server, home=tmp_path
    )
    assert succeeded_silently(created), created
    assert client.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "CREATED"}
    ]

    described = aws("describe-collection", *base, server=server, home=tmp_path)
    assert described.returncode == 0, described
    assert described.json["CollectionARN"] == (
        f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{collection}"
    )
    assert described.json["UserCount"] == 1


# The face story on real photos: index-faces, users, search-users-by-image


PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PHOTOS = PHOTOS / "face-recognition-examples"
STORY_PHOTOS = {
    "obama": "examples__knn_examples__train__obama__obama.jpg",
    "kit": "examples__knn_examples__train__kit_harington__john2.jpeg",
}
OBAMA_PROBE = "examples__obama-480p.jpg"


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}")
def test_index_associate_search_disassociate_story(
    server, client, collection, tmp_path
):
    base = ("--collection-id", collection)
    face_ids = {}
    for person, name in STORY_PHOTOS.items():
        indexed = aws(
            "index-faces", *base,
            "--image-bytes", f"fileb://{PHOTOS / name}",
            "--external-image-id", person,
            server=server, home=tmp_path,
        )  # fmt: skip
        assert indexed.returncode == 0, indexed
        [record] = indexed.json["FaceRecords"]
        assert record["Face"]["ExternalImageId"] == person
        face_ids[person] = record["Face"]["FaceId"]
        created = aws(
            "create-user", *base, "--user-id", person, server=server, home=tmp_path
        )
        assert succeeded_silently(created), created
        associated = aws(
            "associate-faces", *base, "--user-id", person,
            "--face-ids", face_ids[person],
            server=server, home=tmp_path,
        )  # fmt: skip
        assert associated.json["AssociatedFaces"] == [{"FaceId": face_ids[person]}]

    probe = ("--image-bytes", f"fileb://{PHOTOS / OBAMA_PROBE}")
    found = aws("search-users-by-image", *base, *probe, server=server, home=tmp_path)
    assert found.returncode == 0, found
    matches = found.json["UserMatches"]
    assert [m["User"]["UserId"] for m in matches] == ["obama"]
    assert matches[0]["Similarity"] >= 80

    who = aws(
        "search-users-by-image", *base, *probe,
        "--query", "UserMatches[0].User.UserId",
        server=server, home=tmp_path, output="text",
    )  # fmt: skip
    assert who.stdout.strip() == "obama"

    dropped = aws(
        "disassociate-faces", *base, "--user-id", "obama",
        "--face-ids", face_ids["obama"],
        server=server, home=tmp_path,
    )  # fmt: skip
    assert dropped.json["DisassociatedFaces"] == [{"FaceId": face_ids["obama"]}]

    gone = aws("search-users-by-image", *base, *probe, server=server, home=tmp_path)
    assert gone.returncode == 0, gone
    assert gone.json["UserMatches"] == []


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}")
def test_index_faces_of_a_file_that_is_not_an_image(server, collection, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    run = aws(
        "index-faces", "--collection-id", collection,
        "--image-bytes", f"fileb://{text}",
        server=server, home=tmp_path,
    )  # fmt: skip
    assert cli_error(run, "InvalidImageFormatException", "IndexFaces")
