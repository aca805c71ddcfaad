"""`rekollect status`, `configure`, `export` and `restore`, run as real subprocesses
on real stores (SQLite and PostgreSQL), checked through real boto3 clients."""

from __future__ import annotations

import base64
import configparser
import gzip
import json
import re
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rekollect.inprocess import service_client
from rekollect.service import Service, associations, collection, users
from rekollect.service.faces import add_faces
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from rekollect.storage.migrate import current_revision
from rekollect.storage.records import Scope
from tests import faces as made_up
from tests.cli import cli_env, closed_port_url, rekollect
from tests.conftest import (
    ACCOUNT,
    REGION,
    fresh_postgres_database,
    http_client,
    running_server,
    serve_args,
)

SCOPE = Scope(ACCOUNT, REGION)
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OBAMA = PHOTOS / "face-recognition-examples" / "examples__obama-480p.jpg"


@contextmanager
def store(url: str) -> Iterator[Service]:
    service = Service(open_database(url))
    try:
        yield service
    finally:
        service.close()


@contextmanager
def client(url: str) -> Iterator[Any]:
    """A boto3 client served in this process from the store at `url`."""
    with store(url) as service:
        yield service_client(service, region_name=REGION)


def fill(url: str, collection_id: str) -> dict[str, list[str]]:
    """Two faces each of ada, bob (both users) and cy (no user); tags; by person,
    the face ids."""
    face_ids: dict[str, list[str]] = {}
    with store(url) as service:
        collection.create_collection(
            service, SCOPE, collection_id=collection_id, tags={"team": "a"}
        )
        for name in ("ada", "bob", "cy"):
            center = made_up.person()
            external = None if name == "cy" else name
            new = [made_up.new_face(made_up.face_of(center), external) for _ in "12"]
            add_faces(service, SCOPE, collection_id, new)
            face_ids[name] = [face.face_id for face in new]
        for name in ("ada", "bob"):
            users.create_user(service, SCOPE, collection_id=collection_id, user_id=name)
            associations.associate_faces(
                service,
                SCOPE,
                collection_id=collection_id,
                user_id=name,
                face_ids=face_ids[name],
            )
    return face_ids


def export_family(
    env: dict[str, str], path: Path, url: str
) -> subprocess.CompletedProcess[str]:
    """`rekollect export` of the collection `fill` made, to `path`."""
    return rekollect(
        env,
        "export",
        "--collection-id",
        "family",
        "-o",
        str(path),
        "--database-url",
        url,
    )


def state(url: str, collection_id: str) -> dict[str, Any]:
    """What a client sees of a collection (less its ARN, which names it)."""
    with client(url) as rekognition:
        described = rekognition.describe_collection(CollectionId=collection_id)
        arn = described.pop("CollectionARN")
        described.pop("ResponseMetadata")
        return {
            "collection": described,
            "faces": rekognition.list_faces(CollectionId=collection_id)["Faces"],
            "users": rekognition.list_users(CollectionId=collection_id)["Users"],
            "tags": rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"],
        }


