"""The ASGI application that serves the Rekognition API on `POST /`.

`POST /` is answered by a small ASGI handler of its own: it reads the body in chunks,
refuses it as soon as it passes the largest legal request for its operation (so an
oversized upload never sits in memory whole), and runs the service call in a worker
thread; the event loop only moves bytes. Every other path goes to a Starlette app,
which answers in the same AWS error format.
"""

from __future__ import annotations

import logging
import os

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rekollect.errors import UnknownOperationException
from rekollect.server.wire import WireHandler, WireResponse
from rekollect.service import Service


def create_app(service: Service) -> ASGIApp:
    handler = WireHandler(service)
    return RekognitionApp(handler, _elsewhere_app(handler))


def create_app_from_environment() -> ASGIApp:
    """The app of one `serve --workers N` process, from `REKOLLECT_*` variables."""
    from rekollect.config import load_settings

    configure_logging(os.environ.get("REKOLLECT_LOG_LEVEL", "info"))
    settings = load_settings()
    return create_app(settings.open_service(engine_workers=1, migrate=False))


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


class RekognitionApp:
    """`POST /` to the wire handler; anything else to `fallback`."""

    def __init__(self, handler: WireHandler, fallback: ASGIApp) -> None:
        self.handler = handler
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/":
            await self.fallback(scope, receive, send)
            return
        if scope["method"] != "POST":
            answer = self.handler.error(_not_an_operation(scope["method"], "/"))
            answer = WireResponse(405, answer.headers | {"allow": "POST"}, answer.body)
        else:
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
            answer = await self._answer(headers, receive)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in answer.headers.items()
                ]
                + [(b"content-length", str(len(answer.body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, headers: dict[str, str], receive: Receive) -> WireResponse:
        target = headers.get("x-amz-target")
        limit = self.handler.body_limit(target)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _closing(self.handler.too_large(target, int(declared)))

        body = bytearray()
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                return self.handler.error(
                    UnknownOperationException("The client closed the connection.")
                )
            body += message.get("body", b"")
            if len(body) > limit:
                return _closing(self.handler.too_large(target, len(body)))
            if not message.get("more_body", False):
                break
        return await to_thread.run_sync(self.handler.handle, headers, bytes(body))


def _closing(answer: WireResponse) -> WireResponse:
    """The answer, closing the connection: the rest of the body is never read."""
    return WireResponse(
        answer.status, answer.headers | {"connection": "close"}, answer.body
    )


def _elsewhere_app(handler: WireHandler) -> Starlette:
    async def elsewhere(request: Request, exc: Exception) -> Response:
        # Only `POST /` is the API; answer anything else in the same error format.
        answer = handler.error(_not_an_operation(request.method, request.url.path))
        return Response(answer.body, status_code=404, headers=answer.headers)

    return Starlette(exception_handlers={404: elsewhere})


def _not_an_operation(method: str, path: str) -> UnknownOperationException:
    return UnknownOperationException(
        f"{method} {path} is not an operation of this service; "
        "send POST / with an X-Amz-Target header."
    )
