"""`rekollect import` on real photos, run as a real subprocess (some under a
pseudo-terminal, to see the progress bar), checked through real boto3 clients.

The photos are ../shared/datasets/face-recognition-examples (public figures, labelled
in its LABELS.csv); the module skips when that folder is absent. Each test arranges
them into one folder per person.
"""

from __future__ import annotations

import csv
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rekollect.inprocess import service_client
from rekollect.service import Service
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from tests.cli import cli_env, rekollect
from tests.conftest import REGION, http_client, running_server, serve_args

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PHOTOS = DATASETS / "face-recognition-examples"

pytestmark = pytest.mark.skipif(
    not (PHOTOS / "LABELS.csv").is_file(),
    reason=f"labelled photos not found at {PHOTOS}",
)

KIT = "examples__knn_examples__train__kit_harington__john1.jpeg"
TWO_PEOPLE = "extra/examples__two_people.jpg"
OBAMA_PROBE = "extra/examples__obama-720p.jpg"  # not among the labelled photos
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")


def labels() -> dict[str, str]:
    with (PHOTOS / "LABELS.csv").open(newline="") as file:
        return {row["file"]: row["identity"] for row in csv.DictReader(file)}


def arrange(root: Path, *, troubles: bool = False) -> dict[str, str]:
    """A folder per person holding (links to) their photos; by `<folder>/<file>`, who
    is really in each photo. `troubles` adds what an import must refuse."""
    truth = {}
    for name, identity in labels().items():
        (root / identity).mkdir(parents=True, exist_ok=True)
        (root / identity / name).symlink_to(PHOTOS / name)
        truth[f"{identity}/{name}"] = identity
    if troubles:
        # Kit Harington filed under Obama, after Obama's own photos.
        (root / "barack_obama" / "zz_misfiled.jpeg").symlink_to(PHOTOS / KIT)
        truth["barack_obama/zz_misfiled.jpeg"] = "kit_harington"
        (root / "joe_biden" / "two_people.jpg").symlink_to(PHOTOS / TWO_PEOPLE)
        (root / "joe_biden" / "notes.txt").write_text("not a photo\n")
        (root / "bad name!").mkdir()
        (root / "bad name!" / "photo.jpg").symlink_to(PHOTOS / KIT)
        (root / "stray.jpeg").symlink_to(PHOTOS / KIT)
    return truth


@contextmanager
def client(url: str) -> Iterator[Any]:
    service = Service(open_database(url))
    try:
        yield service_client(service, region_name=REGION)
    finally:
        service.close()


def all_faces(rekognition: Any, collection_id: str) -> list[dict[str, Any]]:
    pages = rekognition.get_paginator("list_faces").paginate(CollectionId=collection_id)
    return [face for page in pages for face in page["Faces"]]


def face_key(face: dict[str, Any]) -> tuple[Any, ...]:
    """A face as a clean run would store it too (face ids are random)."""
    box = face["BoundingBox"]
    return (face.get("UserId"), face["ExternalImageId"], face["ImageId"], *box.values())


