"""Tags on collections: CreateCollection's Tags, TagResource, UntagResource,
ListTagsForResource."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import ACCOUNT, REGION


def _arn(collection_id: str) -> str:
    return f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{collection_id}"


def test_tags_given_at_creation_are_listed(rekognition):
    name = f"c-{uuid.uuid4().hex[:12]}"
    rekognition.create_collection(
        CollectionId=name, Tags={"team": "vision", "env": "dev"}
    )
    try:
        tags = rekognition.list_tags_for_resource(ResourceArn=_arn(name))["Tags"]
        assert tags == {"team": "vision", "env": "dev"}
    finally:
        rekognition.delete_collection(CollectionId=name)


def test_tag_resource_adds_and_replaces_and_untag_removes(rekognition, collection_id):
    arn = rekognition.describe_collection(CollectionId=collection_id)["CollectionARN"]
    rekognition.tag_resource(ResourceArn=arn, Tags={"a": "1", "b": "2"})
    rekognition.tag_resource(ResourceArn=arn, Tags={"b": "3", "c": ""})
    assert rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "a": "1",
        "b": "3",
        "c": "",
    }
    rekognition.untag_resource(ResourceArn=arn, TagKeys=["a", "not-there"])
    assert rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "b": "3",
        "c": "",
    }


def test_more_than_200_tags_in_total_is_service_quota_exceeded(
    rekognition, collection_id
):
    arn = _arn(collection_id)
    rekognition.tag_resource(ResourceArn=arn, Tags={f"k{i}": "v" for i in range(150)})
    with pytest.raises(rekognition.exceptions.ServiceQuotaExceededException):
        rekognition.tag_resource(
            ResourceArn=arn, Tags={f"n{i}": "v" for i in range(51)}
        )
    assert len(rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 150


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param(_arn("no-such-collection"), id="missing-collection"),
        pytest.param(
            f"arn:aws:rekognition:eu-north-1:{ACCOUNT}:collection/x", id="other-region"
        ),
        pytest.param(
            f"arn:aws:rekognition:{REGION}:123456789012:collection/x",
            id="other-account",
        ),
    ],
)
def test_tagging_an_unknown_resource_is_resource_not_found(rekognition, arn):
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.list_tags_for_resource(ResourceArn=arn)
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.tag_resource(ResourceArn=arn, Tags={"a": "b"})


def test_a_string_that_is_no_collection_arn_is_invalid_parameter(rekognition):
    with pytest.raises(rekognition.exceptions.InvalidParameterException):
        rekognition.list_tags_for_resource(ResourceArn="arn:aws:s3:::some-bucket-name")
