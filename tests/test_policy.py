"""Access-key policies: the supported subset of IAM (explicit Deny wins, no matching
Allow denies, wildcards in actions and collection ARNs), what is refused when a
policy is stored, and what boto3 sees from a real server when a policy denies a
call: `AccessDeniedException` in AWS's message form, and nothing changed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rekollect.errors import PolicyError
from rekollect.protocol import model
from rekollect.security.keystore import NewKey
from rekollect.security.policy import Decision, parse_policy
from tests.test_sigv4 import (
    ACCOUNT_A,
    REGION,
    Server,
    client_for,
    keyed_server,
    make_key,
)

ARN = f"arn:aws:rekognition:{REGION}:{ACCOUNT_A}:collection/"


def policy(*statements: dict[str, Any]) -> Any:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return parse_policy(json.dumps(document), model.operation_names())


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


# Evaluation


def test_an_explicit_deny_wins_over_any_allow():
    both = policy(
        allow("rekognition:*"), deny("rekognition:DeleteCollection", ARN + "*")
    )
    assert (
        both.decide("rekognition:DeleteCollection", ARN + "a") is Decision.EXPLICIT_DENY
    )
    assert both.decide("rekognition:DescribeCollection", ARN + "a") is Decision.ALLOW


def test_without_a_matching_allow_the_call_is_denied():
    search_only = policy(allow("rekognition:SearchFaces", ARN + "a"))
    assert search_only.decide("rekognition:SearchFaces", ARN + "a") is Decision.ALLOW
    assert (
        search_only.decide("rekognition:SearchFaces", ARN + "b")
        is Decision.IMPLICIT_DENY
    )
    assert (
        search_only.decide("rekognition:ListFaces", ARN + "a") is Decision.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("rekognition:*", "rekognition:DisassociateFaces", True),
        ("*", "rekognition:DisassociateFaces", True),
        ("rekognition:Search*", "rekognition:SearchUsersByImage", True),
        ("rekognition:Search*", "rekognition:ListFaces", False),
        ("rekognition:searchfaces", "rekognition:SearchFaces", True),
        ("rekognition:?istFaces", "rekognition:ListFaces", True),
        ("rekognition:*Faces", "rekognition:SearchFacesByImage", False),
        ("s3:GetObject", "rekognition:ListFaces", False),
    ],
)
def test_action_patterns(pattern, action, allowed):
    verdict = policy(allow(pattern)).decide(action, ARN + "a")
    assert (verdict is Decision.ALLOW) is allowed


@pytest.mark.parametrize(
    ("pattern", "resource", "allowed"),
    [
        (ARN + "team-*", ARN + "team-a", True),
        (ARN + "team-*", ARN + "teams", False),
        (ARN + "team-*", ARN.replace(ACCOUNT_A, "222222222222") + "team-a", False),
        ("arn:aws:rekognition:*:*:collection/team-?", ARN + "team-b", True),
        ("arn:aws:rekognition:*:*:collection/team-?", ARN + "team-bb", False),
        (ARN + "Team-*", ARN + "team-a", False),
        ("*", ARN + "anything", True),
        ("*", "*", True),
        (ARN + "*", "*", False),
    ],
)
def test_resource_patterns(pattern, resource, allowed):
    verdict = policy(allow("rekognition:*", pattern)).decide("rekognition:X", resource)
    assert (verdict is Decision.ALLOW) is allowed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"Version": "2008-10-17", "Statement": []}', "Version"),
        ('{"Statement": []}', "non-empty"),
        (
            '{"Statement": {"Effect": "Permit", "Action": "*", "Resource": "*"}}',
            "Effect",
        ),
        ('{"Statement": {"Effect": "Allow", "Resource": "*"}}', "Action must"),
        ('{"Statement": {"Effect": "Allow", "Action": "*"}}', "Resource must"),
        ('{"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}', "Action"),
        (
            '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", '
            '"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}',
            "does not support Condition",
        ),
        (
            '{"Statement": {"Effect": "Allow", "NotAction": "rekognition:Delete*", '
            '"Resource": "*"}}',
            "does not support NotAction",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "rekognition:DisassociateFace", '
            '"Resource": "*"}}',
            "matches no Rekognition operation",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "ListFaces", "Resource": "*"}}',
            "service:Name",
        ),
    ],
)
def test_what_the_subset_does_not_cover_is_refused(document, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(document, model.operation_names())


def test_a_single_statement_object_and_other_services_actions_are_accepted():
    document = {
        "Statement": {
            "Sid": "ReadTeam",
            "Effect": "Allow",
            "Action": ["rekognition:List*", "s3:GetObject"],
            "Resource": ARN + "team-*",
        }
    }
    parsed = parse_policy(json.dumps(document), model.operation_names())
    assert parsed.decide("rekognition:ListUsers", ARN + "team-1") is Decision.ALLOW


# What boto3 sees from a real server


READER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        allow(
            [
                "rekognition:Search*",
                "rekognition:List*",
                "rekognition:DescribeCollection",
            ],
            ARN + "team-*",
        ),
        allow("rekognition:ListCollections"),
    ],
}
NO_DELETE_POLICY = {
    "Statement": [allow("rekognition:*"), deny(["rekognition:Delete*"], ARN + "*")]
}


@dataclass(frozen=True)
class Policed:
    server: Server
    keys: dict[str, NewKey]
    data_dir: Path
    master_key_file: Path


@pytest.fixture(scope="module")
def policed(tmp_path_factory) -> Iterator[Policed]:
    data_dir = tmp_path_factory.mktemp("policed")
    master = tmp_path_factory.mktemp("config") / "master.key"
    keys = {
        "admin": make_key(data_dir, master, user_name="admin"),
        "reader": make_key(data_dir, master, user_name="reader", policy=READER_POLICY),
        "keeper": make_key(
            data_dir, master, user_name="keeper", policy=NO_DELETE_POLICY
        ),
    }
    with keyed_server(data_dir, master) as server:
        admin = client_for(server.url, keys["admin"])
        for name in ("team-a", "other-a"):
            admin.create_collection(CollectionId=name)
            admin.create_user(CollectionId=name, UserId="u1")
        yield Policed(server, keys, data_dir, master)


@pytest.fixture
def clients(policed) -> dict[str, Any]:
    return {
        name: client_for(policed.server.url, key) for name, key in policed.keys.items()
    }


def denied_message(client: Any, call: str, **params: Any) -> str:
    with pytest.raises(client.exceptions.AccessDeniedException) as raised:
        getattr(client, call)(**params)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message: str = raised.value.response["Error"]["Message"]
    return message


def test_a_policy_allows_what_it_names_on_the_collections_it_names(clients):
    reader = clients["reader"]
    assert reader.describe_collection(CollectionId="team-a")["UserCount"] == 1
    assert [u["UserId"] for u in reader.list_users(CollectionId="team-a")["Users"]] == [
        "u1"
    ]
    assert set(reader.list_collections()["CollectionIds"]) >= {"team-a", "other-a"}
    # Allowed, so the call reaches the collection (which has no such user).
    with pytest.raises(reader.exceptions.ResourceNotFoundException):
        reader.search_users(CollectionId="team-a", UserId="nobody")


def test_a_call_no_statement_allows_is_access_denied_in_aws_form(clients):
    reader = clients["reader"]
    message = denied_message(
        reader,
        "disassociate_faces",
        CollectionId="team-a",
        UserId="u1",
        FaceIds=["11111111-1111-1111-1111-111111111111"],
    )
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT_A}:user/reader is not authorized to perform: "
        f"rekognition:DisassociateFaces on resource: {ARN}team-a because no "
        "identity-based policy allows the rekognition:DisassociateFaces action"
    )
    message = denied_message(reader, "describe_collection", CollectionId="other-a")
    assert f"on resource: {ARN}other-a because" in message


def test_an_explicit_deny_refuses_and_changes_nothing(clients):
    keeper, admin = clients["keeper"], clients["admin"]
    name = f"kept-{time.monotonic_ns()}"
    keeper.create_collection(CollectionId=name)
    message = denied_message(keeper, "delete_collection", CollectionId=name)
    assert message.endswith("with an explicit deny in an identity-based policy")
    assert name in admin.list_collections(MaxResults=4096)["CollectionIds"]
    admin.delete_collection(CollectionId=name)


def test_tag_operations_are_authorized_on_their_resource_arn(clients):
    reader, admin = clients["reader"], clients["admin"]
    admin.tag_resource(ResourceArn=ARN + "team-a", Tags={"k": "v"})
    assert reader.list_tags_for_resource(ResourceArn=ARN + "team-a")["Tags"] == {
        "k": "v"
    }
    message = denied_message(
        reader, "tag_resource", ResourceArn=ARN + "team-a", Tags={"x": "y"}
    )
    assert f"rekognition:TagResource on resource: {ARN}team-a" in message
    denied_message(reader, "list_tags_for_resource", ResourceArn=ARN + "other-a")


def test_operations_on_no_collection_are_authorized_on_star(policed):
    limited = make_key(
        policed.data_dir,
        policed.master_key_file,
        user_name="collections-only",
        policy={"Statement": [allow("rekognition:ListCollections", ARN + "*")]},
    )
    client = client_for(policed.server.url, limited)
    deadline = time.monotonic() + 10
    while True:  # the server reads new keys within seconds
        try:
            client.list_collections()
        except client.exceptions.AccessDeniedException as denied:
            message = denied.response["Error"]["Message"]
            break
        except ClientError:
            assert time.monotonic() < deadline, "the new key was never accepted"
            time.sleep(0.2)
        else:
            pytest.fail("ListCollections was allowed by a statement on collection ARNs")
    assert "rekognition:ListCollections on resource: * because" in message


def test_denials_are_logged_as_warnings(policed, clients):
    denied_message(clients["reader"], "delete_user", CollectionId="team-a", UserId="u1")
    time.sleep(0.2)
    lines = [
        line
        for line in policed.server.log.read_text().splitlines()
        if "Denied rekognition:DeleteUser" in line
    ]
    assert lines and " WARNING " in lines[-1]
    assert policed.keys["reader"].key.access_key_id in lines[-1]