def table_rows(text: str, title: str) -> list[list[str]]:
    """The body rows of the rich table under `title`, as lists of cells."""
    lines = text[text.index(title) :].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.startswith("│"):
            if rows:
                break
            continue
        rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def run_in_terminal(
    args: list[str], env: dict[str, str], *, interrupt_at: int | None = None
) -> tuple[int, str]:
    """Run `rekollect *args` on a pseudo-terminal; its exit status and what it showed.

    With `interrupt_at`, send SIGINT (Ctrl-C) once the progress bar shows that many
    photos done."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rekollect", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env | {"TERM": "xterm-256color"},
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if not select.select([controller], [], [], 1)[0]:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its terminal
                break
            if not data:
                break
            shown += data
            if interrupt_at is not None and done_count(shown) >= interrupt_at:
                process.send_signal(signal.SIGINT)
                interrupt_at = None
        return process.wait(timeout=60), plain(shown)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


def plain(data: bytes) -> str:
    return ESCAPES.sub("", data.decode("utf-8", "replace")).replace("\r\n", "\n")


def done_count(shown: bytes) -> int:
    counts = re.findall(r"(\d+)/\d+ +\d+%", plain(shown))
    return int(counts[-1]) if counts else 0


def import_args(photos: Path, store_url: str) -> list[str]:
    return [
        "import",
        str(photos),
        "--collection-id",
        "family",
        "--database-url",
        store_url,
    ]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[Any]]:
    """The exit status and faces of one uninterrupted import of the labelled photos."""
    root = tmp_path_factory.mktemp("clean")
    arrange(root / "photos")
    url = sqlite_url(root)
    done = rekollect(cli_env(root), *import_args(root / "photos", url))
    with client(url) as rekognition:
        return done.returncode, sorted(map(face_key, all_faces(rekognition, "family")))


def test_import_enrols_each_person_and_reports_what_it_refused(
    backend: str, store_url: str, tmp_path: Path
) -> None:
    truth = arrange(tmp_path / "photos", troubles=True)
    env = cli_env(tmp_path)

    done = rekollect(env, *import_args(tmp_path / "photos", store_url))

    assert done.returncode == 1, done.stdout + done.stderr  # some photos refused
    rows = table_rows(done.stdout, "Not imported")
    skipped = {(user, photo): reason for user, photo, reason in rows}
    assert skipped.pop(("-", "stray.jpeg")) == "not in a user folder"
    assert skipped.pop(("bad name!", "(folder)")).startswith("not a valid UserId")
    assert skipped.pop(("joe_biden", "notes.txt")).startswith("not a JPEG or PNG image")
    assert skipped.pop(("joe_biden", "two_people.jpg")).startswith(
        "group photo: 2 faces"
    )
    assert skipped.pop(("barack_obama", "zz_misfiled.jpeg")).startswith(
        "association refused: LOW_MATCH_CONFIDENCE"
    )

    people = set(labels().values())
    with client(store_url) as rekognition:
        listed = rekognition.list_users(CollectionId="family")["Users"]
        faces = all_faces(rekognition, "family")
        probe = (PHOTOS / OBAMA_PROBE).read_bytes()
        found = rekognition.search_users_by_image(
            CollectionId="family", Image={"Bytes": probe}
        )["UserMatches"]
    assert {user["UserId"] for user in listed} == people
    # Each photo's face belongs to the person really in it; refused photos left none.
    for face in faces:
        user, name = face["ExternalImageId"].split(":", 1)
        assert face.get("UserId") == user == truth[f"{user}/{name}"]
    # Every labelled photo went in once or is in the table, with its reason.
    stored = {face["ExternalImageId"].replace(":", "/", 1) for face in faces}
    refused = {f"{user}/{photo}" for user, photo, _ in rows}
    assert len(stored) == len(faces) and stored.isdisjoint(refused)
    assert set(truth) <= stored | refused
    per_user = {row[0]: row for row in table_rows(done.stdout, "Users of collection")}
    for person in people:
        held = [face for face in faces if face.get("UserId") == person]
        assert held, f"no face of {person} went in"
        assert per_user[person][2] == str(len(held))
    assert found[0]["User"]["UserId"] == "barack_obama"


def test_an_interrupted_import_resumes_without_duplicates(
    backend: str, store_url: str, tmp_path: Path, clean_run: tuple[int, list[Any]]
) -> None:
    arrange(tmp_path / "photos")
    env = cli_env(tmp_path)
    args = import_args(tmp_path / "photos", store_url)
    photos = len(labels())

    status, shown = run_in_terminal(args, env, interrupt_at=3)

    assert status == 130, shown
    assert "Interrupted. What went in so far stays in" in shown
    assert "━" in shown and re.search(rf"Importing .*━.* \d+/{photos} +\d+%", shown)
    with client(store_url) as rekognition:
        partial = all_faces(rekognition, "family")
    assert 1 <= len(partial) < photos, "the import was not interrupted half-way"

    status, shown = run_in_terminal(args, env)

    assert status == clean_run[0], shown
    assert f"{photos}/{photos} 100%" in shown
    assert "Users of collection family" in shown
    with client(store_url) as rekognition:
        final = all_faces(rekognition, "family")
    assert len({face["ExternalImageId"] for face in final}) == len(final)
    assert sorted(map(face_key, final)) == clean_run[1]
    assert {face["FaceId"] for face in partial} <= {face["FaceId"] for face in final}


def test_import_over_http_goes_through_the_server(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for name, identity in labels().items():
        if identity in ("rose_leslie", "kit_harington"):
            (photos / identity).mkdir(parents=True, exist_ok=True)
            (photos / identity / name).symlink_to(PHOTOS / name)
    env = cli_env(tmp_path)
    server_dir = tmp_path / "server"
    server_dir.mkdir()

    log = tmp_path / "server.log"
    with running_server(serve_args(server_dir, sqlite_url(server_dir)), log) as url:
        done = rekollect(
            env, "import", str(photos), "--collection-id", "cast", "--endpoint-url", url
        )
        rekognition: Any = http_client(url)
        faces = all_faces(rekognition, "cast")

    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        sorted(face["UserId"] for face in faces)
        == ["kit_harington"] * 3 + ["rose_leslie"] * 2
    )
    assert not (tmp_path / "data").exists()  # the local store was never opened


def test_import_of_a_folder_that_does_not_exist_fails_with_one_line(
    tmp_path: Path,
) -> None:
    done = rekollect(
        cli_env(tmp_path), "import", str(tmp_path / "nowhere"), "--collection-id", "c"
    )

    assert done.returncode == 1
    assert done.stderr == f"rekollect: {tmp_path / 'nowhere'} is not a folder.\n"
