"""The `rekollect` command line is `aws rekognition`: the same arguments, output,
pagination, global options and errors, byte for byte, against the same server; and it
works with no AWS account or configuration, in-process on the local data directory.

`aws` and `rekollect` run as real subprocesses (`tests/cli_runs.py`); read-only calls
run side by side on the same state, and calls that change state run one after the
other, with the state put back in between so both see the same. The server here has a
store of its own (SQLite: what is compared is the CLI, not the store; the wire tests
cover PostgreSQL), so every collection listed is one these tests made.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rekollect import __version__
from rekollect.service import Service
from rekollect.service.faces import add_faces
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from rekollect.storage.records import Scope
from tests import faces as made_up
from tests.cli_runs import (
    REKOLLECT,
    Command,
    Run,
    assert_same,
    aws_command,
    aws_env,
    rekollect_command,
    rekollect_env,
    run_all,
    run_one,
    self_signed_certificate,
)
from tests.conftest import ACCOUNT, REGION, aws_executable, http_client, running_server

FORMATS = ["json", "text", "table", "query"]
OVERSTRIKE = re.compile(rb"[^\x08]\x08")


@dataclass(frozen=True)
class Cli:
    """One server, as `aws` and as `rekollect` see it."""

    endpoint: str
    home: Path

    def commands(self, *args: str, **env: str) -> tuple[Command, Command]:
        tail = [*args, "--endpoint-url", self.endpoint]
        return (
            (aws_command(*tail), aws_env(self.home, **env)),
            (rekollect_command(*tail), rekollect_env(self.home, **env)),
        )

    def both(self, *args: str, **env: str) -> tuple[Run, Run]:
        aws, rekollect = run_all(*self.commands(*args, **env))
        return aws, rekollect

    def same(self, *args: str, **env: str) -> Run:
        """Run both at once on the same state; they must agree. The run."""
        aws, rekollect = self.both(*args, **env)
        assert_same(aws, rekollect)
        return rekollect

    def each_way(self, *args: str, reset: Callable[[], None]) -> Run:
        """`aws`, then `reset()` to undo its change, then `rekollect`; they agree."""
        aws_run, rekollect_run = self.commands(*args)
        aws = run_one(*aws_run)
        reset()
        rekollect = run_one(*rekollect_run)
        assert_same(aws, rekollect)
        return rekollect


@dataclass(frozen=True)
class Gallery:
    """A collection with faces, users (alice: 2 faces, bob: 1, carol: none), tags."""

    collection: str
    arn: str
    face_ids: list[str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-store")


@pytest.fixture(scope="module")
def endpoint(store: Path) -> Iterator[str]:
    command = [*REKOLLECT, "serve", "--port", "0", "--data-dir", str(store)]
    with running_server(command, store / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def core(store: Path, endpoint: str) -> Iterator[Service]:
    """The service core on the server's store, to add made-up faces."""
    service = Service(open_database(sqlite_url(store)))
    yield service
    service.close()


@pytest.fixture(scope="module")
def client(endpoint: str) -> Any:
    return http_client(endpoint)