def export_lines(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        records = [json.loads(line) for line in file]
    records[0].pop("exported_at")
    return records


# --- status -------------------------------------------------------------------------


def test_status_of_a_new_data_directory_creates_nothing(tmp_path: Path) -> None:
    env = cli_env(tmp_path)

    done = rekollect(env, "status", "--endpoint-url", closed_port_url())

    assert done.returncode == 0, done.stderr
    assert f"Data directory: {tmp_path / 'data'} (not created yet)" in done.stdout
    assert "No database yet" in done.stdout
    assert re.search(r"Server at http://127\.0\.0\.1:\d+: no answer", done.stdout)
    assert not (tmp_path / "data").exists()


def test_status_counts_faces_and_users_of_each_collection_and_finds_the_server(
    backend: str, store_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path)
    before = rekollect(env, "status", "--database-url", store_url)
    assert before.returncode == 0, before.stderr
    if backend == "sqlite":
        assert "No database yet" in before.stdout
        assert not Path(store_url.removeprefix("sqlite:///")).exists()
    else:
        assert "Schema: none yet (an empty database)." in before.stdout
        database = open_database(store_url, migrate=False)
        with database.read() as conn:
            assert current_revision(conn) is None  # status migrated nothing
        database.close()

    fill(store_url, "family")
    with store(store_url) as service:
        collection.create_collection(
            service, Scope(ACCOUNT, "eu-west-1"), collection_id="abroad"
        )
    log = tmp_path / "server.log"
    with running_server(serve_args(tmp_path, store_url), log) as url:
        done = rekollect(
            env, "status", "--database-url", store_url, "--endpoint-url", url
        )

    assert done.returncode == 0, done.stderr
    assert "Schema: revision" in done.stdout and "(current)" in done.stdout
    assert "2 collection(s), 6 face(s), 2 user(s)" in done.stdout
    assert re.search(r"000000000000\W+us-east-1\W+family\W+1\.0\W+6\W+2\W", done.stdout)
    assert re.search(r"000000000000\W+eu-west-1\W+abroad\W+1\.0\W+0\W+0\W", done.stdout)
    assert f"Server at {url}: answers (1 collection(s) in us-east-1)" in done.stdout
    if backend == "postgresql":
        assert "***@" in done.stdout
        password = re.search(r"://[^:/]+:([^@]+)@", store_url)
        assert password and f":{password.group(1)}@" not in done.stdout


# --- configure ----------------------------------------------------------------------


def test_configure_set_get_list_and_unset_a_setting(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    settings_file = Path(env["REKOLLECT_CONFIG_FILE"])

    assert rekollect(env, "configure", "set", "region", "eu-west-2").returncode == 0
    got = rekollect(env, "configure", "get", "region")
    listed = rekollect(env, "configure", "list")

    assert got.stdout == "eu-west-2\n"
    assert "region = eu-west-2" in listed.stdout
    assert "# engine (not set)" in listed.stdout
    parser = configparser.ConfigParser()
    parser.read(settings_file)
    assert dict(parser["rekollect"]) == {"region": "eu-west-2"}

    assert rekollect(env, "configure", "unset", "region").returncode == 0
    assert rekollect(env, "configure", "get", "region").returncode == 1


def test_configure_refuses_a_bad_value_and_keeps_the_file(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    rekollect(env, "configure", "set", "account_id", "123456789012")

    done = rekollect(env, "configure", "set", "account_id", "12345")

    assert done.returncode == 1
    assert done.stderr == "rekollect: The account id must be 12 digits, not '12345'.\n"
    got = rekollect(env, "configure", "get", "account_id")
    assert got.stdout == "123456789012\n"


def test_configured_data_dir_is_where_operations_store(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    del env["REKOLLECT_DATA_DIR"]
    elsewhere = tmp_path / "elsewhere"

    rekollect(env, "configure", "set", "data_dir", str(elsewhere))
    made = rekollect(env, "create-collection", "--collection-id", "kept")
    done = rekollect(env, "status", "--endpoint-url", closed_port_url())

    assert made.returncode == 0, made.stderr
    assert (elsewhere / "rekollect.db").is_file()
    assert f"Data directory: {elsewhere}\n" in done.stdout
    assert re.search(r"us-east-1\W+kept\W", done.stdout)


def test_configure_profile_writes_aws_files_and_keeps_other_sections(
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path)
    config_file = Path(env["AWS_CONFIG_FILE"])
    credentials_file = Path(env["AWS_SHARED_CREDENTIALS_FILE"])
    config_file.write_text(
        "[default]\nregion = ap-south-1\n\n"
        "[profile other]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 10\n"
    )
    credentials_file.write_text("[other]\naws_access_key_id = OTHER\n")

    done = rekollect(
        env,
        "configure",
        "profile",
        "remote",
        "--endpoint-url",
        "http://10.0.0.5:9860",
        "--region",
        "eu-central-1",
        "--access-key-id",
        "AKID",
        "--secret-access-key",
        "SECRET",
    )

    assert done.returncode == 0, done.stderr
    config = configparser.ConfigParser(interpolation=None)
    config.read(config_file)
    assert dict(config["profile remote"]) == {
        "endpoint_url": "http://10.0.0.5:9860",
        "region": "eu-central-1",
    }
    assert dict(config["default"]) == {"region": "ap-south-1"}
    assert config["profile other"]["region"] == "eu-west-1"
    assert config["profile other"]["s3"].split() == [
        "max_concurrent_requests",
        "=",
        "10",
    ]
    credentials = configparser.ConfigParser(interpolation=None)
    credentials.read(credentials_file)
    assert dict(credentials["remote"]) == {
        "aws_access_key_id": "AKID",
        "aws_secret_access_key": "SECRET",
    }
    assert dict(credentials["other"]) == {"aws_access_key_id": "OTHER"}
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600

    shown = rekollect(env, "configure", "profile", "remote")
    assert "endpoint_url = http://10.0.0.5:9860" in shown.stdout


def test_configure_profile_refuses_an_endpoint_that_is_no_url(tmp_path: Path) -> None:
    env = cli_env(tmp_path)

    done = rekollect(env, "configure", "profile", "x", "--endpoint-url", "localhost")

    assert done.returncode == 1
    assert "is not an http:// or https:// URL" in done.stderr
    assert not Path(env["AWS_CONFIG_FILE"]).exists()


def test_operations_with_a_configured_profile_go_to_its_server(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    remote = tmp_path / "remote"
    remote.mkdir()
    log = tmp_path / "server.log"
    with running_server(serve_args(remote, sqlite_url(remote)), log) as url:
        server: Any = http_client(url)
        server.create_collection(CollectionId="on-the-server")
        rekollect(env, "configure", "profile", "remote", "--endpoint-url", url)

        through_profile = rekollect(env, "--profile", "remote", "list-collections")
        local = rekollect(env, "list-collections")

    assert through_profile.returncode == 0, through_profile.stderr
    assert json.loads(through_profile.stdout)["CollectionIds"] == ["on-the-server"]
    assert json.loads(local.stdout)["CollectionIds"] == []


# --- export and restore -------------------------------------------------------------


def test_export_and_restore_round_trip_sqlite_postgresql_and_back(
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sqlite_a, sqlite_b = sqlite_url(tmp_path / "a"), sqlite_url(tmp_path / "b")
    face_ids = fill(sqlite_a, "family")
    original = state(sqlite_a, "family")
    first, second = tmp_path / "family.jsonl.gz", tmp_path / "again.jsonl"

    exported = export_family(env, first, sqlite_a)
    assert exported.returncode == 0, exported.stderr
    with fresh_postgres_database() as postgres:
        restored = rekollect(env, "restore", str(first), "--database-url", postgres)
        assert restored.returncode == 0, restored.stderr
        assert state(postgres, "family") == original
        with client(postgres) as rekognition:
            matches = rekognition.search_faces(
                CollectionId="family", FaceId=face_ids["ada"][0]
            )["FaceMatches"]
            assert [m["Face"]["FaceId"] for m in matches] == [face_ids["ada"][1]]
            found = rekognition.search_users(
                CollectionId="family", FaceId=face_ids["bob"][1]
            )["UserMatches"]
            assert [match["User"]["UserId"] for match in found] == ["bob"]
        again = export_family(env, second, postgres)
        assert again.returncode == 0, again.stderr

    back = rekollect(
        env,
        "restore",
        str(second),
        "--collection-id",
        "family-copy",
        "--database-url",
        sqlite_b,
    )
    assert back.returncode == 0, back.stderr
    assert state(sqlite_b, "family-copy") == original
    assert export_lines(second) == export_lines(first)


def test_export_writes_every_member_and_the_embeddings(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    url = sqlite_url(tmp_path)
    face_ids = fill(url, "family")
    with store(url) as service, service.database.read() as conn:
        from rekollect.storage import repository as repo

        family = repo.get_collection(conn, SCOPE, "family")
        assert family is not None
        pk = repo.get_faces(conn, family.pk, [face_ids["ada"][0]])[
            face_ids["ada"][0]
        ].pk
        vector = repo.face_embeddings(conn, [pk])[pk]

    done = rekollect(env, "export", "--collection-id", "family", "--database-url", url)

    assert done.returncode == 0, done.stderr
    header, *records = [json.loads(line) for line in done.stdout.splitlines()]
    assert header["format"] == "rekollect-collection" and header["version"] == 1
    assert header["collection"]["Tags"] == {"team": "a"}
    assert (header["users"], header["faces"]) == (2, 6)
    assert [r["user"]["UserId"] for r in records if "user" in r] == ["ada", "bob"]
    faces = {r["face"]["FaceId"]: r["face"] for r in records if "face" in r}
    ada = faces[face_ids["ada"][0]]
    assert ada["UserId"] == "ada" and ada["ExternalImageId"] == "ada"
    assert faces[face_ids["cy"][0]]["UserId"] is None
    assert base64.b64decode(ada["Embedding"]) == vector.astype("<f4").tobytes()


def test_restore_refuses_a_collection_that_has_faces_or_users(
    backend: str, store_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path)
    fill(store_url, "family")
    export = tmp_path / "family.jsonl"
    export_family(env, export, store_url)
    with store(store_url) as service:
        collection.create_collection(service, SCOPE, collection_id="taken")
        users.create_user(service, SCOPE, collection_id="taken", user_id="zed")

    into_taken = rekollect(
        env,
        "restore",
        str(export),
        "--collection-id",
        "taken",
        "--database-url",
        store_url,
    )
    into_itself = rekollect(env, "restore", str(export), "--database-url", store_url)

    assert into_taken.returncode == 1
    assert into_taken.stderr.startswith(
        "rekollect: The collection taken already holds 0 faces and 1 users"
    )
    assert into_itself.returncode == 1
    assert "The collection family already holds 6 faces and 2 users" in (
        into_itself.stderr
    )
    taken = state(store_url, "taken")
    assert (taken["collection"]["FaceCount"], taken["collection"]["UserCount"]) == (
        0,
        1,
    )


def test_restore_of_a_damaged_export_changes_nothing(
    backend: str, store_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path)
    fill(store_url, "family")
    export = tmp_path / "family.jsonl"
    export_family(env, export, store_url)
    lines = export.read_text().splitlines(keepends=True)
    cut_short = tmp_path / "cut.jsonl"
    cut_short.write_text("".join(lines[:-1]))
    last = json.loads(lines[-1])
    last["face"]["Embedding"] = "not base64!"
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text("".join(lines[:-1]) + json.dumps(last) + "\n")
    with store(store_url) as service:
        collection.create_collection(service, SCOPE, collection_id="empty")

    new = rekollect(
        env,
        "restore",
        str(cut_short),
        "--collection-id",
        "new",
        "--database-url",
        store_url,
    )
    into_empty = rekollect(
        env,
        "restore",
        str(corrupt),
        "--collection-id",
        "empty",
        "--database-url",
        store_url,
    )

    assert new.returncode == 1 and "is the file cut short?" in new.stderr
    assert into_empty.returncode == 1 and f"Line {len(lines)}:" in into_empty.stderr
    with client(store_url) as rekognition:
        assert rekognition.list_collections()["CollectionIds"] == ["family", "empty"]
        assert rekognition.list_faces(CollectionId="empty")["Faces"] == []
        assert rekognition.list_users(CollectionId="empty")["Users"] == []

    whole = rekollect(
        env,
        "restore",
        str(export),
        "--collection-id",
        "empty",
        "--database-url",
        store_url,
    )
    assert whole.returncode == 0, whole.stderr
    assert state(store_url, "empty")["collection"]["FaceCount"] == 6


@pytest.mark.skipif(not OBAMA.is_file(), reason=f"face photo not found at {OBAMA}")
def test_a_running_server_finds_faces_restored_by_another_process(
    backend: str, store_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path)
    face_ids = fill(store_url, "family")
    export = tmp_path / "family.jsonl.gz"
    export_family(env, export, store_url)
    log = tmp_path / "server.log"
    with running_server(serve_args(tmp_path, store_url), log) as url:
        rekognition: Any = http_client(url)
        rekognition.create_collection(CollectionId="copy")
        # The server now holds the (empty) index of "copy" in memory.
        empty = rekognition.search_faces_by_image(
            CollectionId="copy", Image={"Bytes": OBAMA.read_bytes()}
        )
        assert empty["FaceMatches"] == []

        done = rekollect(
            env,
            "restore",
            str(export),
            "--collection-id",
            "copy",
            "--database-url",
            store_url,
        )
        assert done.returncode == 0, done.stderr
        matches = rekognition.search_faces(
            CollectionId="copy", FaceId=face_ids["cy"][1]
        )

    assert [m["Face"]["FaceId"] for m in matches["FaceMatches"]] == [face_ids["cy"][0]]
