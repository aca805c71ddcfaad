"""The console's actions (POST): each is one or more API operations run for the
signed-in key (`calls.call`), then a redirect to the page it came from with what
happened, in words. Searching by photo answers with its results instead."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from rekollect.console.calls import call, in_words
from rekollect.console.pages import to_sign_in
from rekollect.console.session import Session
from rekollect.console.web import (
    Console,
    FormRefused,
    Message,
    console_of,
    in_thread,
    posted_form,
    redirect,
    render,
    session_of,
    text,
    texts,
)
from rekollect.errors import DatabaseError, ServiceError

# What AssociateFaces and DisassociateFaces take at once.
FACES_PER_CALL = 100
DEFAULT_THRESHOLD = 80.0
_RETURN_PARAMS = ("show", "user", "external", "after", "before", "users_after")
_NOT_EXTERNAL_ID = re.compile(r"[^a-zA-Z0-9_.\-:]+")


@dataclass(frozen=True)
class Posted:
    """A checked form, and the photos uploaded with it (file name, bytes)."""

    form: FormData
    photos: list[tuple[str, bytes]] = field(default_factory=list)


Outcome = tuple[str, list[Message]]
Action = Callable[[Console, Session, Posted], Outcome]


async def create_collection(request: Request) -> Response:
    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        collection_id = text(form, "collection_id")
        _call(console, session, "CreateCollection", {"CollectionId": collection_id})
        return f"/c/{collection_id}", [_ok(f"Collection {collection_id} created.")]

    return await _respond(request, act, back="/")


async def delete_collection(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        _call(console, session, "DeleteCollection", {"CollectionId": collection_id})
        return "/", [_ok(f"Collection {collection_id} deleted, with all its faces.")]

    return await _respond(request, act, back=f"/c/{collection_id}")


async def create_user(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        user_id = text(form, "user_id")
        params = {"CollectionId": collection_id, "UserId": user_id}
        _call(console, session, "CreateUser", params)
        return _back(collection_id, form), [_ok(f"User {user_id} created.")]

    return await _respond(request, act, back=f"/c/{collection_id}")


async def delete_user(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        user_id = text(form, "delete_user")
        params = {"CollectionId": collection_id, "UserId": user_id}
        _call(console, session, "DeleteUser", params)
        said = f"User {user_id} deleted; its faces stay in the collection."
        return _back(collection_id, form), [_ok(said)]

    return await _respond(request, act, back=f"/c/{collection_id}")


async def associate_faces(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        face_ids = _selected(form)
        user_id = text(form, "to_user") or text(form, "user_id")
        associated: list[str] = []
        messages: list[Message] = []
        for chunk in _chunks(face_ids, FACES_PER_CALL):
            params = {"CollectionId": collection_id, "UserId": user_id}
            answer = _call(
                console, session, "AssociateFaces", params | {"FaceIds": chunk}
            )
            associated += [f["FaceId"] for f in answer["AssociatedFaces"]]
            messages += _unsuccessful(answer["UnsuccessfulFaceAssociations"])
        said = f"Associated {_faces(len(associated))} with user {user_id}."
        return _back(collection_id, form), [_ok(said), *messages]

    return await _respond(request, act, back=f"/c/{collection_id}")


async def disassociate_faces(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        owners: dict[str, list[str]] = {}
        for face in _faces_of(console, session, collection_id, _selected(form)):
            if face.get("UserId"):
                owners.setdefault(face["UserId"], []).append(face["FaceId"])
        messages = []
        for user_id, face_ids in owners.items():
            for chunk in _chunks(face_ids, FACES_PER_CALL):
                params = {"CollectionId": collection_id, "UserId": user_id}
                answer = _call(
                    console, session, "DisassociateFaces", params | {"FaceIds": chunk}
                )
                count = len(answer["DisassociatedFaces"])
                messages.append(_ok(f"Disassociated {_faces(count)} from {user_id}."))
                messages += _unsuccessful(answer["UnsuccessfulFaceDisassociations"])
        if not owners:
            messages.append(Message("error", "None of the selected faces has a user."))
        return _back(collection_id, form), messages

    return await _respond(request, act, back=f"/c/{collection_id}")


async def delete_faces(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        params = {"CollectionId": collection_id, "FaceIds": _selected(form)}
        answer = _call(console, session, "DeleteFaces", params)
        said = f"Deleted {_faces(len(answer['DeletedFaces']))}."
        messages = _unsuccessful(answer["UnsuccessfulFaceDeletions"])
        return _back(collection_id, form), [_ok(said), *messages]

    return await _respond(request, act, back=f"/c/{collection_id}")


async def index_faces(request: Request) -> Response:
    collection_id = request.path_params["collection_id"]

    def act(console: Console, session: Session, posted: Posted) -> Outcome:
        form = posted.form
        if not posted.photos:
            return _back(collection_id, form), [
                Message("error", "Choose or drop at least one photo to index.")
            ]
        given_id = text(form, "external_image_id")
        messages = []
        for name, data in posted.photos:
            external_id = given_id or _external_id(name)
            params: dict[str, Any] = {
                "CollectionId": collection_id,
                "Image": _image(data),
            }
            if external_id:
                params["ExternalImageId"] = external_id
            try:
                answer = _call(console, session, "IndexFaces", params)
            except (ServiceError, DatabaseError) as error:
                messages.append(Message("error", f"{name}: {in_words(error)}"))
                continue
            messages.append(_indexed(name, answer))
        return _back(collection_id, form), messages

    return await _respond(request, act, back=f"/c/{collection_id}", uploads=True)


async def search_faces(request: Request) -> Response:
    """Search the collection for the largest face of a photo: users, then faces."""
    collection_id = request.path_params["collection_id"]
    session = session_of(request)
    if not session.signed_in:
        return to_sign_in(request)
    try:
        posted = await _uploaded(request)
    except FormRefused as refused:
        return render(request, "error.html", status=refused.status, error=refused.text)
    console = console_of(request)
    name, photo = posted.photos[0] if posted.photos else ("", b"")
    threshold = _threshold(text(posted.form, "threshold"))
    base = {"CollectionId": collection_id, "Image": _image(photo)}

    def search(operation: str, threshold_name: str) -> dict[str, Any]:
        params = base | {threshold_name: threshold}
        try:
            return {"answer": _call(console, session, operation, params), "error": None}
        except (ServiceError, DatabaseError) as error:
            return {"answer": None, "error": in_words(error)}

    users = await in_thread(lambda: search("SearchUsersByImage", "UserMatchThreshold"))
    faces = await in_thread(lambda: search("SearchFacesByImage", "FaceMatchThreshold"))
    status = 200 if users["error"] is None or faces["error"] is None else 400
    return render(
        request,
        "search.html",
        status=status,
        collection_id=collection_id,
        photo_name=name,
        threshold=threshold,
        users=users,
        faces=faces,
    )


async def _respond(
    request: Request, act: Action, *, back: str, uploads: bool = False
) -> Response:
    session = session_of(request)
    if not session.signed_in:
        return to_sign_in(request)
    try:
        if uploads:
            posted = await _uploaded(request)
        else:
            posted = Posted(await posted_form(request))
    except FormRefused as refused:
        return render(request, "error.html", status=refused.status, error=refused.text)
    console = console_of(request)
    try:
        path, messages = await in_thread(lambda: act(console, session, posted))
    except Exception as error:
        return redirect(request, back, [Message("error", in_words(error))])
    return redirect(request, path, messages)


async def _uploaded(request: Request) -> Posted:
    """The form, with its uploaded photos read."""
    form = await posted_form(request, uploads=True)
    photos = []
    for upload in form.getlist("photo"):
        if isinstance(upload, UploadFile) and upload.filename:
            photos.append((upload.filename, await upload.read()))
    await form.close()
    return Posted(form, photos)


def _call(
    console: Console, session: Session, operation: str, params: dict[str, Any]
) -> dict[str, Any]:
    return call(console.service, session, operation, params, console.image_slots)


def _faces_of(
    console: Console, session: Session, collection_id: str, face_ids: list[str]
) -> list[dict[str, Any]]:
    if not face_ids:
        return []
    params = {"CollectionId": collection_id, "FaceIds": face_ids}
    faces: list[dict[str, Any]] = _call(console, session, "ListFaces", params)["Faces"]
    return faces


def _image(data: bytes) -> dict[str, str]:
    """The `Image` member of a request, as it travels on the wire (base64)."""
    return {"Bytes": base64.b64encode(data).decode()}


def _selected(form: FormData) -> list[str]:
    return list(dict.fromkeys(texts(form, "face_id")))


def _back(collection_id: str, form: FormData) -> str:
    """The collection's page as it was shown (its filters and page), from the form."""
    pairs = parse_qsl(text(form, "return").lstrip("?"))
    kept = [(name, value) for name, value in pairs if name in _RETURN_PARAMS]
    return f"/c/{collection_id}" + ("?" + urlencode(kept) if kept else "")


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _unsuccessful(entries: list[dict[str, Any]]) -> list[Message]:
    """One line per face an operation left alone, with the API's reasons."""
    lines = []
    for entry in entries:
        owner = f" (user {entry['UserId']})" if entry.get("UserId") else ""
        reasons = ", ".join(entry.get("Reasons", []))
        lines.append(f"face {entry['FaceId'][:8]}{owner}: {reasons}")
    if not lines:
        return []
    return [Message("error", "Not changed: " + "; ".join(lines))]


def _indexed(name: str, answer: dict[str, Any]) -> Message:
    stored = len(answer["FaceRecords"])
    skipped = answer["UnindexedFaces"]
    said = f"{name}: indexed {_faces(stored)}"
    if skipped:
        reasons = sorted({r for face in skipped for r in face["Reasons"]})
        said += f"; {_faces(len(skipped))} not indexed ({', '.join(reasons)})"
    return Message("ok" if stored else "error", said + ".")


def _external_id(file_name: str) -> str:
    """A file's name as an ExternalImageId (whose characters are restricted)."""
    return _NOT_EXTERNAL_ID.sub("_", file_name).strip("_")[:255]


def _threshold(given: str) -> float:
    try:
        value = float(given)
    except ValueError:
        return DEFAULT_THRESHOLD
    return min(max(value, 0.0), 100.0)


def _faces(count: int) -> str:
    return f"{count} face" if count == 1 else f"{count} faces"


def _ok(said: str) -> Message:
    return Message("ok", said)
