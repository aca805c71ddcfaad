"""SigV4 as a real `rekollect serve` with access keys checks it: what boto3 and the aws
CLI sign is accepted; a wrong secret, a tampered body or header, a stale or future
date, another region or service, an unknown key and a bad session token are each
refused with the error AWS answers. The verifier itself is checked against
botocore's own signer, which the tests use to sign (rekollect's verifier is its own
code)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from rekollect.errors import IncompleteSignatureException, InvalidSignatureException
from rekollect.protocol import model, sigv4
from rekollect.security.keystore import NewKey, create_key
from rekollect.security.policy import parse_policy
from rekollect.security.sealing import load_or_create_master_key
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from tests.conftest import aws_cli_env, aws_executable, running_server, serve_args
from tests.test_protocol import CONTENT_TYPE, assert_aws_error

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
REGION = "us-east-1"


# Helpers shared with the policy and limits tests


def make_key(
    data_dir: Path,
    master_key_file: Path,
    *,
    account_id: str = ACCOUNT_A,
    user_name: str = "alice",
    policy: dict[str, object] | None = None,
    temporary: bool = False,
    lifetime_s: float | None = None,
    now: float | None = None,
) -> NewKey:
    """Create an access key in the SQLite store of `data_dir`."""
    database = open_database(sqlite_url(data_dir))
    try:
        parsed = None
        if policy is not None:
            parsed = parse_policy(json.dumps(policy), model.operation_names())
        return create_key(
            database,
            load_or_create_master_key(master_key_file),
            account_id=account_id,
            user_name=user_name,
            policy=parsed,
            temporary=temporary,
            lifetime_s=lifetime_s,
            now=now,
        )
    finally:
        database.close()


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


@contextmanager
def keyed_server(
    data_dir: Path, master_key_file: Path, *extra: str
) -> Iterator[Server]:
    """`rekollect serve` on the SQLite store of `data_dir` with its master key."""
    log = data_dir / f"server-{time.monotonic_ns()}.log"
    command = serve_args(data_dir, sqlite_url(data_dir))
    command += ["--master-key-file", str(master_key_file), *extra]
    with running_server(command, log) as url:
        yield Server(url, log)


def client_for(url: str, key: NewKey, region: str = REGION, **config: object) -> object:
    """boto3 signing with `key` (and its session token, if it has one)."""
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key.key.access_key_id,
        aws_secret_access_key=key.secret,
        aws_session_token=key.session_token,
        config=Config(**({"retries": {"max_attempts": 1}} | config)),  # type: ignore[arg-type]
    )


def signed_headers(
    url: str,
    operation: str,
    body: bytes,
    *,
    key_id: str,
    secret: str,
    region: str = REGION,
    service: str = "rekognition",
    token: str | None = None,
) -> dict[str, str]:
    """The headers botocore's own signer gives this request."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": f"RekognitionService.{operation}",
        },
    )
    SigV4Auth(Credentials(key_id, secret, token), service, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def error_code(call: object) -> str:
    with pytest.raises(ClientError) as raised:
        call()  # type: ignore[operator]
    code: str = raised.value.response["Error"]["Code"]
    return code


# The verifier against botocore's signer, in this process


def _as_received(request: AWSRequest) -> sigv4.HttpRequest:
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = tuple(
        (name.lower(), str(value)) for name, value in prepared.headers.items()
    )
    return sigv4.HttpRequest(
        method=prepared.method,
        raw_path=parts.path or "/",
        query=parts.query,
        headers=headers + (("host", parts.netloc),),
        body=prepared.body or b"",
    )


def _botocore_signed(
    url: str, body: bytes = b"{}", token: str | None = None
) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": "RekognitionService.X"},
    )
    SigV4Auth(
        Credentials("AKID", "s3cr3t", token), "rekognition", "eu-west-1"
    ).add_auth(request)
    return request


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:9860/", id="root"),
        pytest.param("https://rekognition.example:8443/", id="tls-port"),
        pytest.param("http://h/a%20b/../c/?b=2&a=1&c=%2F%20x&a=0", id="path-and-query"),
        pytest.param("http://h/x/./y", id="dot-segment"),
        pytest.param("http://h/%E2%82%AC/", id="encoded-utf8"),
    ],
)
def test_verify_accepts_what_botocore_signs(url):
    request = _as_received(
        _botocore_signed(url, b'{"CollectionId": "\xc3\xa9"}', "tok")
    )
    credential = sigv4.parse_authorization(request.header("authorization") or "")
    sigv4.verify(credential, request, "s3cr3t", time.time())


