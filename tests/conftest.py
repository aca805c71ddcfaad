"""Shared fixtures: a real `rekollect serve` process, and boto3 clients that reach
the service over HTTP or in-process, on one store.

Every fixture that touches the store runs on each backend of `backend`: SQLite in the
session's data directory, and PostgreSQL in a database of its own created through
`REKOLLECT_TEST_POSTGRES_URL` (dropped at the end; the role needs CREATEDB). Without
that variable the PostgreSQL cases skip, saying why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from sqlalchemy.pool import NullPool

from rekollect.config import load_settings
from rekollect.inprocess import service_client
from rekollect.service import Service
from rekollect.service.faces import add_faces
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from rekollect.storage.records import Scope
from tests import faces as made_up

REGION = "us-east-1"
ACCOUNT = "000000000000"
_LISTENING = re.compile(r"listening on (https?://\S+)")

POSTGRES_URL_VARIABLE = "REKOLLECT_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def postgres_admin_url() -> str:
    """The test PostgreSQL's URL, or skip the test saying how to get one."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}, e.g. "
            "postgresql+psycopg://rekollect:rekollect@127.0.0.1:5432/rekollect_test "
            "(a role with CREATEDB; .ci/run sets one up)"
        )
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg 3")
    return url


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, make_url

    from rekollect.storage.database import normalize_url

    admin_url = make_url(normalize_url(postgres_admin_url()))
    name = f"rekollect_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def store_url_for(backend: str, directory: Path) -> Iterator[str]:
    """A store of `backend`: SQLite in `directory`, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield sqlite_url(directory)
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        postgres_admin_url()
    return str(request.param)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rekollect-data")


@pytest.fixture(scope="session")
def database_url(backend: str, data_dir: Path) -> Iterator[str]:
    """The session's store: the data directory's SQLite file, or a PostgreSQL database."""
    yield from store_url_for(backend, data_dir)


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each backend for one test."""
    yield from store_url_for(backend, tmp_path)


def serve_args(data_dir: Path, database_url: str, *extra: str) -> list[str]:
    """The command line of `rekollect serve` on the store at `database_url`."""
    command = [sys.executable, "-m", "rekollect", "serve", "--port", "0"]
    command += ["--data-dir", str(data_dir)]
    if not database_url.startswith("sqlite"):
        command += ["--database-url", database_url]
    return command + list(extra)


@contextmanager
def running_server(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `command` (a `rekollect serve`) until the block ends; yields its URL
    (http:// or https://)."""
    log = log_path.open("w+")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield _wait_for_url(process, log_path)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def server(
    data_dir: Path, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The endpoint URL of a `rekollect serve` process on a free loopback port."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(serve_args(data_dir, database_url), log_path) as url:
        yield url


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
def service(database_url: str) -> Iterator[Service]:
    """The service core on the server's store, to add faces directly."""
    service = Service(open_database(database_url))
    yield service
    service.close()


@pytest.fixture(scope="session", params=["http", "inprocess"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def inprocess_clients(
    data_dir: Path, database_url: str
) -> Iterator[Callable[[], object]]:
    """Makes in-process clients on the session's store; their stores close at the end."""
    opened: list[Service] = []

    def make() -> object:
        settings = load_settings(data_dir, database_url=database_url, region=REGION)
        opened.append(settings.open_service(engine_workers=0))
        return service_client(opened[-1], region_name=REGION)

    yield make
    for service in opened:
        service.close()


@pytest.fixture(scope="session")
def rekognition(
    transport: str, server: str, inprocess_clients: Callable[[], object]
) -> object:
    """A real boto3 Rekognition client, over HTTP or in-process, on the same data."""
    if transport == "http":
        return http_client(server)
    return inprocess_clients()


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