@pytest.fixture(scope="module")
def cli(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(endpoint, tmp_path_factory.mktemp("cli-home"))


def store_faces(service: Service, collection: str, count: int) -> list[str]:
    center = made_up.person()
    faces = [made_up.new_face(made_up.face_of(center)) for _ in range(count)]
    add_faces(service, Scope(ACCOUNT, REGION), collection, faces)
    return [face.face_id for face in faces]


def collection_arn(collection: str) -> str:
    return f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{collection}"


@pytest.fixture(scope="module")
def gallery(client: Any, core: Service) -> Gallery:
    name = f"gallery-{uuid.uuid4().hex[:8]}"
    client.create_collection(CollectionId=name, Tags={"team": "vision"})
    face_ids = sorted(store_faces(core, name, 4))
    for user_id, faces in [("alice", face_ids[:2]), ("bob", face_ids[2:3])]:
        client.create_user(CollectionId=name, UserId=user_id)
        client.associate_faces(CollectionId=name, UserId=user_id, FaceIds=faces)
    client.create_user(CollectionId=name, UserId="carol")
    client.tag_resource(ResourceArn=collection_arn(name), Tags={"env": "test"})
    return Gallery(name, collection_arn(name), face_ids)


def read_only_calls(gallery: Gallery, output: str) -> list[list[str]]:
    """Calls that change nothing, in `output` ("query": JSON through a query)."""
    name, faces = gallery.collection, gallery.face_ids
    calls = [
        (["describe-collection", "--collection-id", name], "[FaceCount, UserCount]"),
        (["list-collections"], "CollectionIds"),
        (["list-users", "--collection-id", name], "Users[?UserStatus=='ACTIVE']"),
        (["list-faces", "--collection-id", name], "Faces[].[FaceId, UserId]"),
        (["list-tags-for-resource", "--resource-arn", gallery.arn], "Tags.team"),
    ]
    if output == "json":
        calls += [
            (["list-faces", "--collection-id", name, "--user-id", "alice"], ""),
            (["list-faces", "--collection-id", name, "--face-ids", *faces[1:3]], ""),
        ]
    if output == "query":
        return [[*args, "--query", query] for args, query in calls]
    return [[*args, "--output", output] for args, _ in calls]


# Output of the collection, user and association operations


@pytest.mark.parametrize("output", FORMATS)
def test_read_only_calls_print_what_aws_prints(cli: Cli, gallery: Gallery, output):
    commands: list[Command] = []
    for args in read_only_calls(gallery, output):
        commands += cli.commands(*args)
    runs = run_all(*commands)

    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert aws.returncode == 0 and aws.stdout, aws
        assert_same(aws, rekollect)
    if output == "json":
        faces = json.loads(runs[7].stdout)["Faces"]
        assert {face["FaceId"]: face.get("UserId") for face in faces} == {
            gallery.face_ids[0]: "alice",
            gallery.face_ids[1]: "alice",
            gallery.face_ids[2]: "bob",
            gallery.face_ids[3]: None,
        }
        alices, chosen = (json.loads(run.stdout)["Faces"] for run in runs[11::2])
        assert [face["FaceId"] for face in alices] == gallery.face_ids[:2]
        assert [face["FaceId"] for face in chosen] == gallery.face_ids[1:3]


def test_global_options_print_what_aws_prints(cli: Cli, gallery: Gallery, tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"CollectionId": "not-there", "MaxResults": 2}))
    runs = run_all(
        *cli.commands(
            "describe-collection", "--collection-id", gallery.collection,
            "--output", "table", "--color", "on",
        ),
        *cli.commands("list-collections", "--region", "eu-west-1"),
        # The command line overrides the file.
        *cli.commands(
            "list-users", "--cli-input-json", f"file://{request}",
            "--collection-id", gallery.collection,
        ),
    )  # fmt: skip

    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert aws.returncode == 0, aws
        assert_same(aws, rekollect)
    assert b"\x1b[" in runs[1].stdout
    assert json.loads(runs[3].stdout) == {"CollectionIds": [], "FaceModelVersions": []}
    assert "alice" in {user["UserId"] for user in json.loads(runs[5].stdout)["Users"]}


