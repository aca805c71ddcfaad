"""The ASGI application that serves the Rekognition API on `POST /`.

`POST /` is answered by a small ASGI handler of its own: it reads the body in chunks,
refuses it as soon as it passes the largest legal request for its operation (so an
oversized upload never sits in memory whole), and runs the service call in a worker
thread; the event loop only moves bytes. A body that does not arrive within
`Limits.body_timeout_s` is answered `RequestTimeoutException` (SDKs retry it) and the
connection closed. Every other path goes to a Starlette app, which answers in the
same AWS error format, except the web console under `/console/` (`rekollect.console`).

`create_app` wires in access control (`rekollect.security.access`) when given one;
`create_app_from_environment` always does, as `serve --workers N` processes run
with keys or, on loopback without keys, open.
"""

from __future__ import annotations

import logging
import os

import anyio
from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rekollect.console import create_console
from rekollect.errors import RequestTimeoutException, UnknownOperationException
from rekollect.protocol.sigv4 import HttpRequest
from rekollect.security.access import AccessControl
from rekollect.security.limits import JobSlots, Limits
from rekollect.server.wire import WireHandler, WireResponse
from rekollect.service import Service

# Set for `serve --workers N` processes: whether to accept requests while no access
# key exists (the main process decided it from the address it listens on).
OPEN_WHEN_KEYLESS_VARIABLE = "REKOLLECT_OPEN_WHEN_KEYLESS"


def create_app(
    service: Service,
    *,
    access: AccessControl | None = None,
    limits: Limits | None = None,
) -> ASGIApp:
    limits = limits or Limits()
    slots = JobSlots(limits.image_jobs or 4 * max(1, service.engine_workers))
    handler = WireHandler(service, access, slots)
    return RekognitionApp(handler, _elsewhere_app(handler), limits.body_timeout_s)


def create_app_from_environment() -> ASGIApp:
    """The app of one `serve --workers N` process, from `REKOLLECT_*` variables."""
    from rekollect.config import load_settings

    configure_logging(os.environ.get("REKOLLECT_LOG_LEVEL", "info"))
    settings = load_settings()
    limits = Limits.from_environment()
    service = settings.open_service(engine_workers=1, migrate=False)
    open_when_keyless = os.environ.get(OPEN_WHEN_KEYLESS_VARIABLE) == "1"
    access = settings.access_control(service.database, open_when_keyless, limits)
    return create_app(service, access=access, limits=limits)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


class RekognitionApp:
    """`POST /` to the wire handler; anything else to `fallback`."""

    def __init__(
        self, handler: WireHandler, fallback: ASGIApp, body_timeout_s: float = 60.0
    ) -> None:
        self.handler = handler
        self.fallback = fallback
        self.body_timeout_s = body_timeout_s

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
            answer = await self._answer(headers, scope, receive)
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

    async def _answer(
        self, headers: dict[str, str], scope: Scope, receive: Receive
    ) -> WireResponse:
        target = headers.get("x-amz-target")
        limit = self.handler.body_limit(target)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _closing(self.handler.too_large(target, int(declared)))

        body: bytes | WireResponse = _closing(
            self.handler.error(RequestTimeoutException())
        )
        with anyio.move_on_after(self.body_timeout_s):
            body = await self._read_body(target, limit, receive)
        if isinstance(body, WireResponse):
            return body
        http = _http_request(scope, body)
        return await to_thread.run_sync(self.handler.handle, headers, body, http)

    async def _read_body(
        self, target: str | None, limit: int, receive: Receive
    ) -> bytes | WireResponse:
        """The whole body, or the answer to a body over `limit` or never finished."""
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
                return bytes(body)


def _http_request(scope: Scope, body: bytes) -> HttpRequest:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return HttpRequest(
        method=scope["method"],
        raw_path=raw_path.decode("latin-1"),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope["headers"]
        ),
        body=body,
    )


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

    console = create_console(handler.service, handler.access, handler.image_slots)
    return Starlette(
        routes=[Mount("/console", app=console)], exception_handlers={404: elsewhere}
    )


def _not_an_operation(method: str, path: str) -> UnknownOperationException:
    return UnknownOperationException(
        f"{method} {path} is not an operation of this service; "
        "send POST / with an X-Amz-Target header."
    )
