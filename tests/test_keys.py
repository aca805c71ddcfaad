"""`rekollect keys` and the safe defaults of `rekollect serve`: secrets are shown once
and stored sealed with a master key kept outside the data directory; the server
refuses to listen beyond loopback without keys (unless told it is a lab, which it
then warns about), accepts anything on loopback while no key exists and says so,
and needs a signature for every request once keys exist. The in-process client
reads the store directly and needs none."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

import rekollect
from rekollect.cli import keys as keys_cli
from rekollect.errors import KeyStoreError, RekollectError
from rekollect.protocol import model
from rekollect.security.keystore import KeyRing, count_keys
from rekollect.security.sealing import load_master_key, load_or_create_master_key
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from rekollect.storage.schema import access_keys
from tests.conftest import running_server, serve_args
from tests.test_protocol import CONTENT_TYPE, assert_aws_error
from tests.test_sigv4 import client_for, make_key

UNSIGNED = {
    "Content-Type": CONTENT_TYPE,
    "X-Amz-Target": "RekognitionService.ListCollections",
}


def run_keys(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`rekollect keys *argv` as the command line runs it: (status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="rekollect")
    keys_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["keys", *argv])
    args.parser = parser
    try:
        status = args.run(args)
    except RekollectError as error:
        captured = capsys.readouterr()
        return 1, captured.out, captured.err + f"rekollect: {error}\n"
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> list[str]:
    """`--database-url` and `--master-key-file` options of a fresh store."""
    return [
        "--database-url",
        store_url,
        "--master-key-file",
        str(tmp_path / "cfg" / "mk"),
    ]


def test_create_prints_the_secret_once_and_list_never_shows_it(capsys, store):
    status, out, err = run_keys(
        capsys, "create", "--account-id", "123456789012", "--user", "ci", *store
    )
    assert status == 0, err
    created = json.loads(out)["AccessKey"]
    assert (
        created["AccessKeyId"].startswith("AKRK") and len(created["AccessKeyId"]) == 20
    )
    assert len(created["SecretAccessKey"]) >= 40
    assert created["UserArn"] == "arn:aws:iam::123456789012:user/ci"
    assert created["Policy"] is None and created["Temporary"] is False
    assert "shown only now" in err

    status, out, _ = run_keys(capsys, "list", *store)
    assert status == 0
    listed = json.loads(out)["AccessKeys"]
    assert [k["AccessKeyId"] for k in listed] == [created["AccessKeyId"]]
    assert created["SecretAccessKey"] not in out
    assert "SecretAccessKey" not in listed[0]


def test_temporary_keys_get_a_session_token_and_an_expiration(capsys, store):
    status, out, err = run_keys(
        capsys, "create", "--temporary", "--expires-in", "60", *store
    )
    assert status == 0, err
    created = json.loads(out)["AccessKey"]
    assert created["AccessKeyId"].startswith("ASRK")
    assert len(created["SessionToken"]) > 40 and created["Temporary"] is True
    assert "Expiration" in created

    status, _, err = run_keys(capsys, "create", "--expires-in", "60", *store)
    assert status == 1 and "--temporary" in err


def test_delete_removes_a_key_and_an_unknown_id_is_an_error(capsys, store):
    _, out, _ = run_keys(capsys, "create", *store)
    key_id = json.loads(out)["AccessKey"]["AccessKeyId"]
    assert run_keys(capsys, "delete", key_id, *store)[:2] == (
        0,
        f"Deleted access key {key_id}.\n",
    )
    assert json.loads(run_keys(capsys, "list", *store)[1]) == {"AccessKeys": []}
    status, _, err = run_keys(capsys, "delete", key_id, *store)
    assert status == 1 and f"There is no access key {key_id}" in err


def test_policy_is_checked_when_the_key_is_created(capsys, store, tmp_path):
    policy = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "rekognition:Search*",
            "Resource": "*",
        },
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    for given in (str(path), f"file://{path}", json.dumps(policy)):
        status, out, err = run_keys(capsys, "create", "--policy", given, *store)
        assert status == 0, err
        assert (
            json.loads(out)["AccessKey"]["Policy"]["Statement"] == policy["Statement"]
        )

    bad = {
        "Statement": {
            "Effect": "Allow",
            "Action": "rekognition:Serch*",
            "Resource": "*",
        }
    }
    status, out, err = run_keys(capsys, "create", "--policy", json.dumps(bad), *store)
    assert status == 1 and out == ""
    assert "matches no Rekognition operation" in err
    assert len(json.loads(run_keys(capsys, "list", *store)[1])["AccessKeys"]) == 3


def test_secrets_are_not_in_the_data_directory(capsys, tmp_path):
    data_dir = tmp_path / "data"
    master = tmp_path / "config" / "master.key"
    options = ["--data-dir", str(data_dir), "--master-key-file", str(master)]
    _, out, _ = run_keys(capsys, "create", "--temporary", *options)
    created = json.loads(out)["AccessKey"]

    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert created["AccessKeyId"].encode() in stored
    for secret in (created["SecretAccessKey"], created["SessionToken"]):
        assert secret.encode() not in stored
    assert not master.is_relative_to(data_dir)


def test_the_master_key_file_is_private_and_refused_when_it_is_not(tmp_path):
    path = tmp_path / "config" / "master.key"
    key = load_or_create_master_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_master_key(path).key_id == key.key_id

    path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        load_master_key(path)


def test_keys_do_not_open_with_another_master_key_or_once_their_row_is_edited(tmp_path):
    master = tmp_path / "master.key"
    new = make_key(tmp_path, master)
    database = open_database(sqlite_url(tmp_path))
    try:
        ring = KeyRing(database, master, model.operation_names())
        assert ring.load() == 1
        assert ring.find(new.key.access_key_id).secret == new.secret  # type: ignore[union-attr]

        other = KeyRing(database, tmp_path / "other.key", model.operation_names())
        load_or_create_master_key(tmp_path / "other.key")
        with pytest.raises(KeyStoreError, match="not the one they were created with"):
            other.load()
        assert other.find(new.key.access_key_id) is None

        with database.write() as conn:
            conn.execute(update(access_keys).values(account_id="999999999999"))
            assert conn.execute(select(access_keys.c.account_id)).scalar() == (
                "999999999999"
            )
        edited = KeyRing(database, master, model.operation_names())
        assert edited.find(new.key.access_key_id) is None
        assert edited.count() == 1
    finally:
        database.close()


# Safe defaults of `serve`


def _serve(tmp_path: Path, *extra: str) -> list[str]:
    return serve_args(tmp_path, sqlite_url(tmp_path)) + [
        "--master-key-file",
        str(tmp_path / "master.key"),
        *extra,
    ]


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def test_serve_refuses_a_remote_address_without_keys(tmp_path):
    done = subprocess.run(
        _serve(tmp_path, "--host", "0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Refusing to listen on 0.0.0.0 without authentication" in done.stderr
    assert "--allow-unauthenticated-remote" in done.stderr


def test_serve_on_a_remote_address_for_a_lab_warns_and_runs_open(tmp_path):
    log = tmp_path / "server.log"
    command = _serve(tmp_path, "--host", "0.0.0.0", "--allow-unauthenticated-remote")
    with running_server(command, log) as url:
        local = f"http://127.0.0.1:{_port(url)}"
        assert httpx.post(local, headers=UNSIGNED, content=b"{}").status_code == 200
        text = log.read_text()
    warnings = [line for line in text.splitlines() if " WARNING " in line]
    assert any("authentication: off on 0.0.0.0" in line for line in warnings)


def test_serve_on_a_remote_address_with_keys_needs_signatures(tmp_path):
    key = make_key(tmp_path, tmp_path / "master.key")
    log = tmp_path / "server.log"
    with running_server(_serve(tmp_path, "--host", "0.0.0.0"), log) as url:
        local = f"http://127.0.0.1:{_port(url)}"
        refused = httpx.post(local, headers=UNSIGNED, content=b"{}")
        assert_aws_error(refused, "MissingAuthenticationTokenException")
        assert "CollectionIds" in client_for(local, key).list_collections()
        assert "authentication: on; 1 access key(s)" in log.read_text()


def test_serve_on_loopback_without_keys_accepts_anything_and_says_so(tmp_path):
    log = tmp_path / "server.log"
    with running_server(_serve(tmp_path), log) as url:
        assert httpx.post(url, headers=UNSIGNED, content=b"{}").status_code == 200
        forged = UNSIGNED | {
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20200101/eu-west-1/"
            f"rekognition/aws4_request, SignedHeaders=host, Signature={'0' * 64}"
        }
        assert httpx.post(url, headers=forged, content=b"{}").status_code == 200
        text = log.read_text()
    line = (
        "authentication: off; no access keys exist, so every request is accepted, "
        "unsigned or with any signature (loopback only; `rekollect keys create` "
        "turns it on)"
    )
    assert line in text
    assert line in (Path(__file__).parents[1] / "docs" / "security.md").read_text()


def test_serve_refuses_to_start_when_the_keys_do_not_open(tmp_path):
    make_key(tmp_path, tmp_path / "elsewhere.key")
    load_or_create_master_key(tmp_path / "master.key")
    done = subprocess.run(
        _serve(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "do not open with the master key" in done.stderr


def test_the_in_process_client_needs_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("REKOLLECT_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    make_key(tmp_path, tmp_path / "master.key")
    database = open_database(sqlite_url(tmp_path))
    assert count_keys(database) == 1
    database.close()
    rekognition = rekollect.client(tmp_path)
    rekognition.create_collection(CollectionId="local")
    assert rekognition.list_collections()["CollectionIds"] == ["local"]


def test_workers_verify_signatures_too(tmp_path):
    key = make_key(tmp_path, tmp_path / "master.key")
    log = tmp_path / "server.log"
    with running_server(_serve(tmp_path, "--workers", "2"), log) as url:
        refused = httpx.post(url, headers=UNSIGNED, content=b"{}")
        assert_aws_error(refused, "MissingAuthenticationTokenException")
        rekognition = client_for(url, key)
        for _ in range(6):
            assert "CollectionIds" in rekognition.list_collections()


def test_master_key_file_comes_from_the_environment(monkeypatch, tmp_path):
    from rekollect.config import load_settings

    monkeypatch.setenv("REKOLLECT_MASTER_KEY_FILE", str(tmp_path / "mk"))
    settings = load_settings(tmp_path)
    assert settings.master_key_file == tmp_path / "mk"
    assert settings.environment()["REKOLLECT_MASTER_KEY_FILE"] == str(tmp_path / "mk")
    monkeypatch.delenv("REKOLLECT_MASTER_KEY_FILE")
    default = load_settings(tmp_path).master_key_file
    assert default.name == "master.key" and not default.is_relative_to(tmp_path)
    assert os.fspath(default).endswith(os.path.join("rekollect", "master.key"))
