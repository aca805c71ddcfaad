"""A real boto3 Rekognition client whose requests never leave the process.

botocore builds, signs and parses every request as usual; a `before-send` hook hands
the prepared request to the same `WireHandler` the HTTP server uses and returns its
answer as the HTTP response, so validation, errors and retries behave exactly as
against `rekollect serve` on the same data directory. The command line installs the
same hook (`WireSender`) on the aws CLI driver's session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from rekollect.config import load_settings
from rekollect.server.wire import WireHandler
from rekollect.service import Service

# No network is involved; any host name works as long as botocore can parse it.
LOCAL_ENDPOINT = "http://rekollect.local"


class _RawBody:
    """The minimal file-like object botocore reads a response body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


class WireSender:
    """A botocore `before-send` handler that answers requests to `LOCAL_ENDPOINT`.

    `handler` may be a factory, called on the first request, so that a command that
    never sends anything never opens the store. Requests to any other URL are left
    to botocore (the handler returns None).
    """

    def __init__(self, handler: WireHandler | Callable[[], WireHandler]) -> None:
        self._handler = handler if isinstance(handler, WireHandler) else None
        self._factory = None if isinstance(handler, WireHandler) else handler

    @property
    def handler(self) -> WireHandler:
        if self._handler is None:
            assert self._factory is not None
            self._handler = self._factory()
        return self._handler

    @property
    def opened(self) -> bool:
        return self._handler is not None

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if not request.url.startswith(LOCAL_ENDPOINT):
            return None
        headers = {
            name.lower(): _text(value) for name, value in request.headers.items()
        }
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = body.read()
        answer = self.handler.handle(headers, body)
        return AWSResponse(
            request.url, answer.status, answer.headers, _RawBody(answer.body)
        )


def client(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    region_name: str | None = None,
    database_url: str | None = None,
    config: Config | None = None,
) -> Any:
    """A boto3 Rekognition client served in this process from `data_dir`.

    `data_dir=None` means the same per-user data directory `rekollect serve` uses.
    """
    settings = load_settings(data_dir, database_url=database_url, region=region_name)
    service = settings.open_service(engine_workers=0)
    return service_client(service, region_name=settings.region, config=config)


def service_client(
    service: Service, *, region_name: str, config: Config | None = None
) -> Any:
    """A boto3 Rekognition client bound to an existing service core."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="rekollect",
        aws_secret_access_key="rekollect",
        region_name=region_name,
    )
    rekognition = session.client(
        "rekognition", endpoint_url=LOCAL_ENDPOINT, config=config
    )
    rekognition.meta.events.register(
        "before-send.rekognition", WireSender(WireHandler(service))
    )
    return rekognition


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
