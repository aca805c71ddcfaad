"""The ASGI application (Starlette) that serves the Rekognition API on `POST /`.

The body is read in chunks and refused as soon as it passes the largest legal request
for its operation, so an oversized upload never sits in memory whole. The service
call runs in a worker thread; the event loop only moves bytes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rekollect.errors import UnknownOperationException
from rekollect.server.wire import WireHandler, WireResponse
from rekollect.service import Service


def create_app(service: Service) -> Starlette:
    handler = WireHandler(service)

    async def rekognition(request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        target = headers.get("x-amz-target")
        limit = handler.body_limit(target)

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _response(handler.too_large(target, int(declared)))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _response(handler.too_large(target, len(body)))

        answer = await run_in_threadpool(handler.handle, headers, bytes(body))
        return _response(answer)

    async def elsewhere(request: Request, exc: Exception) -> Response:
        # Only `POST /` is the API; answer anything else in the same error format.
        error = UnknownOperationException(
            f"{request.method} {request.url.path} is not an operation of this service; "
            "send POST / with an X-Amz-Target header."
        )
        answer = handler.error(error)
        status = getattr(exc, "status_code", 404)
        return Response(answer.body, status_code=status, headers=answer.headers)

    return Starlette(
        routes=[Route("/", rekognition, methods=["POST"])],
        exception_handlers={404: elsewhere, 405: elsewhere},
    )


def _response(answer: WireResponse) -> Response:
    return Response(answer.body, status_code=answer.status, headers=answer.headers)
