"""Limits that keep one client from starving the rest: a token bucket per access key
(`ProvisionedThroughputExceededException`, which boto3 retries), image requests in
progress (`ThrottlingException`), JSON nesting depth, and the deadlines of slow
clients: request headers, request body, idle keep-alive connections, and the number
of connections a server process takes."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rekollect.config import load_settings
from rekollect.errors import ProvisionedThroughputExceededException, ThrottlingException
from rekollect.protocol import model
from rekollect.security.limits import MAX_JSON_DEPTH, JobSlots, Limits, RateLimiter
from rekollect.server.wire import WireHandler
from rekollect.service import Service
from rekollect.storage import open_database
from tests.test_protocol import CONTENT_TYPE
from tests.test_sigv4 import Server, client_for, keyed_server, make_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# The token bucket


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    for _ in range(3):
        limiter.take("AKID")
    with pytest.raises(ProvisionedThroughputExceededException):
        limiter.take("AKID")
    limiter.take("OTHER")  # every key has its own bucket

    clock.now += 0.5  # one token at 2 per second
    limiter.take("AKID")
    with pytest.raises(ProvisionedThroughputExceededException):
        limiter.take("AKID")
    clock.now += 60
    for _ in range(3):  # never more than the burst saved up
        limiter.take("AKID")
    with pytest.raises(ProvisionedThroughputExceededException):
        limiter.take("AKID")


def test_the_default_burst_is_twice_the_rate_and_at_least_one():
    assert RateLimiter(5.0).burst == 10
    assert RateLimiter(0.1).burst == 1


def test_limits_travel_to_worker_processes_through_the_environment(monkeypatch):
    limits = Limits(rate_per_key=2.5, rate_burst=4, image_jobs=3, header_timeout_s=1.5)
    for name, value in limits.environment().items():
        monkeypatch.setenv(name, value)
    assert Limits.from_environment() == limits


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory) -> Iterator[tuple[Server, Any, Any]]:
    data_dir = tmp_path_factory.mktemp("rate")
    master = data_dir / "master.key"
    first, second = (
        make_key(data_dir, master),
        make_key(data_dir, master, user_name="b"),
    )
    with keyed_server(
        data_dir, master, "--rate-limit", "1", "--rate-burst", "3"
    ) as server:
        yield server, first, second


def test_a_key_over_its_rate_is_refused_with_the_error_sdks_retry(rate_limited):
    server, first, second = rate_limited
    rekognition = client_for(server.url, first)
    retrying = client_for(
        server.url, first, retries={"max_attempts": 6, "mode": "standard"}
    )
    # A burst of 3, then 1 request a second: calls succeed until the bucket is
    # empty, however slowly this machine makes them.
    answered = 0
    with pytest.raises(rekognition.exceptions.ProvisionedThroughputExceededException):
        for _ in range(20):
            rekognition.list_collections()
            answered += 1
    assert 3 <= answered < 20

    # Right after a refusal the bucket holds less than a token, and calls in quick
    # succession outrun its refill: an SDK that retries is refused at least once and
    # still gets every call through, once tokens have come back.
    answers = [retrying.list_collections() for _ in range(3)]
    assert sum(a["ResponseMetadata"]["RetryAttempts"] for a in answers) >= 1
    # Each key has a bucket of its own.
    assert "CollectionIds" in client_for(server.url, second).list_collections()


# Image requests in progress


@pytest.fixture
def handler_with_one_slot(tmp_path) -> Iterator[tuple[WireHandler, JobSlots]]:
    service = Service(open_database(load_settings(tmp_path).database_url))
    slots = JobSlots(1)
    yield WireHandler(service, image_slots=slots), slots
    service.close()


def _wire(handler: WireHandler, operation: str, body: dict[str, Any] | bytes) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "content-type": CONTENT_TYPE,
        "x-amz-target": f"RekognitionService.{operation}",
    }
    answer = handler.handle(headers, data)
    return answer.status, json.loads(answer.body or b"{}")


def test_image_requests_beyond_the_slots_are_throttled_not_queued(
    handler_with_one_slot,
):
    handler, slots = handler_with_one_slot
    image = {"Image": {"Bytes": base64.b64encode(b"not an image").decode()}}
    with slots:  # another request holds the only slot
        status, body = _wire(handler, "DetectFaces", image)
        assert (status, body["__type"]) == (500, "ThrottlingException")
        assert _wire(handler, "ListCollections", {})[0] == 200
    status, body = _wire(handler, "DetectFaces", image)
    assert body["__type"] == "InvalidImageFormatException"


def test_job_slots_are_given_back_after_an_error():
    slots = JobSlots(2)
    for _ in range(5):
        with pytest.raises(ValueError), slots:
            raise ValueError
    with slots, slots, pytest.raises(ThrottlingException), slots:
        pass


# JSON nesting


def _depth(shape: Any) -> int:
    if shape is None:
        return 0
    if shape.type_name == "structure":
        return 1 + max([_depth(m) for m in shape.members.values()] or [0])
    if shape.type_name == "list":
        return 1 + _depth(shape.member)
    if shape.type_name == "map":
        return 1 + _depth(shape.value)
    return 0


def test_no_modelled_request_nests_as_deep_as_the_limit():
    service = model.service_model()
    deepest = max(
        _depth(service.operation_model(n).input_shape) for n in service.operation_names
    )
    assert deepest < MAX_JSON_DEPTH


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(
            b'{"CollectionId": '
            + b"[" * (MAX_JSON_DEPTH - 1)
            + b"]" * (MAX_JSON_DEPTH - 1)
            + b"}",
            "InvalidParameterException",
            id="at-the-limit",
        ),
        pytest.param(
            b'{"CollectionId": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
            "SerializationException",
            id="one-deeper",
        ),
        pytest.param(
            b'{"CollectionId": "' + b"[" * 100 + b'"}',
            "InvalidParameterException",
            id="brackets-in-a-string",
        ),
        pytest.param(
            b'{"CollectionId": "\\"' + b"[" * 100 + b'"}',
            "InvalidParameterException",
            id="escaped-quote-then-brackets",
        ),
    ],
)
def test_json_nested_deeper_than_the_limit_is_refused_before_parsing(
    handler_with_one_slot, body, code
):
    handler, _ = handler_with_one_slot
    status, answer = _wire(handler, "DescribeCollection", body)
    assert (status, answer["__type"]) == (400, code)


# Slow clients


@pytest.fixture(scope="module")
def impatient(tmp_path_factory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("impatient")
    options = ["--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "1"]
    with keyed_server(data_dir, data_dir / "master.key", *options) as server:
        yield server


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def test_a_request_whose_headers_never_end_is_cut_off(impatient):
    with _connect(impatient) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Rekog")
        data, waited = _read_until_closed(sock)
    assert data == b"" and 0.5 < waited < 8


def test_a_connection_that_sends_nothing_is_cut_off(impatient):
    with _connect(impatient) as sock:
        data, waited = _read_until_closed(sock)
    assert data == b"" and waited < 8


def test_a_body_that_never_arrives_is_request_timeout(impatient):
    with _connect(impatient) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + CONTENT_TYPE.encode()
            + b"\r\nX-Amz-Target: RekognitionService.ListCollections\r\n"
            b"Content-Length: 100\r\n\r\n{\"MaxRes"
        )  # fmt: skip
        data, waited = _read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["__type"] == "RequestTimeoutException"
    assert waited < 8


def test_an_idle_keep_alive_connection_is_closed(impatient):
    with _connect(impatient) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + CONTENT_TYPE.encode()
            + b"\r\nX-Amz-Target: RekognitionService.ListCollections\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )  # fmt: skip
        data, waited = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and waited < 8


def test_a_client_that_is_not_slow_is_served(impatient):
    answer = httpx.post(
        impatient.url,
        headers={
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": "RekognitionService.ListCollections",
        },
        content=b"{}",
    )
    assert answer.status_code == 200


def test_connections_beyond_the_maximum_are_answered_503(tmp_path):
    with keyed_server(
        tmp_path, tmp_path / "master.key", "--max-connections", "3"
    ) as server:
        idle = [_connect(server), _connect(server)]
        try:
            time.sleep(0.2)
            refused = httpx.post(server.url, content=b"{}")
            assert refused.status_code == 503
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        headers = {
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": "RekognitionService.ListCollections",
        }
        assert httpx.post(server.url, headers=headers, content=b"{}").status_code == 200