def test_changes_print_what_aws_prints_and_take_effect(
    cli: Cli, client: Any, core: Service, tmp_path
):
    name = f"life-{uuid.uuid4().hex[:8]}"
    arn = collection_arn(name)

    created = cli.each_way(
        "create-collection", "--collection-id", name,
        reset=lambda: client.delete_collection(CollectionId=name),
    )  # fmt: skip
    assert json.loads(created.stdout)["CollectionArn"].endswith(f"collection/{name}")

    tagged = cli.each_way(
        "tag-resource", "--resource-arn", arn, "--tags", "team=vision,env=test",
        reset=lambda: client.untag_resource(ResourceArn=arn, TagKeys=["team", "env"]),
    )  # fmt: skip
    assert tagged.stdout == b""
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "team": "vision",
        "env": "test",
    }

    cli.each_way(
        "create-user", "--collection-id", name, "--user-id", "alice",
        "--output", "table",
        reset=lambda: client.delete_user(CollectionId=name, UserId="alice"),
    )  # fmt: skip

    face_ids = store_faces(core, name, 3)
    ids_file = tmp_path / "face-ids.json"
    ids_file.write_text(json.dumps(face_ids[:2]))

    def disassociate() -> None:
        client.disassociate_faces(CollectionId=name, UserId="alice", FaceIds=face_ids)

    associated = cli.each_way(
        "associate-faces", "--collection-id", name, "--user-id", "alice",
        "--face-ids", f"file://{ids_file}", "--output", "table",
        reset=disassociate,
    )  # fmt: skip
    assert b"AssociateFaces" in associated.stdout
    assert owners(client, name) == dict.fromkeys(face_ids[:2], "alice") | {
        face_ids[2]: None
    }

    def associate_again() -> None:
        client.associate_faces(CollectionId=name, UserId="alice", FaceIds=face_ids[:1])

    disassociated = cli.each_way(
        "disassociate-faces", "--collection-id", name, "--user-id", "alice",
        "--face-ids", face_ids[0], "--output", "text",
        reset=associate_again,
    )  # fmt: skip
    assert (
        disassociated.stdout
        == f"UPDATING\nDISASSOCIATEDFACES\t{face_ids[0]}\n".encode()
    )
    assert owners(client, name)[face_ids[0]] is None

    def store_again() -> None:
        face = made_up.new_face(made_up.face_of(made_up.person()))
        face = dataclasses.replace(face, face_id=face_ids[2])
        add_faces(core, Scope(ACCOUNT, REGION), name, [face])

    deleted = cli.each_way(
        "delete-faces", "--collection-id", name, "--face-ids", face_ids[2],
        reset=store_again,
    )  # fmt: skip
    assert json.loads(deleted.stdout)["DeletedFaces"] == [face_ids[2]]

    cli.each_way(
        "delete-user", "--collection-id", name, "--user-id", "alice",
        "--output", "text",
        reset=lambda: client.create_user(CollectionId=name, UserId="alice"),
    )  # fmt: skip
    assert client.list_users(CollectionId=name)["Users"] == []

    cli.each_way(
        "delete-collection", "--collection-id", name, "--output", "table",
        reset=lambda: client.create_collection(CollectionId=name),
    )  # fmt: skip
    assert name not in client.list_collections()["CollectionIds"]


def owners(client: Any, collection: str) -> dict[str, str | None]:
    faces = client.list_faces(CollectionId=collection)["Faces"]
    return {face["FaceId"]: face.get("UserId") for face in faces}


def test_errors_print_what_aws_prints(cli: Cli, gallery: Gallery, tmp_path):
    not_an_image = tmp_path / "noise.bin"
    not_an_image.write_bytes(bytes(range(256)) * 4)
    name = gallery.collection
    runs = run_all(
        *cli.commands("describe-collection", "--collection-id", "not-there"),
        *cli.commands(
            "disassociate-faces", "--collection-id", name, "--user-id", "nobody",
            "--face-ids", gallery.face_ids[0],
        ),
        *cli.commands("delete-user", "--collection-id", name, "--user-id", "nobody"),
        *cli.commands("list-faces", "--collection-id", "not-there"),
        *cli.commands("create-collection", "--collection-id", "no spaces"),
        *cli.commands(
            "index-faces", "--collection-id", name,
            "--image-bytes", f"fileb://{not_an_image}",
        ),
        *cli.commands(
            "start-face-search", "--collection-id", name,
            "--video", "S3Object={Bucket=videos,Name=clip.mp4}",
        ),
        *cli.commands("list-collections", "--profile", "not-configured"),
        # Values the CLI cannot read: no request is made.
        *cli.commands("list-users", "--collection-id", name, "--max-results", "many"),
        *cli.commands("tag-resource", "--resource-arn", gallery.arn, "--tags", "a"),
    )  # fmt: skip

    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert aws.returncode == 255 and aws.stdout == b"", aws
        assert_same(aws, rekollect)
        assert b"Traceback" not in rekollect.stderr
    message = runs[3].stderr.decode().strip()
    assert message.startswith(
        "An error occurred (ResourceNotFoundException) when calling the "
        "DisassociateFaces operation: "
    ), runs[3]
    assert b"(InvalidImageFormatException)" in runs[11].stderr
    assert b"(UnsupportedOperationException)" in runs[13].stderr


