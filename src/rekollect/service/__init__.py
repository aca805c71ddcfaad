"""The operations rekollect implements, by their wire names.

Each is a plain function `(service, scope, **members)` whose keyword arguments are
the request members in botocore's snake_case and whose result uses the wire member
names of the output shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rekollect.service import (
    associations,
    collection,
    detection,
    faces,
    indexing,
    search,
    tags,
    users,
)
from rekollect.service.context import Service

Operation = Callable[..., dict[str, Any]]

OPERATIONS: dict[str, Operation] = {
    "CreateCollection": collection.create_collection,
    "DeleteCollection": collection.delete_collection,
    "DescribeCollection": collection.describe_collection,
    "ListCollections": collection.list_collections,
    "CreateUser": users.create_user,
    "DeleteUser": users.delete_user,
    "ListUsers": users.list_users,
    "AssociateFaces": associations.associate_faces,
    "DisassociateFaces": associations.disassociate_faces,
    "ListFaces": faces.list_faces,
    "DeleteFaces": faces.delete_faces,
    "IndexFaces": indexing.index_faces,
    "DetectFaces": detection.detect_faces,
    "CompareFaces": detection.compare_faces,
    "SearchFaces": search.search_faces,
    "SearchFacesByImage": search.search_faces_by_image,
    "SearchUsers": search.search_users,
    "SearchUsersByImage": search.search_users_by_image,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "ListTagsForResource": tags.list_tags_for_resource,
}

__all__ = ["OPERATIONS", "Operation", "Service"]
