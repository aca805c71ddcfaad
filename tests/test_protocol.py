"""The AWS JSON 1.1 wire protocol of a real `rekollect serve`, byte by byte: request
ids, content types, the error format, malformed and oversized requests, routing by
`X-Amz-Target`, SigV4 regions, and what boto3 makes of it all. Raw requests go
through httpx (or a bare socket where httpx would send the whole body); boto3 is
used where the client's own behaviour (regions, retries) is the point."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

import botocore
import botocore.endpoint
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rekollect.config import load_settings
from rekollect.inprocess import service_client
from rekollect.server.wire import WireHandler
from rekollect.service import OPERATIONS, Service
from rekollect.storage import open_database
from tests.conftest import ACCOUNT, REGION, http_client

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService"
ERROR_MEMBERS = {"__type", "Code", "Message", "Logref"}
# The largest legal body of an operation without image blobs (see wire.body_limit).
PLAIN_BODY_LIMIT = 1 << 20
# 5 MiB of image bytes, base64-encoded, on top of it: IndexFaces and DetectLabels.
IMAGE_BLOB_MAX = 5_242_880
IMAGE_BODY_LIMIT = PLAIN_BODY_LIMIT + 4 * -(-IMAGE_BLOB_MAX // 3)


def headers(operation: str | None = None, **extra: str) -> dict[str, str]:
    """The headers boto3 sends for `operation`, unsigned, plus `extra`."""
    sent = {"content-type": CONTENT_TYPE}
    if operation is not None:
        sent["x-amz-target"] = f"{TARGET_PREFIX}.{operation}"
    return sent | {name.replace("_", "-"): value for name, value in extra.items()}


def post(
    server: str,
    operation: str | None,
    body: bytes | str | dict[str, object] = b"{}",
    **extra: str,
) -> httpx.Response:
    """POST `body` (a dict is sent as JSON) to `server` as `operation`."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return httpx.post(server, headers=headers(operation, **extra), content=body)


def request_id(response: httpx.Response) -> str:
    """The response's `x-amzn-RequestId`, checked to be a UUID in canonical form."""
    value = response.headers.get("x-amzn-RequestId")
    assert value is not None, response.headers
    assert str(uuid.UUID(value)) == value
    return value


