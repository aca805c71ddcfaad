"""CreateCollection, DescribeCollection, ListCollections and DeleteCollection, through
real boto3 clients over HTTP and in-process."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

import rekollect
from tests.conftest import ACCOUNT, REGION, http_client


def test_create_collection_returns_arn_without_arn_prefix_like_aws(rekognition):
    name = f"c-{uuid.uuid4().hex[:12]}"
    response = rekognition.create_collection(CollectionId=name)
    assert response["StatusCode"] == 200
    assert (
        response["CollectionArn"]
        == f"aws:rekognition:{REGION}:{ACCOUNT}:collection/{name}"
    )
    assert response["FaceModelVersion"] == "1.0"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    rekognition.delete_collection(CollectionId=name)


def test_create_collection_twice_is_resource_already_exists(rekognition, collection_id):
    with pytest.raises(rekognition.exceptions.ResourceAlreadyExistsException) as error:
        rekognition.create_collection(CollectionId=collection_id)
    assert error.value.response["Error"]["Message"] == (
        f"The collection id: {collection_id} already exists."
    )
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_collection_ids_are_case_sensitive(rekognition, collection_id):
    other = collection_id.upper()
    rekognition.create_collection(CollectionId=other)
    try:
        ids = rekognition.list_collections(MaxResults=4096)["CollectionIds"]
        assert collection_id in ids and other in ids
    finally:
        rekognition.delete_collection(CollectionId=other)


def test_describe_collection_counts_faces_and_users(
    rekognition, collection_id, make_faces
):
    make_faces(collection_id, 3)
    rekognition.create_user(CollectionId=collection_id, UserId="alice")
    described = rekognition.describe_collection(CollectionId=collection_id)
    assert described["FaceCount"] == 3
    assert described["UserCount"] == 1
    assert described["FaceModelVersion"] == "1.0"
    assert described["CollectionARN"] == (
        f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{collection_id}"
    )
    created = described["CreationTimestamp"]
    assert isinstance(created, dt.datetime)
    age = dt.datetime.now(dt.UTC) - created.astimezone(dt.UTC)
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=5)


def test_describe_missing_collection_is_resource_not_found(rekognition):
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.describe_collection(CollectionId="no-such-collection")


def test_delete_collection_removes_faces_and_users(rekognition, make_faces):
    name = f"c-{uuid.uuid4().hex[:12]}"
    rekognition.create_collection(CollectionId=name)
    make_faces(name, 2)
    rekognition.create_user(CollectionId=name, UserId="bob")
    assert rekognition.delete_collection(CollectionId=name)["StatusCode"] == 200

    rekognition.create_collection(CollectionId=name)
    described = rekognition.describe_collection(CollectionId=name)
    assert (described["FaceCount"], described["UserCount"]) == (0, 0)
    rekognition.delete_collection(CollectionId=name)
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.delete_collection(CollectionId=name)


def test_list_collections_paginates_to_the_end(rekognition):
    prefix = f"p-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i}" for i in range(7)]
    for name in names:
        rekognition.create_collection(CollectionId=name)
    try:
        pages = rekognition.get_paginator("list_collections").paginate(
            PaginationConfig={"PageSize": 2}
        )
        seen, versions, page_count = [], [], 0
        for page in pages:
            page_count += 1
            assert len(page["CollectionIds"]) == len(page["FaceModelVersions"]) <= 2
            seen += page["CollectionIds"]
            versions += page["FaceModelVersions"]
        assert [n for n in seen if n.startswith(prefix)] == names
        assert len(seen) == len(set(seen))
        assert page_count >= 4
        assert set(versions) == {"1.0"}
    finally:
        for name in names:
            rekognition.delete_collection(CollectionId=name)


def test_collections_are_namespaced_per_region(
    transport, server, data_dir, collection_id
):
    if transport == "http":
        other = http_client(server, region_name="eu-west-1")
    else:
        other = rekollect.client(data_dir, region_name="eu-west-1")
    assert collection_id not in other.list_collections()["CollectionIds"]
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.describe_collection(CollectionId=collection_id)
    other.create_collection(CollectionId=collection_id)
    arn = other.describe_collection(CollectionId=collection_id)["CollectionARN"]
    assert arn.startswith("arn:aws:rekognition:eu-west-1:")
    other.delete_collection(CollectionId=collection_id)
