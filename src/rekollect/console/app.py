"""The console's Starlette app: routes, sign-in, security headers, error pages.

`create_console` builds it on the service and access control of the API server it
is mounted in (`rekollect.server.app` mounts it at `/console`).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rekollect.console import actions, pages
from rekollect.console.session import Sessions, SignInError
from rekollect.console.web import (
    STATIC,
    Console,
    FormRefused,
    console_of,
    posted_form,
    redirect,
    render,
    session_of,
    static_version,
    templates,
    text,
)
from rekollect.console.web import (
    Message as Note,
)
from rekollect.security.access import AccessControl
from rekollect.security.limits import JobSlots
from rekollect.service import Service

logger = logging.getLogger(__name__)

# Pages use only their own scripts, styles and images; nothing may frame them.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; "
        b"img-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def create_console(
    service: Service,
    access: AccessControl | None = None,
    image_slots: JobSlots | None = None,
) -> ASGIApp:
    console = Console(
        service=service,
        access=access,
        sessions=Sessions(service, access),
        image_slots=image_slots,
        templates=templates(),
        static_version=static_version(),
    )
    collection = "/c/{collection_id}"
    app = Starlette(
        routes=[
            Route("/", pages.collections_page),
            Route("/sign-in", pages.sign_in_page),
            Route("/sign-in", sign_in, methods=["POST"]),
            Route("/sign-out", sign_out, methods=["POST"]),
            Route("/collections", actions.create_collection, methods=["POST"]),
            Route(collection, pages.collection_page),
            Route(f"{collection}/delete", actions.delete_collection, methods=["POST"]),
            Route(f"{collection}/users", actions.create_user, methods=["POST"]),
            Route(f"{collection}/users/delete", actions.delete_user, methods=["POST"]),
            Route(f"{collection}/associate", actions.associate_faces, methods=["POST"]),
            Route(
                f"{collection}/disassociate",
                actions.disassociate_faces,
                methods=["POST"],
            ),
            Route(f"{collection}/faces/delete", actions.delete_faces, methods=["POST"]),
            Route(f"{collection}/faces/{{face_id}}.jpg", pages.thumbnail),
            Route(f"{collection}/index", actions.index_faces, methods=["POST"]),
            Route(f"{collection}/search", actions.search_faces, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.console = console
    return SecurityHeaders(app)


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    try:
        form = await posted_form(request)
    except FormRefused as refused:
        return render(request, "error.html", status=refused.status, error=refused.text)
    key_id = text(form, "access_key_id")
    region = text(form, "region")
    try:
        session = console.sessions.sign_in(
            key_id, text(form, "secret"), text(form, "session_token"), region
        )
    except SignInError as error:
        client = request.client.host if request.client else "-"
        logger.warning(
            "Console sign-in refused for key %r from %s", key_id[:32], client
        )
        return render(
            request,
            "sign_in.html",
            status=401,
            error=str(error),
            key_id=key_id,
            region=region or console.service.default_region,
        )
    return redirect(request, "/", session=session)


async def sign_out(request: Request) -> Response:
    try:
        await posted_form(request)
    except FormRefused as refused:
        return render(request, "error.html", status=refused.status, error=refused.text)
    session = console_of(request).sessions.anonymous(session_of(request).scope.region)
    return redirect(request, "/sign-in", [Note("ok", "Signed out.")], session=session)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    said = "There is no such page." if exc.status_code == 404 else exc.detail
    return render(request, "error.html", status=exc.status_code, error=said)


class SecurityHeaders:
    """Adds the console's security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)