def test_canonical_request_is_botocores():
    request = _botocore_signed("http://h/p/?z=1&a=%2A")
    received = _as_received(request)
    del request.headers["Authorization"]  # what the signer saw when it signed
    signer = SigV4Auth(Credentials("AKID", "s3cr3t"), "rekognition", "eu-west-1")
    expected = signer.canonical_request(request)
    credential = sigv4.parse_authorization(received.header("authorization") or "")
    payload = sigv4.hashlib.sha256(received.body).hexdigest()
    assert sigv4.canonical_request(received, credential.signed_headers, payload) == (
        expected
    )


def test_verify_refuses_a_changed_byte_anywhere():
    received = _as_received(_botocore_signed("http://h/", b'{"MaxResults": 5}'))
    credential = sigv4.parse_authorization(received.header("authorization") or "")
    changed = [
        sigv4.HttpRequest(**(vars(received) | {"body": b'{"MaxResults": 6}'})),
        sigv4.HttpRequest(**(vars(received) | {"method": "PUT"})),
        sigv4.HttpRequest(**(vars(received) | {"raw_path": "/x"})),
        sigv4.HttpRequest(**(vars(received) | {"query": "a=1"})),
        sigv4.HttpRequest(
            **(vars(received) | {"headers": received.headers[:-1] + (("host", "h2"),)})
        ),
    ]
    for request in changed:
        with pytest.raises(InvalidSignatureException):
            sigv4.verify(credential, request, "s3cr3t", time.time())
    with pytest.raises(InvalidSignatureException):
        sigv4.verify(credential, received, "s3cr3u", time.time())


def test_verify_requires_host_and_date_to_be_signed():
    received = _as_received(_botocore_signed("http://h/"))
    credential = sigv4.parse_authorization(received.header("authorization") or "")
    for name in ("host", "x-amz-date"):
        unsigned = sigv4.Credential(
            **(
                vars(credential)
                | {
                    "signed_headers": tuple(
                        h for h in credential.signed_headers if h != name
                    )
                }
            )
        )
        with pytest.raises(IncompleteSignatureException):
            sigv4.verify(unsigned, received, "s3cr3t", time.time())


@pytest.mark.parametrize("skew_s", [-16 * 60, 16 * 60])
def test_verify_refuses_a_date_more_than_15_minutes_away(skew_s):
    received = _as_received(_botocore_signed("http://h/"))
    credential = sigv4.parse_authorization(received.header("authorization") or "")
    sigv4.verify(credential, received, "s3cr3t", time.time() - skew_s / 2)
    with pytest.raises(InvalidSignatureException, match="Signature (expired|not yet)"):
        sigv4.verify(credential, received, "s3cr3t", time.time() - skew_s)


# A real server with keys


@pytest.fixture(scope="module")
def keyed(tmp_path_factory) -> Iterator[tuple[Server, dict[str, NewKey]]]:
    data_dir = tmp_path_factory.mktemp("keyed")
    master = tmp_path_factory.mktemp("config") / "master.key"
    keys = {
        "alice": make_key(data_dir, master),
        "bob": make_key(data_dir, master, account_id=ACCOUNT_B, user_name="bob"),
        "temporary": make_key(data_dir, master, temporary=True, lifetime_s=3600),
        "expired": make_key(
            data_dir, master, temporary=True, lifetime_s=60, now=time.time() - 3600
        ),
    }
    with keyed_server(data_dir, master) as server:
        yield server, keys


@pytest.fixture
def server(keyed) -> Server:
    return keyed[0]


@pytest.fixture
def keys(keyed) -> dict[str, NewKey]:
    return keyed[1]