def assert_aws_error(
    response: httpx.Response, code: str, status: int = 400
) -> dict[str, str]:
    """Check `response` is the AWS JSON error `code`; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.headers["x-amzn-ErrorType"] == code
    body = response.json()
    assert set(body) == ERROR_MEMBERS
    assert body["__type"] == body["Code"] == code
    assert isinstance(body["Message"], str) and body["Message"]
    # Logref is the request id, so a client's error can be found in the server log.
    assert body["Logref"] == request_id(response)
    return body


def unique(prefix: str = "proto") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def eu_client(server):
    return http_client(server, region_name="eu-west-1")


@pytest.fixture
def us_client(server):
    return http_client(server)


# Request ids and content type


def test_success_carries_request_id_and_json_content_type(server):
    response = post(server, "ListCollections", {"MaxResults": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert "x-amzn-ErrorType" not in response.headers
    request_id(response)
    assert set(response.json()) >= {"CollectionIds", "FaceModelVersions"}


def test_every_response_has_its_own_request_id(server):
    responses = [
        post(server, "ListCollections"),
        post(server, "ListCollections"),
        post(server, "DescribeCollection", {"CollectionId": unique()}),
        post(server, "DescribeCollection", {"CollectionId": unique()}),
        post(server, "NoSuchOperation"),
        post(server, "ListCollections", b"{not json"),
        httpx.get(server),
        httpx.post(f"{server}/other", headers=headers("ListCollections")),
    ]
    ids = [request_id(response) for response in responses]
    assert len(set(ids)) == len(ids)
    assert all(r.headers["content-type"] == CONTENT_TYPE for r in responses)


def test_boto3_reports_the_request_id_of_the_header(us_client):
    response = us_client.list_collections()
    metadata = response["ResponseMetadata"]
    assert metadata["RequestId"] == metadata["HTTPHeaders"]["x-amzn-requestid"]
    assert str(uuid.UUID(metadata["RequestId"])) == metadata["RequestId"]


# The error format


def test_missing_collection_is_resource_not_found_in_aws_error_format(server):
    name = unique()
    response = post(server, "DescribeCollection", {"CollectionId": name})
    body = assert_aws_error(response, "ResourceNotFoundException")
    assert name in body["Message"]


def test_boto3_raises_the_modelled_exception_with_code_and_message(us_client):
    with pytest.raises(us_client.exceptions.ResourceNotFoundException) as error:
        us_client.describe_collection(CollectionId=unique())
    answer = error.value.response
    assert answer["Error"]["Code"] == "ResourceNotFoundException"
    assert answer["Error"]["Message"]
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answer["ResponseMetadata"]["RequestId"]


# Bodies that are not a JSON request


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"MaxResults": ', id="truncated"),
        pytest.param(b"{'MaxResults': 1}", id="single-quotes"),
        pytest.param(b'{"MaxResults": 1} trailing', id="trailing-data"),
        pytest.param(b'{"MaxResults": NaN}', id="NaN"),
        pytest.param(b'{"MaxResults": Infinity}', id="Infinity"),
        pytest.param(b'{"MaxResults": -Infinity}', id="minus-Infinity"),
        pytest.param(b'{"NextToken": "\xff\xfe"}', id="not-utf-8"),
    ],
)
def test_malformed_json_is_serialization_exception(server, body):
    response = post(server, "ListCollections", body)
    assert_aws_error(response, "SerializationException")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b'"ListCollections"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
    ],
)
def test_json_that_is_not_an_object_is_serialization_exception(server, body):
    response = post(server, "ListCollections", body)
    assert_aws_error(response, "SerializationException")


def test_empty_body_is_an_empty_request(server):
    # botocore always sends `{}`; an empty body reads as the same empty input, so
    # it suits an operation without required members and no other.
    body = b""
    listed = post(server, "ListCollections", body)
    assert listed.status_code == 200
    assert "CollectionIds" in listed.json()

    described = post(server, "DescribeCollection", body)
    error = assert_aws_error(described, "InvalidParameterException")
    assert "'collectionId'" in error["Message"]
    assert "Member must not be null" in error["Message"]


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="json"),
        pytest.param("application/x-amz-json-1.0", id="json-1.0"),
        pytest.param("text/plain", id="text"),
        pytest.param("", id="empty"),
    ],
)
def test_wrong_content_type_is_serialization_exception(server, content_type):
    response = post(server, "ListCollections", content_type=content_type)
    body = assert_aws_error(response, "SerializationException")
    assert CONTENT_TYPE in body["Message"]


def test_missing_content_type_is_serialization_exception(server):
    response = httpx.post(
        server,
        headers={"x-amz-target": f"{TARGET_PREFIX}.ListCollections"},
        content=b"{}",
    )
    assert_aws_error(response, "SerializationException")


def test_content_type_parameters_and_case_are_accepted(server):
    for content_type in (f"{CONTENT_TYPE}; charset=utf-8", CONTENT_TYPE.upper()):
        response = post(server, "ListCollections", content_type=content_type)
        assert response.status_code == 200, response.text


# Routing by X-Amz-Target


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("ListCollections", id="no-prefix"),
        pytest.param("DynamoDB_20120810.ListTables", id="other-service"),
        pytest.param("rekognitionservice.ListCollections", id="prefix-case"),
        pytest.param(f"{TARGET_PREFIX}.", id="no-operation"),
        pytest.param(f"{TARGET_PREFIX}.FlyToTheMoon", id="unknown-operation"),
        pytest.param(f"{TARGET_PREFIX}.listCollections", id="operation-case"),
    ],
)
def test_unknown_target_is_unknown_operation_exception(server, target):
    sent = {"content-type": CONTENT_TYPE}
    if target is not None:
        sent["x-amz-target"] = target
    response = httpx.post(server, headers=sent, content=b"{}")
    assert_aws_error(response, "UnknownOperationException")


def test_modelled_operation_not_implemented_is_unsupported_operation(server):
    image = base64.b64encode(b"\xff\xd8\xff\xe0not-a-jpeg").decode()
    response = post(server, "DetectLabels", {"Image": {"Bytes": image}})
    body = assert_aws_error(response, "UnsupportedOperationException")
    assert "DetectLabels" in body["Message"]


def count_attempts(client: object, operation: str) -> list[str]:
    """The attempts `client` makes at `operation`, one entry per request built."""
    attempts: list[str] = []
    client.meta.events.register(  # type: ignore[attr-defined]
        f"request-created.rekognition.{operation}",
        lambda request, **_: attempts.append(operation),
    )
    return attempts


def test_boto3_does_not_retry_an_unsupported_operation(server):
    client = http_client(server, retries={"mode": "standard", "total_max_attempts": 5})
    attempts = count_attempts(client, "DetectLabels")
    with pytest.raises(ClientError) as error:
        client.detect_labels(Image={"Bytes": b"\xff\xd8\xff\xe0not-a-jpeg"})
    assert type(error.value) is ClientError  # not modelled: no exception class
    answer = error.value.response
    assert answer["Error"]["Code"] == "UnsupportedOperationException"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0
    assert len(attempts) == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 405),
        ("PUT", "/", 405),
        ("POST", "/other", 404),
        ("GET", "/favicon.ico", 404),
    ],
)
def test_other_methods_and_paths_are_unknown_operation_in_aws_format(
    server, method, path, status
):
    response = httpx.request(
        method, f"{server}{path}", headers=headers("ListCollections"), content=b"{}"
    )
    body = assert_aws_error(response, "UnknownOperationException", status)
    assert f"{method} {path}" in body["Message"]


def test_method_not_allowed_names_the_allowed_method(server):
    response = httpx.get(server)
    assert response.status_code == 405
    assert response.headers.get("allow") == "POST"


# Oversized bodies


def _send_raw(server: str, request: bytes) -> tuple[float, bytes, bytes]:
    """Send `request` (a head and the start of its body) over a bare socket; return
    the seconds until the whole answer arrived, its head and its body."""
    address = urlsplit(server)
    started = time.monotonic()
    with socket.create_connection((address.hostname, address.port), timeout=5) as s:
        s.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            assert chunk, received
            received += chunk
        answer_head, _, answer_body = received.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in answer_head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(answer_body) < length:
            chunk = s.recv(65536)
            assert chunk, answer_body
            answer_body += chunk
    return time.monotonic() - started, answer_head, answer_body


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("ListCollections", "InvalidParameterException"),
        ("IndexFaces", "ImageTooLargeException"),
    ],
)
def test_declared_oversized_body_is_refused_before_it_is_sent(server, operation, code):
    declared = 50 * 1024**3
    head = (
        f"POST / HTTP/1.1\r\nHost: {urlsplit(server).netloc}\r\n"
        f"X-Amz-Target: {TARGET_PREFIX}.{operation}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    elapsed, answer_head, answer_body = _send_raw(server, head + b'{"Collection')

    assert elapsed < 3
    status_line, *header_lines = answer_head.decode().split("\r\n")
    assert status_line.split()[1] == "400"
    sent = {
        k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)
    }
    assert sent["content-type"] == CONTENT_TYPE
    assert sent["x-amzn-errortype"] == code
    # The unread rest of the body must not be taken for the next request.
    assert sent["connection"] == "close"
    body = json.loads(answer_body)
    assert body["__type"] == code and body["Logref"] == sent["x-amzn-requestid"]
    assert str(uuid.UUID(body["Logref"])) == body["Logref"]
    assert str(declared) in body["Message"]


def _chunks(total: int, size: int = 1 << 16):
    yield b'{"CollectionId": "c"'
    for _ in range(total // size):
        yield b" " * size


@pytest.mark.parametrize(
    ("operation", "limit", "code"),
    [
        ("ListCollections", PLAIN_BODY_LIMIT, "InvalidParameterException"),
        ("IndexFaces", IMAGE_BODY_LIMIT, "ImageTooLargeException"),
    ],
)
def test_chunked_body_over_the_limit_is_refused(server, operation, limit, code):
    response = httpx.post(
        server,
        headers=headers(operation),
        content=_chunks(limit + (1 << 18)),
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    body = assert_aws_error(response, code)
    assert str(limit) in body["Message"]


def test_body_of_exactly_the_limit_is_read(server):
    body = b"{}" + b" " * (PLAIN_BODY_LIMIT - 2)
    assert post(server, "ListCollections", body).status_code == 200
    refused = post(server, "ListCollections", body + b" ")
    assert_aws_error(refused, "InvalidParameterException")


def test_largest_legal_image_passes_the_body_limit_and_one_byte_more_does_not(server):
    largest = base64.b64encode(bytes(IMAGE_BLOB_MAX)).decode()
    answer = post(server, "DetectLabels", {"Image": {"Bytes": largest}})
    assert_aws_error(answer, "UnsupportedOperationException")

    too_large = base64.b64encode(bytes(IMAGE_BLOB_MAX + 1)).decode()
    answer = post(server, "DetectLabels", {"Image": {"Bytes": too_large}})
    assert_aws_error(answer, "ImageTooLargeException")


# SigV4: the region of the credential scope


def test_collections_are_namespaced_by_the_signing_region(eu_client, us_client):
    name = unique("eu")
    created = eu_client.create_collection(CollectionId=name)
    try:
        assert created["CollectionArn"] == (
            f"aws:rekognition:eu-west-1:{ACCOUNT}:collection/{name}"
        )
        described = eu_client.describe_collection(CollectionId=name)
        assert described["CollectionARN"] == (
            f"arn:aws:rekognition:eu-west-1:{ACCOUNT}:collection/{name}"
        )
        assert name in eu_client.list_collections(MaxResults=4096)["CollectionIds"]
        assert name not in us_client.list_collections(MaxResults=4096)["CollectionIds"]
        with pytest.raises(us_client.exceptions.ResourceNotFoundException):
            us_client.describe_collection(CollectionId=name)
    finally:
        eu_client.delete_collection(CollectionId=name)


def test_unsigned_request_uses_the_default_region(server, eu_client, us_client):
    in_us, in_eu = unique("us"), unique("eu")
    us_client.create_collection(CollectionId=in_us)
    eu_client.create_collection(CollectionId=in_eu)
    try:
        described = post(server, "DescribeCollection", {"CollectionId": in_us})
        assert "authorization" not in described.request.headers
        assert described.status_code == 200, described.text
        assert described.json()["CollectionARN"] == (
            f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{in_us}"
        )
        missing = post(server, "DescribeCollection", {"CollectionId": in_eu})
        assert_aws_error(missing, "ResourceNotFoundException")

        unsigned = http_client(
            server, region_name="eu-west-1", signature_version=botocore.UNSIGNED
        )
        listed = unsigned.list_collections(MaxResults=4096)["CollectionIds"]
        assert in_us in listed and in_eu not in listed
    finally:
        us_client.delete_collection(CollectionId=in_us)
        eu_client.delete_collection(CollectionId=in_eu)


def test_region_of_a_hand_written_credential_scope_is_used(server, eu_client):
    name = unique("eu")
    eu_client.create_collection(CollectionId=name)
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/eu-west-1/rekognition/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        f"Signature={'0' * 64}"
    )
    try:
        response = post(
            server,
            "DescribeCollection",
            {"CollectionId": name},
            authorization=authorization,
        )
        assert response.status_code == 200, response.text
        assert ":eu-west-1:" in response.json()["CollectionARN"]
    finally:
        eu_client.delete_collection(CollectionId=name)


_SCOPE = "AKID/20261203/us-east-1/rekognition/aws4_request"
_SIGNATURE = "a" * 64


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param(
            f"AWS4-HMAC-SHA1 Credential={_SCOPE}, SignedHeaders=host, "
            f"Signature={_SIGNATURE}",
            id="other-algorithm",
        ),
        pytest.param("AWS4-HMAC-SHA256", id="algorithm-only"),
        pytest.param(
            f"AWS4-HMAC-SHA256 Credential={_SCOPE}, SignedHeaders=host",
            id="no-signature",
        ),
        pytest.param(
            f"AWS4-HMAC-SHA256 SignedHeaders=host, Signature={_SIGNATURE}",
            id="no-credential",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKID/us-east-1/rekognition/aws4_request, "
            f"SignedHeaders=host, Signature={_SIGNATURE}",
            id="scope-without-date",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKID/20261203//rekognition/aws4_request, "
            f"SignedHeaders=host, Signature={_SIGNATURE}",
            id="empty-region",
        ),
        pytest.param(
            f"AWS4-HMAC-SHA256 Credential={_SCOPE}, SignedHeaders=host, Signature=zz",
            id="signature-not-hex",
        ),
    ],
)
def test_malformed_authorization_is_incomplete_signature(server, authorization):
    # AWS's common-errors table gives IncompleteSignature HTTP 400 (a few newer
    # service pages say 403); rekollect answers 400.
    response = post(server, "ListCollections", authorization=authorization)
    assert_aws_error(response, "IncompleteSignatureException")


# Deeply nested JSON


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_nested(10_000), id="top-level-10000"),
        pytest.param(b'{"CollectionId": ' + _nested(10_000) + b"}", id="member-10000"),
        pytest.param(b'{"CollectionId": ' + _nested(500) + b"}", id="member-500"),
    ],
)
def test_deeply_nested_json_is_a_client_error_and_the_server_survives(server, body):
    response = post(server, "DescribeCollection", body)
    assert response.status_code == 400, response.text
    assert response.json()["__type"] in {
        "SerializationException",
        "InvalidParameterException",
    }
    request_id(response)
    assert post(server, "ListCollections").status_code == 200


# Unexpected failures (in-process: the handler both transports share)


@pytest.fixture
def handler(tmp_path):
    database = open_database(load_settings(tmp_path).database_url)
    yield WireHandler(Service(database))
    database.close()


class _Boom(RuntimeError):
    pass


def test_unexpected_exception_is_internal_server_error_logged_once(
    handler, monkeypatch, caplog
):
    def explode(service, scope, **params):
        raise _Boom("secret detail that must not reach the client")

    monkeypatch.setitem(OPERATIONS, "ListCollections", explode)
    caplog.set_level(logging.INFO)
    answer = handler.handle(
        {
            "x-amz-target": f"{TARGET_PREFIX}.ListCollections",
            "content-type": CONTENT_TYPE,
        },
        b"{}",
    )

    assert answer.status == 500
    assert answer.headers["content-type"] == CONTENT_TYPE
    assert answer.headers["x-amzn-ErrorType"] == "InternalServerError"
    body = json.loads(answer.body)
    rid = answer.headers["x-amzn-RequestId"]
    assert body == {
        "__type": "InternalServerError",
        "Code": "InternalServerError",
        "Message": "Internal server error",
        "Logref": rid,
    }
    assert b"secret" not in answer.body

    with_traceback = [record for record in caplog.records if record.exc_info]
    assert len(with_traceback) == 1
    record = with_traceback[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info[0] is _Boom
    assert rid in record.getMessage()
    assert "explode" in caplog.text  # the traceback itself went to the log
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


def test_boto3_retries_an_internal_server_error(handler, monkeypatch):
    # The control for the unsupported-operation test: the same count sees boto3's
    # retries when the answer is a 500.
    monkeypatch.setitem(OPERATIONS, "ListCollections", lambda *_, **__: 1 / 0)
    monkeypatch.setattr(
        botocore.endpoint, "time", SimpleNamespace(sleep=lambda _: None)
    )
    client = service_client(
        handler.service,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    attempts = count_attempts(client, "ListCollections")
    with pytest.raises(ClientError) as error:
        client.list_collections()
    assert error.value.response["Error"]["Code"] == "InternalServerError"
    assert error.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(attempts) == 3
