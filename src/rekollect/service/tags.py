"""TagResource, UntagResource and ListTagsForResource, for collections.

A resource is named by its ARN, `arn:aws:rekognition:<region>:<account>:collection/<id>`.
An ARN of another account or region, or of a collection that does not exist, gives
ResourceNotFoundException; a string that is no Rekognition collection ARN gives
InvalidParameterException.
"""

from __future__ import annotations

from typing import Any

import regex
from sqlalchemy import Connection

from rekollect.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from rekollect.service.context import Service
from rekollect.storage import repository as repo
from rekollect.storage.records import Collection, Scope

MAX_TAGS = 200
_COLLECTION_ARN = regex.compile(
    r"arn:aws:rekognition:(?P<region>[^:]+):(?P<account>[0-9]{12}):collection/(?P<id>.+)"
)

Result = dict[str, Any]


def tag_resource(
    svc: Service, scope: Scope, *, resource_arn: str, tags: dict[str, str]
) -> Result:
    with svc.database.write() as conn:
        collection = _require_resource(conn, scope, resource_arn, lock=True)
        merged = repo.get_tags(conn, collection.pk) | tags
        if len(merged) > MAX_TAGS:
            raise ServiceQuotaExceededException(
                f"A resource can have at most {MAX_TAGS} tags; this request would "
                f"give it {len(merged)}."
            )
        repo.put_tags(conn, collection.pk, tags)
    return {}


def untag_resource(
    svc: Service, scope: Scope, *, resource_arn: str, tag_keys: list[str]
) -> Result:
    """Remove tags; keys the resource does not have are ignored."""
    with svc.database.write() as conn:
        collection = _require_resource(conn, scope, resource_arn, lock=True)
        repo.remove_tags(conn, collection.pk, tag_keys)
    return {}


def list_tags_for_resource(svc: Service, scope: Scope, *, resource_arn: str) -> Result:
    with svc.database.read() as conn:
        collection = _require_resource(conn, scope, resource_arn)
        return {"Tags": repo.get_tags(conn, collection.pk)}


def _require_resource(
    conn: Connection, scope: Scope, arn: str, *, lock: bool = False
) -> Collection:
    match = _COLLECTION_ARN.fullmatch(arn)
    if match is None:
        raise InvalidParameterException(
            f"The resource ARN {arn} is not a Rekognition collection ARN of the form "
            "arn:aws:rekognition:<region>:<account>:collection/<collection id>."
        )
    collection = None
    if (match["region"], match["account"]) == (scope.region, scope.account_id):
        collection = repo.get_collection(conn, scope, match["id"], lock=lock)
    if collection is None:
        raise ResourceNotFoundException(f"The resource {arn} does not exist.")
    return collection