def test_boto3_signed_by_a_key_is_accepted_and_runs_in_its_account(server, keys):
    alice = client_for(server.url, keys["alice"])
    name = f"sig-{time.monotonic_ns()}"
    created = alice.create_collection(CollectionId=name)
    assert (
        created["CollectionArn"]
        == f"aws:rekognition:{REGION}:{ACCOUNT_A}:collection/{name}"
    )
    assert name in alice.list_collections()["CollectionIds"]

    bob = client_for(server.url, keys["bob"])
    assert name not in bob.list_collections()["CollectionIds"]
    assert error_code(lambda: bob.describe_collection(CollectionId=name)) == (
        "ResourceNotFoundException"
    )
    eu = client_for(server.url, keys["alice"], region="eu-west-1")
    assert name not in eu.list_collections()["CollectionIds"]


def test_wrong_secret_is_invalid_signature(server, keys):
    key = keys["alice"]
    wrong = NewKey(key.key, key.secret[:-1] + ("x" if key.secret[-1] != "x" else "y"))
    rekognition = client_for(server.url, wrong)
    assert error_code(rekognition.list_collections) == "InvalidSignatureException"


def test_unknown_key_is_unrecognized_client(server, keys):
    stranger = NewKey(
        keys["alice"].key.__class__(
            access_key_id="AKRKAAAAAAAAAAAAAAAA",
            account_id=ACCOUNT_A,
            user_name="x",
            created_at=0.0,
        ),
        keys["alice"].secret,
    )
    rekognition = client_for(server.url, stranger)
    assert error_code(rekognition.list_collections) == "UnrecognizedClientException"