# Pagination


def test_pagination_options_page_as_aws_does(cli: Cli, client: Any, gallery: Gallery):
    name = f"pages-{uuid.uuid4().hex[:8]}"
    client.create_collection(CollectionId=name)
    user_ids = [f"user-{number}" for number in range(5)]
    for user_id in user_ids:
        client.create_user(CollectionId=name, UserId=user_id)

    every = ["list-users", "--collection-id", name]
    runs = run_all(
        *cli.commands(*every, "--page-size", "2"),
        *cli.commands(*every, "--page-size", "2", "--max-items", "3"),
        *cli.commands(*every, "--max-results", "2", "--no-paginate"),
        *cli.commands(
            "list-faces", "--collection-id", gallery.collection,
            "--page-size", "1", "--max-items", "3",
        ),
        *cli.commands("list-collections", "--page-size", "1", "--output", "text"),
    )  # fmt: skip
    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert aws.returncode == 0, aws
        assert_same(aws, rekollect)
    outputs = [run.stdout for run in runs[1::2]]
    all_pages, some, first_page, faces = (json.loads(out) for out in outputs[:4])
    collections = outputs[4].decode()
    assert [user["UserId"] for user in all_pages["Users"]] == user_ids
    assert "NextToken" not in all_pages
    assert [user["UserId"] for user in some["Users"]] == user_ids[:3]
    assert [user["UserId"] for user in first_page["Users"]] == user_ids[:2]
    assert "NextToken" in first_page and "NextToken" in some
    assert len(faces["Faces"]) == 3
    assert f"\t{gallery.collection}\n" in collections and f"\t{name}\n" in collections

    # The rest from the token --max-items gave; and how many requests each made.
    rest = cli.same(*every, "--page-size", "2", "--starting-token", some["NextToken"])
    assert [user["UserId"] for user in json.loads(rest.stdout)["Users"]] == (
        user_ids[3:]
    )
    paged, unpaged = run_all(
        cli.commands(*every, "--page-size", "2", "--debug")[1],
        cli.commands(*every, "--max-results", "2", "--no-paginate", "--debug")[1],
    )
    assert paged.stdout == runs[1].stdout
    assert unpaged.stdout == runs[5].stdout
    assert requests_made(paged, "ListUsers") == 3
    assert requests_made(unpaged, "ListUsers") == 1


def requests_made(run: Run, operation: str) -> int:
    return run.stderr.count(
        f"Making request for OperationModel(name={operation})".encode()
    )


# Skeletons and JSON input


def test_generate_cli_skeleton_and_cli_input_json(
    cli: Cli, client: Any, gallery: Gallery, tmp_path
):
    runs = run_all(
        *cli.commands("associate-faces", "--generate-cli-skeleton"),
        *cli.commands("associate-faces", "--generate-cli-skeleton", "input"),
        *cli.commands(
            "describe-collection", "--collection-id", gallery.collection,
            "--generate-cli-skeleton", "output",
        ),
        *cli.commands("create-user", "--generate-cli-skeleton"),
    )  # fmt: skip
    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert aws.returncode == 0, aws
        assert_same(aws, rekollect)
    skeleton = json.loads(runs[1].stdout)
    assert set(skeleton) == {
        "CollectionId",
        "UserId",
        "FaceIds",
        "UserMatchThreshold",
        "ClientRequestToken",
    }
    assert runs[3].stdout == runs[1].stdout
    assert set(json.loads(runs[5].stdout)) >= {"FaceCount", "CollectionARN"}

    # A filled-in skeleton as input, with one value overridden on the command line.
    request = json.loads(runs[7].stdout)
    del request["ClientRequestToken"]
    request |= {"CollectionId": gallery.collection, "UserId": "from-the-file"}
    request_file = tmp_path / "create-user.json"
    request_file.write_text(json.dumps(request))
    created = run_one(
        *cli.commands(
            "create-user", "--cli-input-json", f"file://{request_file}",
            "--user-id", "from-the-command-line",
        )[1]
    )  # fmt: skip
    assert (created.returncode, created.stdout) == (0, b""), created
    users = client.list_users(CollectionId=gallery.collection)["Users"]
    user_ids = {user["UserId"] for user in users}
    client.delete_user(CollectionId=gallery.collection, UserId="from-the-command-line")
    assert "from-the-command-line" in user_ids
    assert "from-the-file" not in user_ids


