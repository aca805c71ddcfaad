"""The console's pages (GET): sign-in, the collections, one collection's users and
faces, and face thumbnails. Each is authorized as the API operation it amounts to."""

from __future__ import annotations

import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from rekollect.console.calls import arn_of, authorize, call, in_words
from rekollect.console.session import Session
from rekollect.console.web import console_of, in_thread, redirect, render, session_of
from rekollect.errors import (
    AccessDeniedException,
    DatabaseError,
    ResourceNotFoundException,
    ServiceError,
)
from rekollect.service import browse
from rekollect.service.browse import FaceFilter

COLLECTIONS_PER_PAGE = 50
# Face ids are never reused and a crop never changes: browsers may keep it.
THUMBNAIL_CACHE = "private, max-age=604800, immutable"


def to_sign_in(request: Request) -> RedirectResponse:
    return redirect(request, "/sign-in")


async def sign_in_page(request: Request) -> Response:
    session = session_of(request)
    if session.signed_in and session.key is None:
        return redirect(request, "/")
    region = console_of(request).service.default_region
    return render(request, "sign_in.html", error=None, key_id="", region=region)


async def collections_page(request: Request) -> Response:
    session = session_of(request)
    if not session.signed_in:
        return to_sign_in(request)
    console = console_of(request)
    params: dict[str, Any] = {"MaxResults": COLLECTIONS_PER_PAGE}
    token = request.query_params.get("page")
    if token:
        params["NextToken"] = token
    try:
        listing = await in_thread(
            lambda: call(console.service, session, "ListCollections", params)
        )
        rows = await in_thread(
            lambda: [_summary(request, session, c) for c in listing["CollectionIds"]]
        )
    except (ServiceError, DatabaseError) as error:
        return render(
            request, "error.html", status=status_of(error), error=in_words(error)
        )
    return render(
        request,
        "collections.html",
        collections=rows,
        next_token=listing.get("NextToken"),
        paged=bool(token),
    )


async def collection_page(request: Request) -> Response:
    session = session_of(request)
    if not session.signed_in:
        return to_sign_in(request)
    collection_id = request.path_params["collection_id"]
    query = request.query_params
    show = query.get("show", "none")
    user_id = query.get("user", "").strip()
    face_filter = FaceFilter(
        user_id=user_id if show == "user" else "",
        unassigned=show not in ("all", "user"),
        external_prefix=query.get("external", "").strip(),
    )
    console = console_of(request)

    def read() -> dict[str, Any]:
        svc = console.service
        arn = arn_of(session, collection_id)
        described = call(
            svc, session, "DescribeCollection", {"CollectionId": collection_id}
        )
        authorize(session, "ListUsers", arn)
        users = browse.browse_users(
            svc,
            session.scope,
            collection_id,
            prefix=user_id,
            after=query.get("users_after"),
        )
        authorize(session, "ListFaces", arn)
        faces = browse.browse_faces(
            svc,
            session.scope,
            collection_id,
            face_filter,
            after=query.get("after"),
            before=query.get("before"),
        )
        return {"described": described, "users": users, "faces": faces}

    try:
        found = await in_thread(read)
    except (ServiceError, DatabaseError) as error:
        return render(
            request, "error.html", status=status_of(error), error=in_words(error)
        )
    return render(
        request,
        "collection.html",
        collection_id=collection_id,
        created=_when(found["described"]["CreationTimestamp"]),
        show=show,
        user_id=user_id,
        external=face_filter.external_prefix,
        users_after=query.get("users_after"),
        **found,
    )


async def thumbnail(request: Request) -> Response:
    session = session_of(request)
    collection_id = request.path_params["collection_id"]
    face_id = request.path_params["face_id"]
    console = console_of(request)

    def read() -> bytes | None:
        authorize(session, "ListFaces", arn_of(session, collection_id))
        return browse.face_thumbnail(
            console.service, session.scope, collection_id, face_id
        )

    try:
        jpeg = await in_thread(read)
    except (ServiceError, DatabaseError) as error:
        return Response(in_words(error), status_of(error), media_type="text/plain")
    if jpeg is None:
        return Response("No thumbnail of this face.", 404, media_type="text/plain")
    return Response(
        jpeg, media_type="image/jpeg", headers={"cache-control": THUMBNAIL_CACHE}
    )


def _summary(request: Request, session: Session, collection_id: str) -> dict[str, Any]:
    """A collections-page row: the collection's description, or why it is missing."""
    svc = console_of(request).service
    try:
        described = call(
            svc, session, "DescribeCollection", {"CollectionId": collection_id}
        )
    except ServiceError as error:
        return {"id": collection_id, "error": in_words(error)}
    return {
        "id": collection_id,
        "faces": described["FaceCount"],
        "users": described["UserCount"],
        "model": described["FaceModelVersion"],
        "created": _when(described["CreationTimestamp"]),
        "error": None,
    }


def _when(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def status_of(error: Exception) -> int:
    if isinstance(error, AccessDeniedException):
        return 403
    if isinstance(error, ResourceNotFoundException):
        return 404
    return error.status_code if isinstance(error, ServiceError) else 503
