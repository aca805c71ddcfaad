"""Fuzzing every operation with requests generated from botocore's service model.

Each request is drawn from the operation's input shape (hypothesis): members valid
and invalid, of the wrong JSON type, huge numbers, long and non-ASCII strings (lone
surrogates included), unknown members, and for images random bytes, real photos and
a decompression bomb. Identifiers are drawn mostly from a small pool the store holds
(collections, users, 110 faces, one user with 99 of them), so requests change real
state instead of only missing it.

After every request: no 500; the error, if any, is one the operation's model lists
(or `SerializationException` for a body that is no JSON object) with its modelled
HTTP status; and the store's invariants hold: a face's user is of its collection, no
user has more than 100 faces, and DescribeCollection's counts are the rows stored.

Requests go through the `WireHandler` in-process for speed, plus a short sample over
real HTTP. The number of examples per operation is bounded (`EXAMPLES`), so the whole
module runs in about a minute.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select

from rekollect.errors import ServiceError
from rekollect.protocol import model
from rekollect.server.wire import WireHandler
from rekollect.service import OPERATIONS, Service
from rekollect.service.faces import add_faces
from rekollect.service.images import S3Settings
from rekollect.storage import open_database
from rekollect.storage.database import sqlite_url
from rekollect.storage.records import BoundingBox, NewFace, Scope
from rekollect.storage.schema import collections, faces, users
from tests import faces as made_up
from tests.conftest import ACCOUNT, REGION, running_server, serve_args

CONTENT_TYPE = "application/x-amz-json-1.1"
EXAMPLES = 60  # per implemented operation
UNIMPLEMENTED_EXAMPLES = 3
HTTP_EXAMPLES = 40
MAX_USER_FACES = 100

COLLECTIONS = ["fz-a", "fz-b", "fz-new"]
USERS = ["u-full", "u1", "u2", "u-new"]
FACE_IDS = [str(uuid.UUID(int=0x5EED << 64 | n)) for n in range(110)]
PERSON = made_up.person(seed=7)
COMMON_ERRORS = {"SerializationException"}
PHOTOS = (
    Path(__file__).resolve().parents[2] / "shared/datasets/face-recognition-examples"
)


def _png(size: tuple[int, int], mode: str = "RGB", noise: bool = True) -> bytes:
    rng = np.random.default_rng(size[0])
    if noise:
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new(mode, size)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(_png(size))).save(out, format="JPEG")
    return out.getvalue()


def _images() -> list[bytes]:
    images = [
        _png((120, 90)),
        _jpeg((200, 160)),
        _png((40, 40)),  # below the 80-pixel minimum
        _png((9000, 9000), mode="1", noise=False),  # 81 MP: a decompression bomb
        b"\x89PNG\r\n\x1a\n" + bytes(40),  # a PNG signature and nothing else
        b"\xff\xd8\xff" + bytes(40),
    ]
    photo = PHOTOS / "examples__knn_examples__test__obama1.jpg"
    if photo.exists():
        images.append(photo.read_bytes())
    return images


IMAGES = _images()


# Strategies from the model


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
WRONG_TYPE = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
NASTY_TEXT = st.sampled_from(
    ["", " ", "\ud800", "a\x00b", "🙂" * 3, "é" * 300, "x" * 5000, "../../etc", "'; --"]
)


def _known(shape_name: str) -> st.SearchStrategy[Any] | None:
    pools = {
        "CollectionId": ["fz-a", "fz-a", "fz-b", "fz-new"],
        "UserId": USERS,
        "FaceId": FACE_IDS,
        "ResourceArn": [
            f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{c}"
            for c in COLLECTIONS
        ],
    }
    pool = pools.get(shape_name)
    return st.sampled_from(pool) if pool else None


def _valid(shape: Any, depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    meta = shape.metadata
    known = _known(shape.name)
    if known is not None:
        return known
    if kind == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        low, high = meta.get("min", 0), min(meta.get("max", 40), 40)
        if "pattern" in meta:
            return (
                st.from_regex(_python_pattern(meta["pattern"]), fullmatch=True)
                .map(lambda text: text[:high])
                .filter(lambda text: len(text) >= low)
            )
        return st.text(min_size=low, max_size=max(low, high))
    if kind in ("integer", "long"):
        return st.integers(meta.get("min", -(2**31)), meta.get("max", 2**31))
    if kind in ("float", "double"):
        return st.floats(meta.get("min", -1e6), meta.get("max", 1e6), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.floats(0, 2e9)
    if kind == "blob":
        raw = st.sampled_from(IMAGES) | st.binary(max_size=300)
        return raw.map(lambda data: base64.b64encode(data).decode())
    if kind == "list":
        high = min(meta.get("max", 5), 5 if depth > 1 else 101)
        return st.lists(
            _member(shape.member, depth + 1), min_size=meta.get("min", 0), max_size=high
        )
    if kind == "map":
        return st.dictionaries(
            st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=3
        )
    if kind == "structure":
        if depth > 4:
            return st.just({})
        if set(shape.members) == {"Bytes", "S3Object"}:
            return _image(shape, depth)
        required = {
            n: _member(m, depth + 1)
            for n, m in shape.members.items()
            if n in shape.required_members
        }
        optional = {
            n: _member(m, depth + 1)
            for n, m in shape.members.items()
            if n not in shape.required_members
        }
        return st.fixed_dictionaries(required, optional=optional)
    return WRONG_TYPE


def _image(shape: Any, depth: int) -> st.SearchStrategy[Any]:
    """Mostly exactly one of Bytes and S3Object, as the operations require."""
    members = {n: _member(m, depth + 1) for n, m in shape.members.items()}
    only_bytes = st.fixed_dictionaries({"Bytes": members["Bytes"]})
    only_s3 = st.fixed_dictionaries({"S3Object": members["S3Object"]})
    any_of = st.fixed_dictionaries({}, optional=members)
    return st.integers(0, 9).flatmap(
        lambda n: only_bytes if n < 7 else only_s3 if n < 9 else any_of
    )


def _python_pattern(pattern: str) -> str:
    """A model pattern in Python's `re` dialect (no Unicode classes there)."""
    for unicode_class, stand_in in (
        (r"\p{L}", "a-zA-Z\u00e9\u4e2d"),
        (r"\p{Z}", " "),
        (r"\p{N}", "0-9"),
    ):
        pattern = pattern.replace(unicode_class, stand_in)
    return pattern