# Debug, signing, TLS and timeouts


def test_debug_logs_on_stderr_and_no_sign_request_sends_no_signature(cli: Cli):
    aws, aws_unsigned, debug, unsigned = run_all(
        cli.commands("list-collections")[0],
        cli.commands("list-collections", "--no-sign-request")[0],
        cli.commands("list-collections", "--debug")[1],
        cli.commands("list-collections", "--debug", "--no-sign-request")[1],
    )
    assert aws.returncode == 0 and aws.stdout, aws
    assert (debug.returncode, debug.stdout) == (0, aws.stdout), debug
    assert (unsigned.returncode, unsigned.stdout) == (0, aws_unsigned.stdout)
    assert aws_unsigned.stdout == aws.stdout
    for run in (debug, unsigned):
        assert b" - DEBUG - " in run.stderr
        assert f"rekollect/{__version__}".encode() in run.stderr
        assert requests_made(run, "ListCollections") == 1
    assert b"AWS4-HMAC-SHA256" in debug.stderr
    assert b"AWS4-HMAC-SHA256" not in unsigned.stderr


@pytest.fixture(scope="module")
def tls_endpoint(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path]]:
    """A `rekollect serve` over HTTPS with a self-signed certificate, and the cert."""
    store = tmp_path_factory.mktemp("cli-tls")
    cert, key = self_signed_certificate(store)
    command = [*REKOLLECT, "serve", "--port", "0", "--data-dir", str(store)]
    command += ["--tls-cert", str(cert), "--tls-key", str(key)]
    with running_server(command, store / "server.log") as url:
        yield url, cert


def test_tls_needs_ca_bundle_or_no_verify_ssl(cli: Cli, tls_endpoint):
    url, cert = tls_endpoint
    https = Cli(url, cli.home)
    runs = run_all(
        *https.commands("list-collections", "--ca-bundle", str(cert)),
        *https.commands("list-collections", "--no-verify-ssl"),
        # One attempt: botocore retries a failed handshake, with backoff.
        *https.commands("list-collections", AWS_MAX_ATTEMPTS="1"),
    )
    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert_same(aws, rekollect)

    verified, unverified, refused = runs[1::2]
    assert verified.returncode == 0, verified
    assert json.loads(verified.stdout) == {"CollectionIds": [], "FaceModelVersions": []}
    assert (unverified.returncode, unverified.stdout) == (0, verified.stdout)
    assert b"InsecureRequestWarning" in unverified.stderr
    assert (refused.returncode, refused.stdout) == (255, b""), refused
    assert refused.stderr.startswith(f"\nSSL validation failed for {url}/ ".encode())
    assert b"CERTIFICATE_VERIFY_FAILED" in refused.stderr


@pytest.fixture
def silent_port() -> Iterator[Callable[[str], int]]:
    """Ports where nothing answers: at a "connect" port no connection completes (its
    backlog is full); a "read" port accepts connections and never replies."""
    sockets: list[socket.socket] = []
    holders: list[threading.Thread] = []
    stop = threading.Event()

    def hold(listener: socket.socket) -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                sockets.append(listener.accept()[0])
            except TimeoutError:
                continue

    def open_port(kind: str) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0 if kind == "connect" else 8)
        sockets.append(listener)
        port = int(listener.getsockname()[1])
        if kind == "connect":
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                sockets.append(filler)
        else:
            holders.append(threading.Thread(target=hold, args=(listener,)))
            holders[-1].start()
        return port

    yield open_port
    stop.set()
    for holder in holders:
        holder.join()
    for sock in sockets:
        sock.close()


