"""Shared fixtures: a real `rekollect serve` process, and boto3 clients that reach
the service over HTTP or in-process, on one data directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config

import rekollect
from rekollect.config import load_settings
from rekollect.service import Service
from rekollect.service.faces import add_faces
from rekollect.storage import open_database
from rekollect.storage.records import Scope
from tests import faces as made_up

REGION = "us-east-1"
ACCOUNT = "000000000000"
_LISTENING = re.compile(r"listening on (http://\S+)")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rekollect-data")


@pytest.fixture(scope="session")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a `rekollect serve` process on a free loopback port."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = log_path.open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rekollect",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield _wait_for_url(process, log_path)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_for_url(process: subprocess.Popen[bytes], log_path: Path) -> str:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        match = _LISTENING.search(text)
        if match and "Application startup complete" in text:
            return match.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"rekollect serve exited early:\n{text}")
        time.sleep(0.05)
    raise RuntimeError(f"rekollect serve did not start:\n{log_path.read_text()}")


def http_client(endpoint: str, region_name: str = REGION, **config: object) -> object:
    """A plain boto3 Rekognition client for `endpoint`, with dummy credentials."""
    return boto3.client(
        "rekognition",
        endpoint_url=endpoint,
        region_name=region_name,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


@pytest.fixture(scope="session")
def service(data_dir: Path) -> Service:
    """The service core on the server's data directory, to add faces directly."""
    settings = load_settings(data_dir)
    return Service(open_database(settings.database_url))


@pytest.fixture(scope="session", params=["http", "inprocess"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def rekognition(transport: str, server: str, data_dir: Path) -> object:
    """A real boto3 Rekognition client, over HTTP or in-process, on the same data."""
    if transport == "http":
        return http_client(server)
    return rekollect.client(data_dir, region_name=REGION)


@pytest.fixture
def collection_id(rekognition: object) -> Iterator[str]:
    """A fresh collection, deleted afterwards."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    rekognition.create_collection(CollectionId=name)  # type: ignore[attr-defined]
    yield name
    try:
        rekognition.delete_collection(CollectionId=name)  # type: ignore[attr-defined]
    except rekognition.exceptions.ResourceNotFoundException:  # type: ignore[attr-defined]
        pass


FaceMaker = Callable[..., list[str]]


@pytest.fixture
def make_faces(service: Service) -> FaceMaker:
    """Store faces of one made-up person in a collection; returns their face ids."""

    def make(
        collection: str,
        count: int = 1,
        *,
        person: np.ndarray | None = None,
        region: str = REGION,
    ) -> list[str]:
        center = made_up.person() if person is None else person
        new = [made_up.new_face(made_up.face_of(center)) for _ in range(count)]
        add_faces(service, Scope(ACCOUNT, region), collection, new)
        return [face.face_id for face in new]

    return make


def aws_cli_env(home: Path) -> dict[str, str]:
    """Environment for the aws CLI: dummy credentials, no user configuration."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
        "HOME": str(home),
    }


def aws_executable() -> str:
    return str(Path(sys.executable).with_name("aws"))