def _invalid(shape: Any) -> st.SearchStrategy[Any]:
    """Values the model does not allow for `shape`."""
    kind = shape.type_name
    choices = [WRONG_TYPE]
    if kind == "string":
        choices += [NASTY_TEXT, st.text(min_size=1, max_size=80)]
    if kind in ("integer", "long", "float", "double"):
        choices.append(
            st.sampled_from([-1, 0, 2**31, 2**63, 10**30, -(10**30), 1.5, 1e308])
        )
    if kind == "blob":
        choices.append(st.text(max_size=20))  # not base64
    return st.one_of(choices)


def _member(shape: Any, depth: int) -> st.SearchStrategy[Any]:
    # Mostly valid values, so requests get past validation and change the store.
    # (Hypothesis starts from small numbers, so 0 is a valid value.)
    return st.integers(0, 19).flatmap(
        lambda n: _invalid(shape) if n == 19 else _valid(shape, depth)
    )


def request_for(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    shape = model.service_model().operation_model(operation).input_shape
    body = _valid(shape, 0) if shape is not None else st.just({})
    extra = st.dictionaries(
        st.sampled_from(["Unknown", "collectionid", ""]), WRONG_TYPE, max_size=1
    )
    return st.tuples(body, st.integers(0, 19), extra).map(
        lambda t: t[0] | t[2] if t[1] == 19 else t[0]
    )


def encoded(params: Any) -> bytes:
    return json.dumps(params).encode()


# The store under fuzzing


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Iterator[WireHandler]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    service = Service(open_database(sqlite_url(data_dir)))
    # S3Object images are read from a port nothing listens on: refused at once.
    service.s3 = S3Settings(
        endpoint_url="http://127.0.0.1:9",
        access_key_id="x",
        secret_access_key="x",
        connect_timeout_s=0.2,
        read_timeout_s=0.2,
        max_attempts=1,
    )
    handler = WireHandler(service)
    yield handler
    service.close()


def _face(face_id: str) -> NewFace:
    return NewFace(
        face_id=face_id,
        image_id=str(uuid.uuid4()),
        external_image_id=None,
        box=BoundingBox(0.25, 0.3, 0.4, 0.2),
        confidence=99.9,
        model_version="1.0",
        embedding=made_up.face_of(PERSON),
    )


def _call(
    handler: WireHandler, operation: str, params: Any
) -> tuple[int, dict[str, Any]]:
    headers = {
        "content-type": CONTENT_TYPE,
        "x-amz-target": f"RekognitionService.{operation}",
    }
    answer = handler.handle(
        headers, params if isinstance(params, bytes) else encoded(params)
    )
    return answer.status, json.loads(answer.body) if answer.body else {}


def ensure_seeded(handler: WireHandler) -> None:
    """Put back the pool's collections, users and faces if requests removed them."""
    scope = Scope(ACCOUNT, REGION)
    for name, count in (("fz-a", 110), ("fz-b", 12)):
        status, _ = _call(handler, "DescribeCollection", {"CollectionId": name})
        if status != 200:
            _call(handler, "CreateCollection", {"CollectionId": name})
            add_faces(
                handler.service, scope, name, [_face(f) for f in FACE_IDS[:count]]
            )
        for user in ("u-full", "u1"):
            status, _ = _call(
                handler, "CreateUser", {"CollectionId": name, "UserId": user}
            )
            if status == 200 and (name, user) == ("fz-a", "u-full"):
                _fill(handler, name, user)


def _fill(handler: WireHandler, collection: str, user: str) -> None:
    """Give `user` 99 faces (those DeleteFaces left), one short of the limit."""
    for start in (0, 50):
        chunk = FACE_IDS[start : start + min(50, 99 - start)]
        params = {"CollectionId": collection, "UserId": user, "FaceIds": chunk}
        status, body = _call(handler, "AssociateFaces", params)
        assert status == 200, body


def check_invariants(handler: WireHandler) -> None:
    database = handler.service.database
    with database.read() as conn:
        foreign = conn.execute(
            select(func.count())
            .select_from(faces.join(users, faces.c.user_pk == users.c.pk))
            .where(faces.c.collection_pk != users.c.collection_pk)
        ).scalar_one()
        assert foreign == 0, "a face belongs to a user of another collection"
        per_user = (
            select(func.count().label("n"))
            .where(faces.c.user_pk.is_not(None))
            .group_by(faces.c.user_pk)
            .subquery()
        )
        most = conn.execute(select(func.max(per_user.c.n))).scalar()
        assert (most or 0) <= MAX_USER_FACES
        counts = {
            row.collection_id: (row.pk, row.collection_id)
            for row in conn.execute(
                select(collections.c.pk, collections.c.collection_id)
            )
        }
        stored = {
            name: (
                conn.execute(
                    select(func.count()).where(faces.c.collection_pk == pk)
                ).scalar_one(),
                conn.execute(
                    select(func.count()).where(users.c.collection_pk == pk)
                ).scalar_one(),
            )
            for name, (pk, _) in counts.items()
        }
    for name, (face_count, user_count) in stored.items():
        status, described = _call(handler, "DescribeCollection", {"CollectionId": name})
        assert status == 200, described
        assert (described["FaceCount"], described["UserCount"]) == (
            face_count,
            user_count,
        )


def check_answer(operation: str, status: int, body: dict[str, Any]) -> None:
    assert status < 500, (status, body)
    if status == 200:
        return
    code = body["__type"]
    operation_model = model.operation_model(operation)
    assert operation_model is not None
    allowed = model.error_codes(operation_model) | COMMON_ERRORS
    if operation not in OPERATIONS:
        allowed.add("UnsupportedOperationException")
    assert code in allowed, (code, body["Message"])
    assert code not in ("InternalServerError", "ThrottlingException")
    assert status == _status_of(code), (code, status)
    assert body["Message"] and body["Code"] == code


def _status_of(code: str) -> int:
    import rekollect.errors as errors

    error_class = getattr(errors, code)
    assert issubclass(error_class, ServiceError)
    return int(error_class.status_code)


FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_answers_a_modelled_error_and_keeps_the_store_consistent(
    fuzzed, operation
):
    ensure_seeded(fuzzed)

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
    @given(params=request_for(operation))
    def run(params: dict[str, Any]) -> None:
        ensure_seeded(fuzzed)
        status, body = _call(fuzzed, operation, params)
        check_answer(operation, status, body)
        check_invariants(fuzzed)

    run()


UNIMPLEMENTED = sorted(set(model.operation_names()) - set(OPERATIONS))


@pytest.mark.parametrize("operation", UNIMPLEMENTED)
def test_operations_rekollect_lacks_answer_modelled_errors(fuzzed, operation):
    @settings(FUZZ_SETTINGS, max_examples=UNIMPLEMENTED_EXAMPLES)
    @given(params=request_for(operation))
    def run(params: dict[str, Any]) -> None:
        status, body = _call(fuzzed, operation, params)
        check_answer(operation, status, body)

    run()


@settings(FUZZ_SETTINGS, max_examples=60)
@given(
    operation=st.sampled_from(sorted(OPERATIONS)),
    body=st.binary(max_size=300)
    | st.sampled_from([b"[]", b"null", b"1", b'"x"', b"{", b"{}}", b'{"a":NaN}'])
    | WRONG_TYPE.map(encoded),
)
def test_bodies_that_are_no_request_are_client_errors(fuzzed, operation, body):
    status, answer = _call(fuzzed, operation, body)
    check_answer(operation, status, answer)
    check_invariants(fuzzed)


# A sample over real HTTP


@pytest.fixture(scope="module")
def open_server(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("fuzz-http")
    log = data_dir / "server.log"
    with running_server(serve_args(data_dir, sqlite_url(data_dir)), log) as url:
        yield url


@settings(FUZZ_SETTINGS, max_examples=HTTP_EXAMPLES)
@given(
    request=st.sampled_from(sorted(OPERATIONS)).flatmap(
        lambda name: st.tuples(st.just(name), request_for(name))
    )
)
def test_a_sample_over_http_answers_modelled_errors(open_server, request):
    operation, params = request
    answer = httpx.post(
        open_server,
        headers={
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": f"RekognitionService.{operation}",
        },
        content=encoded(params),
        timeout=60,
    )
    check_answer(operation, answer.status_code, answer.json() if answer.content else {})


def test_the_generators_reach_past_validation():
    """Guard: most generated requests of a pool-based operation are valid, so the
    fuzzing above exercises the service, not only validation."""

    @settings(FUZZ_SETTINGS, max_examples=50)
    @given(params=request_for("ListUsers"))
    def collect(params: dict[str, Any]) -> None:
        outcomes.append(params.get("CollectionId") in COLLECTIONS)

    outcomes: list[bool] = []
    collect()
    assert sum(outcomes) > len(outcomes) // 2