def test_connect_and_read_timeouts_fail_fast_as_aws_does(cli: Cli, silent_port):
    connect_url = f"http://127.0.0.1:{silent_port('connect')}"
    read_url = f"http://127.0.0.1:{silent_port('read')}"
    options = ["--cli-connect-timeout", "1", "--cli-read-timeout", "1"]
    # One attempt, as retries would each wait again (with backoff).
    once = {"AWS_MAX_ATTEMPTS": "1"}
    started = time.monotonic()
    runs = run_all(
        *Cli(connect_url, cli.home).commands("list-collections", *options, **once),
        *Cli(read_url, cli.home).commands("list-collections", *options, **once),
    )
    elapsed_s = time.monotonic() - started

    for aws, rekollect in zip(runs[::2], runs[1::2], strict=True):
        assert_same(aws, rekollect)
    assert runs[1].returncode == runs[3].returncode == 255
    assert (
        runs[1].stderr
        == f'\nConnect timeout on endpoint URL: "{connect_url}/"\n'.encode()
    )
    assert runs[3].stderr == f'\nRead timeout on endpoint URL: "{read_url}/"\n'.encode()
    assert elapsed_s < 15


# With no endpoint: in-process, on the local data directory


def test_in_process_works_with_no_aws_configuration_and_shares_the_data_dir(
    tmp_path,
):
    env = rekollect_env(tmp_path)
    created = run_one(
        rekollect_command("create-collection", "--collection-id", "demo"), env
    )
    assert created.returncode == 0, created
    assert json.loads(created.stdout) == {
        "StatusCode": 200,
        "CollectionArn": f"aws:rekognition:{REGION}:{ACCOUNT}:collection/demo",
        "FaceModelVersion": "1.0",
    }
    assert not (tmp_path / ".aws").exists()

    with running_server(
        [*REKOLLECT, "serve", "--port", "0"], tmp_path / "log", env
    ) as url:
        seen, served = run_all(
            (aws_command("list-collections", "--endpoint-url", url), aws_env(tmp_path)),
            (
                rekollect_command(
                    "create-collection", "--collection-id", "served",
                    "--endpoint-url", url,
                ),
                env,
            ),
        )  # fmt: skip
        assert json.loads(seen.stdout)["CollectionIds"] == ["demo"], seen
        assert served.returncode == 0, served

        local = run_one(
            rekollect_command("list-collections", "--query", "CollectionIds"), env
        )
    assert json.loads(local.stdout) == ["demo", "served"], local


def test_in_process_default_data_dir_is_the_per_user_one(tmp_path):
    env = rekollect_env(tmp_path)
    del env["REKOLLECT_DATA_DIR"]
    created = run_one(
        rekollect_command("create-collection", "--collection-id", "a"), env
    )
    listed = run_one(
        rekollect_command(
            "list-collections", "--query", "CollectionIds", "--debug",
            "--no-sign-request",
        ),
        env,
    )  # fmt: skip

    assert created.returncode == 0, created
    databases = list(tmp_path.rglob("rekollect.db"))
    assert [path.parent.name for path in databases] == ["rekollect"]
    assert json.loads(listed.stdout) == ["a"], listed
    assert b" - DEBUG - " in listed.stderr
    assert b"AWS4-HMAC-SHA256" not in listed.stderr


def test_configured_endpoint_is_used_instead_of_the_data_dir(
    cli: Cli, gallery: Gallery, tmp_path
):
    config = tmp_path / "aws-config"
    config.write_text(f"[profile lab]\nendpoint_url = {cli.endpoint}\n")
    by_variable, by_profile = run_all(
        (
            rekollect_command("list-collections"),
            rekollect_env(tmp_path, AWS_ENDPOINT_URL_REKOGNITION=cli.endpoint),
        ),
        (
            rekollect_command("list-collections", "--profile", "lab"),
            rekollect_env(tmp_path, AWS_CONFIG_FILE=str(config)),
        ),
    )
    for run in (by_variable, by_profile):
        assert run.returncode == 0, run
        assert gallery.collection in json.loads(run.stdout)["CollectionIds"]
    assert not (tmp_path / "local-data").exists()


# Version, operations rekollect lacks, usage errors, help


