"""Face thumbnails: IndexFaces keeps a small JPEG crop of each face it stores (unless
told not to), in the face's transaction; the crop goes with its face; and it is
enough for the engine to find and embed the face again."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from rekollect.config import load_settings
from rekollect.engine.pool import InlineAnalyzer
from rekollect.engine.registry import EngineSpec, create_engine
from rekollect.errors import RekollectError
from rekollect.service import OPERATIONS, Service
from rekollect.service.browse import face_thumbnail
from rekollect.service.images import decode_image
from rekollect.service.thumbnails import SIDE_PX
from rekollect.storage import open_database
from rekollect.storage.records import Scope
from rekollect.storage.schema import face_thumbnails

PHOTOS = (
    Path(__file__).resolve().parents[2] / "shared/datasets/face-recognition-examples"
)
TWO_PEOPLE = PHOTOS / "extra" / "examples__two_people.jpg"
OBAMA = PHOTOS / "examples__knn_examples__train__obama__obama.jpg"
SCOPE = Scope("000000000000", "us-east-1")

pytestmark = pytest.mark.skipif(
    not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}"
)


@pytest.fixture(scope="module")
def analyzer() -> InlineAnalyzer:
    """One dlib engine for the module (loading its models takes a second)."""
    return InlineAnalyzer(EngineSpec())


def open_service(url: str, analyzer: InlineAnalyzer, **options: object) -> Service:
    service = Service(open_database(url), **options)  # type: ignore[arg-type]
    service.__dict__["analyzer"] = analyzer
    return service


@pytest.fixture
def service(store_url: str, analyzer: InlineAnalyzer) -> Iterator[Service]:
    service = open_service(store_url, analyzer)
    OPERATIONS["CreateCollection"](service, SCOPE, collection_id="photos")
    yield service
    service.database.close()


def index(service: Service, path: Path, **options: object) -> list[str]:
    answer = OPERATIONS["IndexFaces"](
        service,
        SCOPE,
        collection_id="photos",
        image={"Bytes": path.read_bytes()},
        **options,
    )
    return [record["Face"]["FaceId"] for record in answer["FaceRecords"]]


def thumbnail_count(service: Service) -> int:
    with service.database.read() as conn:
        statement = select(func.count()).select_from(face_thumbnails)
        return int(conn.execute(statement).scalar_one())


def test_index_faces_keeps_a_small_jpeg_of_each_face(service):
    face_ids = index(service, TWO_PEOPLE)
    assert len(face_ids) == 2

    for face_id in face_ids:
        jpeg = face_thumbnail(service, SCOPE, "photos", face_id)
        assert jpeg is not None and jpeg.startswith(b"\xff\xd8\xff")
        assert 1_000 < len(jpeg) < 16_000
        with Image.open(io.BytesIO(jpeg)) as image:
            assert image.format == "JPEG"
            assert max(image.size) <= SIDE_PX
            assert min(image.size) >= 80  # the API's smallest image side
    assert thumbnail_count(service) == 2


def test_the_same_image_indexed_again_keeps_no_second_thumbnail(service):
    first = index(service, OBAMA, external_image_id="obama")
    again = index(service, OBAMA, external_image_id="obama")
    assert first == again
    assert thumbnail_count(service) == 1


def test_a_server_told_not_to_keeps_no_thumbnails(store_url, analyzer):
    service = open_service(store_url, analyzer, thumbnails=False)
    try:
        OPERATIONS["CreateCollection"](service, SCOPE, collection_id="photos")
        [face_id] = index(service, OBAMA)
        assert face_thumbnail(service, SCOPE, "photos", face_id) is None
        assert thumbnail_count(service) == 0
    finally:
        service.database.close()


def test_deleting_faces_or_the_collection_deletes_their_thumbnails(service):
    kept, deleted = index(service, TWO_PEOPLE)
    OPERATIONS["DeleteFaces"](
        service, SCOPE, collection_id="photos", face_ids=[deleted]
    )
    assert face_thumbnail(service, SCOPE, "photos", deleted) is None
    assert face_thumbnail(service, SCOPE, "photos", kept) is not None
    assert thumbnail_count(service) == 1

    OPERATIONS["DeleteCollection"](service, SCOPE, collection_id="photos")
    assert thumbnail_count(service) == 0


def test_a_thumbnail_is_enough_to_embed_the_face_again(service):
    [face_id] = index(service, OBAMA)
    jpeg = face_thumbnail(service, SCOPE, "photos", face_id)
    assert jpeg is not None

    engine = create_engine(EngineSpec())
    [original] = engine.analyze(decode_image(OBAMA.read_bytes()))
    again = engine.analyze(decode_image(jpeg))
    assert len(again) == 1
    assert original.embedding is not None and again[0].embedding is not None
    distance = float(np.linalg.norm(original.embedding - again[0].embedding))
    assert distance < 0.4  # dlib's own same-person threshold is 0.6


def test_thumbnails_of_other_accounts_faces_cannot_be_read(service):
    [face_id] = index(service, OBAMA)
    other = Scope("111111111111", "us-east-1")
    OPERATIONS["CreateCollection"](service, other, collection_id="photos")
    assert face_thumbnail(service, other, "photos", face_id) is None


@pytest.mark.parametrize(
    ("variable", "option", "kept"),
    [
        (None, None, True),
        ("false", None, False),
        ("0", None, False),
        ("yes", None, True),
        ("true", False, False),
    ],
    ids=["default-on", "variable-false", "variable-0", "variable-yes", "option-wins"],
)
def test_thumbnails_are_on_unless_switched_off(
    monkeypatch, tmp_path, variable, option, kept
):
    if variable is None:
        monkeypatch.delenv("REKOLLECT_THUMBNAILS", raising=False)
    else:
        monkeypatch.setenv("REKOLLECT_THUMBNAILS", variable)
    settings = load_settings(tmp_path, thumbnails=option)
    assert settings.thumbnails is kept
    assert settings.environment()["REKOLLECT_THUMBNAILS"] == str(kept).lower()


def test_a_thumbnail_switch_that_is_not_yes_or_no_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("REKOLLECT_THUMBNAILS", "sometimes")
    with pytest.raises(RekollectError, match="REKOLLECT_THUMBNAILS must be true or"):
        load_settings(tmp_path)