def _post(url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(url, headers=headers, content=body)


def test_a_tampered_body_or_header_is_invalid_signature(server, keys):
    key = keys["alice"]
    body = b'{"MaxResults": 5}'
    headers = signed_headers(
        server.url,
        "ListCollections",
        body,
        key_id=key.key.access_key_id,
        secret=key.secret,
    )
    assert _post(server.url, headers, body).status_code == 200

    tampered = _post(server.url, headers, b'{"MaxResults": 6}')
    assert_aws_error(tampered, "InvalidSignatureException")

    retargeted = headers | {"X-Amz-Target": "RekognitionService.DeleteCollection"}
    answer = _post(server.url, retargeted, b'{"CollectionId": "x"}')
    assert_aws_error(answer, "InvalidSignatureException")

    added = headers | {"X-Amz-Content-Sha256": "0" * 64}
    assert_aws_error(_post(server.url, added, body), "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-20, 20], ids=["expired", "future"])
def test_a_date_outside_15_minutes_is_invalid_signature(
    server, keys, monkeypatch, minutes
):
    signed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(
        minutes=minutes
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
    key = keys["alice"]
    headers = signed_headers(
        server.url,
        "ListCollections",
        b"{}",
        key_id=key.key.access_key_id,
        secret=key.secret,
    )
    answer = _post(server.url, headers, b"{}")
    body = assert_aws_error(answer, "InvalidSignatureException")
    assert body["Message"].startswith(
        "Signature expired" if minutes < 0 else "Signature not yet current"
    )


def test_another_region_in_the_scope_than_signed_is_invalid_signature(server, keys):
    key = keys["alice"]
    headers = signed_headers(
        server.url,
        "ListCollections",
        b"{}",
        key_id=key.key.access_key_id,
        secret=key.secret,
    )
    headers["Authorization"] = headers["Authorization"].replace(
        f"/{REGION}/", "/eu-west-1/"
    )
    assert_aws_error(_post(server.url, headers, b"{}"), "InvalidSignatureException")


@pytest.mark.parametrize(
    ("region", "service", "message"),
    [
        pytest.param(REGION, "s3", "correct service: 'rekognition'", id="service"),
        pytest.param("moon", "rekognition", "valid region", id="region"),
    ],
)
def test_a_scope_of_another_service_or_no_region_is_invalid_signature(
    server, keys, region, service, message
):
    key = keys["alice"]
    headers = signed_headers(
        server.url,
        "ListCollections",
        b"{}",
        key_id=key.key.access_key_id,
        secret=key.secret,
        region=region,
        service=service,
    )
    body = assert_aws_error(
        _post(server.url, headers, b"{}"), "InvalidSignatureException"
    )
    assert message in body["Message"]


def test_an_unsigned_request_is_missing_authentication_token(server):
    answer = _post(
        server.url,
        {
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": "RekognitionService.ListCollections",
        },
        b"{}",
    )
    assert_aws_error(answer, "MissingAuthenticationTokenException")


def test_a_malformed_authorization_is_incomplete_signature(server):
    headers = {
        "Content-Type": CONTENT_TYPE,
        "X-Amz-Target": "RekognitionService.ListCollections",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1",
    }
    assert_aws_error(_post(server.url, headers, b"{}"), "IncompleteSignatureException")


def test_a_temporary_key_needs_its_own_session_token(server, keys):
    temporary = keys["temporary"]
    assert "CollectionIds" in client_for(server.url, temporary).list_collections()

    without = NewKey(temporary.key, temporary.secret)
    assert error_code(client_for(server.url, without).list_collections) == (
        "UnrecognizedClientException"
    )
    wrong = NewKey(temporary.key, temporary.secret, temporary.session_token + "x")  # type: ignore[operator]
    assert error_code(client_for(server.url, wrong).list_collections) == (
        "UnrecognizedClientException"
    )
    alice = keys["alice"]
    with_token = NewKey(alice.key, alice.secret, "a-token-alice-never-had")
    assert error_code(client_for(server.url, with_token).list_collections) == (
        "UnrecognizedClientException"
    )


def test_an_expired_temporary_key_is_expired_token(server, keys):
    rekognition = client_for(server.url, keys["expired"])
    assert error_code(rekognition.list_collections) == "ExpiredTokenException"


def test_refusals_are_logged_as_warnings_without_secrets(server, keys):
    key = keys["alice"]
    wrong = NewKey(key.key, "not-" + key.secret)
    error_code(client_for(server.url, wrong).list_collections)
    time.sleep(0.2)
    log = server.log.read_text()
    refusals = [
        line for line in log.splitlines() if "InvalidSignatureException" in line
    ]
    assert refusals and all(" WARNING " in line for line in refusals)
    assert key.key.access_key_id in refusals[-1]
    for secret in (key.secret, "not-" + key.secret):
        assert secret not in log
    for other in keys.values():
        assert other.secret not in log
        assert other.session_token is None or other.session_token not in log


def _aws(
    server: Server, home: Path, key: NewKey, secret: str
) -> subprocess.CompletedProcess[str]:
    env = aws_cli_env(home) | {
        "AWS_ACCESS_KEY_ID": key.key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
    }
    env.pop("AWS_CA_BUNDLE", None)
    return subprocess.run(
        [
            aws_executable(),
            "rekognition",
            "list-collections",
            "--endpoint-url",
            server.url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_aws_cli_signed_by_a_key_is_accepted_and_a_wrong_secret_refused(
    server, keys, tmp_path
):
    key = keys["alice"]
    accepted = _aws(server, tmp_path, key, key.secret)
    assert accepted.returncode == 0, accepted.stderr
    assert "CollectionIds" in json.loads(accepted.stdout)

    refused = _aws(server, tmp_path, key, key.secret + "x")
    assert refused.returncode == 255
    assert (
        "(InvalidSignatureException) when calling the ListCollections" in refused.stderr
    )


def test_keys_created_and_deleted_while_serving_take_effect_within_seconds(tmp_path):
    master = tmp_path / "master.key"
    first = make_key(tmp_path, master)
    with keyed_server(tmp_path, master) as server:
        second = make_key(tmp_path, master, user_name="late")
        deadline = time.monotonic() + 10
        while True:
            try:
                client_for(server.url, second).list_collections()
                break
            except ClientError:
                assert time.monotonic() < deadline, "a new key was never accepted"
                time.sleep(0.2)

        database = open_database(sqlite_url(tmp_path))
        from rekollect.security.keystore import delete_key

        assert delete_key(database, first.key.access_key_id)
        database.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                client_for(server.url, first).list_collections()
            except ClientError as error:
                assert error.response["Error"]["Code"] == "UnrecognizedClientException"
                break
            assert time.monotonic() < deadline, "a deleted key stayed accepted"
            time.sleep(0.2)