def test_version_names_rekollect_and_the_aws_cli_it_runs(tmp_path):
    aws, rekollect = run_all(
        ([aws_executable(), "--version"], aws_env(tmp_path)),
        (rekollect_command("--version"), rekollect_env(tmp_path)),
    )
    assert aws.returncode == rekollect.returncode == 0
    aws_cli, *platform, botocore = aws.stdout.decode().split()
    assert aws_cli.startswith("aws-cli/") and botocore.startswith("botocore/")
    expected = [f"rekollect/{__version__}", *platform, aws_cli, botocore]
    assert rekollect.stdout.decode() == " ".join(expected) + "\n"


def test_operation_rekollect_lacks_is_a_clear_error(tmp_path):
    env = rekollect_env(tmp_path)
    runs = run_all(
        (
            rekollect_command(
                "start-face-search", "--collection-id", "c",
                "--video", "S3Object={Bucket=videos,Name=clip.mp4}",
            ),
            env,
        ),
        (
            rekollect_command(
                "create-stream-processor", "--name", "p",
                "--input", "KinesisVideoStream={Arn=arn:aws:kinesisvideo:"
                "us-east-1:123456789012:stream/in/1}",
                "--stream-processor-output", "KinesisDataStream={Arn=arn:aws:"
                "kinesis:us-east-1:123456789012:stream/out}",
                "--settings", "FaceSearch={CollectionId=c}",
                "--role-arn", "arn:aws:iam::123456789012:role/r",
            ),
            env,
        ),
    )  # fmt: skip
    for run, operation in zip(
        runs, ["StartFaceSearch", "CreateStreamProcessor"], strict=True
    ):
        assert (run.returncode, run.stdout) == (255, b""), run
        line = run.stderr.decode().strip()
        assert line.startswith(
            "An error occurred (UnsupportedOperationException) when calling the "
            f"{operation} operation: "
        ), run
        assert operation in line.split(": ", 1)[1]
        assert "\n" not in line


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["list-collections", "--bogus"], "Unknown options: --bogus"),
        (
            ["create-collection", "--collection-id", "c", "extra"],
            "Unknown options: extra",
        ),
        (
            ["create-collection"],
            "the following arguments are required: --collection-id",
        ),
        (["describe-colection"], "argument operation: Invalid choice"),
        (["list-collections", "--output", "yaml"], "argument --output: Invalid choice"),
    ],
    ids=["unknown-option", "extra-value", "missing", "operation", "output"],
)
def test_usage_error_exits_2_with_usage_and_touches_no_data(tmp_path, args, complaint):
    run = run_one(rekollect_command(*args), rekollect_env(tmp_path))
    assert (run.returncode, run.stdout) == (2, b""), run
    text = run.stderr.decode()
    assert text.startswith("usage: rekollect [options] <operation> [parameters]\n")
    assert complaint in text
    assert "Traceback" not in text and "aws" not in text
    assert not (tmp_path / "local-data").exists()


def test_help_prints_plain_text_without_a_terminal(tmp_path):
    env = rekollect_env(tmp_path)
    service, operation, aws, overview, no_args = run_all(
        (rekollect_command("help"), env),
        (rekollect_command("disassociate-faces", "help"), env),
        (aws_command("disassociate-faces", "help"), aws_env(tmp_path)),
        (rekollect_command("--help"), env),
        (rekollect_command(), env),
    )
    for run in (service, operation, overview):
        assert run.returncode == 0 and run.stderr == b"", run
        assert b"\x08" not in run.stdout
    assert service.stdout.startswith(b"REKOGNITION()")
    assert b"disassociate-faces" in service.stdout
    assert b"\n       --face-ids (list)\n" in operation.stdout
    assert b"--cli-read-timeout" in operation.stdout
    if shutil.which("groff") or shutil.which("mandoc"):
        # The same man page as `aws`'s, without its bold and underlining.
        assert operation.stdout == OVERSTRIKE.sub(b"", aws.stdout)
    assert b"serve" in overview.stdout
    assert no_args.returncode == 2 and no_args.stderr == overview.stdout
    assert not (tmp_path / "local-data").exists()
