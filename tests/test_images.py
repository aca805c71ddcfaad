"""From an `Image` member to pixels: real photos, real broken files, a real S3.

Photos come from the shared face datasets (the tests that need them skip when the
folder is absent); every other image is written here with Pillow or, for headers
Pillow will not write (decompression bombs), byte by byte. S3 is moto's standalone
server on a free loopback port, reached over HTTP by the code under test.
"""

from __future__ import annotations

import io
import pickle
import random
import socket
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from PIL import Image

from rekollect.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ServiceError,
)
from rekollect.service.images import (
    MAX_BYTES_IMAGE_SIZE,
    MAX_PIXELS,
    MAX_S3_IMAGE_SIZE,
    S3_METADATA_MESSAGE,
    S3Settings,
    decode_image,
    image_bytes,
    s3_client,
)

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PHOTO = DATASETS / "face-recognition-examples" / "examples__obama-480p.jpg"

BAD_FORMAT = "Request has invalid image format."
TOO_LARGE = "Image size is too large."
EXIF_ORIENTATION = 0x0112


def _photo_bytes() -> bytes:
    if not PHOTO.is_file():
        pytest.skip(f"the shared face datasets are not at {DATASETS}")
    return PHOTO.read_bytes()


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A real 853x480 JPEG news photo."""
    return _photo_bytes()


@pytest.fixture(params=["error", "default"])
def warnings_as(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with warnings as errors (the test suite) and as mere warnings (a
    server): the answer must not depend on which."""
    with warnings.catch_warnings():
        warnings.simplefilter(request.param)
        yield request.param


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _raises(kind: type[ServiceError], message: str, call: Callable[[], Any]) -> None:
    with pytest.raises(kind) as caught:
        call()
    assert type(caught.value) is kind
    assert caught.value.message == message


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _blank_png(width: int, height: int, *, pixels: bool = True) -> bytes:
    """A 1-bit greyscale PNG of zeros, written by hand: Pillow would need a byte per
    pixel in memory to write a huge one. Without `pixels`, the file has no IDAT at
    all, so only a decoder that never reads pixel data can answer anything but
    "invalid format" for it."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if pixels:
        row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
        packer = zlib.compressobj(9)
        compressed = [packer.compress(row) for _ in range(height)]
        compressed.append(packer.flush())
        chunks.append(_png_chunk(b"IDAT", b"".join(compressed)))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to claim another size."""
    data = bytearray(_encode(Image.new("RGB", (100, 100), (9, 9, 9)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# ------------------------------------------------------------------ real photos


def test_a_jpeg_photo_decodes_to_its_shape(photo: bytes) -> None:
    pixels = decode_image(photo)
    assert pixels.shape == (480, 853, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous and pixels.flags.writeable
    expected = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    assert np.array_equal(pixels, expected)


def test_the_same_photo_as_png_decodes_equal(photo: bytes) -> None:
    as_png = _encode(Image.fromarray(decode_image(photo)), "PNG")
    assert as_png.startswith(b"\x89PNG")
    assert np.array_equal(decode_image(as_png), decode_image(photo))


@pytest.mark.parametrize(
    ("orientation", "stored_turn"),
    [(3, 180), (6, 90), (8, 270)],
    ids=["orientation-3", "orientation-6", "orientation-8"],
)
def test_an_exif_rotated_photo_comes_back_upright(
    photo: bytes, orientation: int, stored_turn: int
) -> None:
    original = decode_image(photo)
    # Store the photo turned (counter-clockwise) and tagged with the orientation
    # that tells a viewer how to turn it back.
    stored = Image.fromarray(original).rotate(stored_turn, expand=True)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    tagged = _encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(tagged)).size == stored.size

    upright = decode_image(tagged)
    assert upright.shape == original.shape
    difference = np.abs(upright.astype(np.int16) - original.astype(np.int16))
    assert difference.mean() < 4  # only JPEG re-encoding noise


def test_unreadable_exif_is_ignored(photo: bytes) -> None:
    damaged = _encode(
        Image.open(io.BytesIO(photo)), "JPEG", exif=b"Exif\x00\x00II*\x00garbage"
    )
    # A server: Pillow warns about the EXIF, and the photo decodes as stored.
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert decode_image(damaged).shape == (480, 853, 3)
    assert any("Corrupt EXIF" in str(warning.message) for warning in seen)
    # Where warnings are errors, the warning ends decoding: a client error, no 500.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _raises(InvalidImageFormatException, BAD_FORMAT, lambda: decode_image(damaged))


# ---------------------------------------------------------------- colour modes


def test_greyscale_and_bilevel_pngs_become_rgb() -> None:
    grey = Image.linear_gradient("L").resize((100, 90))
    pixels = decode_image(_encode(grey, "PNG"))
    assert pixels.shape == (90, 100, 3)
    expected = np.asarray(grey)
    for channel in range(3):
        assert np.array_equal(pixels[:, :, channel], expected)

    bilevel = Image.new("1", (100, 100), 1)
    assert (decode_image(_encode(bilevel, "PNG")) == 255).all()


def test_a_palette_png_becomes_its_colours() -> None:
    image = Image.new("P", (100, 100), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
    assert (decode_image(_encode(image, "PNG")) == [10, 200, 30]).all()


def test_transparency_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (100, 100), (200, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    pixels = decode_image(_encode(rgba, "PNG"))
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert all(abs(v - 127) <= 1 for v in pixels[0, 1].tolist())
    assert pixels[50, 50].tolist() == [200, 0, 0]

    grey_alpha = Image.new("LA", (100, 100), (0, 0))
    assert (decode_image(_encode(grey_alpha, "PNG")) == 255).all()

    palette = Image.new("P", (100, 100), 0)
    palette.putpalette([0, 0, 0, 50, 60, 70] + [0] * (256 * 3 - 6))
    palette.putpixel((5, 5), 1)
    pixels = decode_image(_encode(palette, "PNG", transparency=0))
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[5, 5].tolist() == [50, 60, 70]


def test_a_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    wide = Image.new("I;16", (100, 100), 0x8000)
    wide.putpixel((0, 0), 0xFFFF)
    wide.putpixel((1, 0), 0x00FF)
    encoded = _encode(wide, "PNG")
    assert encoded[24] == 16  # IHDR bit depth: really a 16-bit file
    pixels = decode_image(encoded)
    assert pixels[50, 50].tolist() == [128, 128, 128]
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[0, 1].tolist() == [0, 0, 0]


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (100, 100), (0, 0, 0, 0))  # no ink: white
    cmyk.paste((255, 0, 0, 0), (0, 0, 50, 100))  # cyan ink on the left half
    encoded = _encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(encoded)).mode == "CMYK"
    pixels = decode_image(encoded).astype(int)
    assert (np.abs(pixels[50, 80] - [255, 255, 255]) <= 6).all()
    assert (np.abs(pixels[50, 20] - [0, 255, 255]) <= 6).all()


def test_an_animated_png_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (100, 100), colour) for colour in ("red", "blue")]
    encoded = _encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert getattr(Image.open(io.BytesIO(encoded)), "n_frames", 1) == 2
    assert (decode_image(encoded) == [255, 0, 0]).all()


def test_a_multi_picture_jpeg_gives_its_first_picture() -> None:
    pictures = [Image.new("RGB", (100, 100), colour) for colour in ("red", "blue")]
    encoded = _encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:])
    assert encoded.startswith(b"\xff\xd8\xff")
    pixels = decode_image(encoded).astype(int)
    assert (np.abs(pixels - [255, 0, 0]) <= 3).all()


# ------------------------------------------------------------------ bad images


def _made_with_pillow(fmt: str) -> bytes:
    return _encode(Image.new("RGB", (100, 100), (30, 60, 90)), fmt)


def _truncated_jpeg() -> bytes:
    data = _encode(Image.effect_noise((200, 200), 64).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


def _truncated_png() -> bytes:
    data = _encode(Image.effect_noise((200, 200), 64).convert("RGB"), "PNG")
    return data[: len(data) // 2]


BAD_FORMATS: dict[str, Callable[[], bytes]] = {
    "gif": lambda: _made_with_pillow("GIF"),
    "bmp": lambda: _made_with_pillow("BMP"),
    "webp": lambda: _made_with_pillow("WEBP"),
    "tiff": lambda: _made_with_pillow("TIFF"),
    "random-bytes": lambda: random.Random(7).randbytes(4096),
    "empty": lambda: b"",
    "truncated-jpeg": _truncated_jpeg,
    "truncated-png": _truncated_png,
    "jpeg-signature-only": lambda: b"\xff\xd8\xff",
    "png-signature-only": lambda: b"\x89PNG\r\n\x1a\n",
    "png-header-without-pixels": lambda: _blank_png(100, 100, pixels=False),
    "jpeg-with-garbage-after-header": lambda: (
        _made_with_pillow("JPEG")[:700] + bytes(300)
    ),
}


@pytest.mark.parametrize("make", BAD_FORMATS.values(), ids=BAD_FORMATS.keys())
def test_other_formats_and_broken_files_are_invalid_format(
    make: Callable[[], bytes], warnings_as: str
) -> None:
    data = make()
    _raises(InvalidImageFormatException, BAD_FORMAT, lambda: decode_image(data))


def test_the_photo_cut_short_is_invalid_format(photo: bytes) -> None:
    for cut in (len(photo) // 2, len(photo) - 200, 1000):
        data = photo[:cut]
        with pytest.raises(InvalidImageFormatException, match=BAD_FORMAT):
            decode_image(data)


@pytest.mark.parametrize(("width", "height"), [(79, 200), (200, 79), (79, 79)])
def test_an_image_under_80_pixels_is_an_invalid_parameter(
    width: int, height: int
) -> None:
    small = _encode(Image.new("RGB", (width, height), "green"), "PNG")
    message = (
        "Request has invalid parameters: the image is "
        f"{width}x{height} pixels; its width and height must each be at least 80 "
        "pixels."
    )
    _raises(InvalidParameterException, message, lambda: decode_image(small))


def test_an_image_of_exactly_80_pixels_is_accepted() -> None:
    exact = _encode(Image.new("RGB", (80, 300), "green"), "JPEG")
    assert decode_image(exact).shape == (300, 80, 3)


def test_an_exif_rotated_small_image_is_still_too_small() -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    small = _encode(Image.new("RGB", (200, 79)), "JPEG", exif=exif.tobytes())
    with pytest.raises(InvalidParameterException, match="79x200|200x79"):
        decode_image(small)


BOMBS: dict[str, Callable[[], bytes]] = {
    # 400 megapixels in about 60 kB: past Pillow's own bomb error (2 x 89 MP).
    "png-20000x20000": lambda: _blank_png(20000, 20000),
    # 100 megapixels: where Pillow would only warn.
    "png-10000x10000": lambda: _blank_png(10000, 10000),
    # just over the limit.
    "png-just-over-the-limit": lambda: _blank_png(MAX_PIXELS // 5000 + 1, 5000),
    # header only: refused before anything looks for pixel data.
    "png-header-only-20000x20000": lambda: _blank_png(20000, 20000, pixels=False),
    "jpeg-claiming-20000x20000": lambda: _jpeg_claiming(20000, 20000),
    "jpeg-claiming-65535x65535": lambda: _jpeg_claiming(65535, 65535),
}


@pytest.mark.parametrize("make", BOMBS.values(), ids=BOMBS.keys())
def test_decompression_bombs_are_too_large(
    make: Callable[[], bytes], warnings_as: str
) -> None:
    data = make()
    assert len(data) < 200_000
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _raises(ImageTooLargeException, TOO_LARGE, lambda: decode_image(data))
    assert not seen  # Pillow never got far enough to warn


def test_more_than_15_mib_of_bytes_is_too_large() -> None:
    data = b"\xff\xd8\xff" + bytes(MAX_S3_IMAGE_SIZE)
    _raises(ImageTooLargeException, TOO_LARGE, lambda: decode_image(data))


# ----------------------------------------------------------- the Image member


def test_bytes_are_returned_as_sent() -> None:
    data = b"\xff\xd8\xff anything"
    assert image_bytes({"Bytes": data}, S3Settings()) == data
    largest = bytes(MAX_BYTES_IMAGE_SIZE)
    assert image_bytes({"Bytes": largest}, S3Settings()) == largest


def test_bytes_over_5_mib_are_too_large() -> None:
    data = bytes(MAX_BYTES_IMAGE_SIZE + 1)
    _raises(
        ImageTooLargeException,
        TOO_LARGE,
        lambda: image_bytes({"Bytes": data}, S3Settings()),
    )


@pytest.mark.parametrize(
    "image",
    [{}, {"Bytes": b"x", "S3Object": {"Bucket": "bkt", "Name": "k"}}],
    ids=["neither", "both"],
)
def test_exactly_one_source_is_required(image: dict[str, Any]) -> None:
    message = (
        "Request has invalid parameters: exactly one of SourceImage.Bytes and "
        "SourceImage.S3Object must be set."
    )
    _raises(
        InvalidParameterException,
        message,
        lambda: image_bytes(image, S3Settings(), member="SourceImage"),
    )


@pytest.mark.parametrize("s3_object", [{"Bucket": "bkt"}, {"Name": "photo.jpg"}])
def test_an_s3_object_needs_bucket_and_name(s3_object: dict[str, str]) -> None:
    with pytest.raises(InvalidS3ObjectException, match="needs a Bucket and a Name"):
        image_bytes({"S3Object": s3_object}, S3Settings())


def test_errors_survive_pickling(photo: bytes) -> None:
    """Worker processes send their errors back pickled."""
    failures: list[Callable[[], Any]] = [
        lambda: decode_image(b"GIF89a"),
        lambda: decode_image(_blank_png(20000, 20000, pixels=False)),
        lambda: decode_image(_encode(Image.new("RGB", (79, 200)), "PNG")),
        lambda: image_bytes({}, S3Settings()),
        lambda: image_bytes({"S3Object": {"Bucket": "bkt"}}, S3Settings()),
    ]
    kinds = set()
    for failure in failures:
        with pytest.raises(ServiceError) as caught:
            failure()
        copy = pickle.loads(pickle.dumps(caught.value))
        assert type(copy) is type(caught.value)
        assert copy.message == caught.value.message
        assert str(copy) == str(caught.value)
        kinds.add(type(copy))
    assert kinds == {
        InvalidImageFormatException,
        ImageTooLargeException,
        InvalidParameterException,
        InvalidS3ObjectException,
    }


# --------------------------------------------------------------- S3 settings


def test_settings_come_from_the_environment() -> None:
    settings = S3Settings.from_environment(
        {
            "REKOLLECT_S3_ENDPOINT_URL": "http://minio:9000",
            "REKOLLECT_S3_REGION": "eu-west-1",
            "REKOLLECT_S3_ACCESS_KEY_ID": "AKID",
            "REKOLLECT_S3_SECRET_ACCESS_KEY": "s3cr3t",
        }
    )
    assert settings == S3Settings("http://minio:9000", "eu-west-1", "AKID", "s3cr3t")
    assert "s3cr3t" not in repr(settings)
    assert S3Settings.from_environment({"REKOLLECT_S3_REGION": ""}) == S3Settings()


def test_half_a_credential_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        S3Settings.from_environment({"REKOLLECT_S3_ACCESS_KEY_ID": "AKID"})


# ------------------------------------------------------------------------- S3

BUCKET = "rekollect-images"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 on a free loopback port, with a versioned bucket."""
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(
        ip_address="127.0.0.1", port=0, verbose=False
    )
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    admin = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    admin.create_bucket(Bucket=BUCKET)
    admin.put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> S3Settings:
    return S3Settings(
        endpoint_url=s3_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
    )


def _put(settings: S3Settings, key: str, body: bytes) -> str:
    response = s3_client(settings).put_object(Bucket=BUCKET, Key=key, Body=body)
    version: str = response["VersionId"]
    return version


class _Requests:
    """The S3 operations a client sends while this is registered on it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.names: list[str] = []

    def __enter__(self) -> list[str]:
        self.client.meta.events.register(
            "before-call.s3", self._record, unique_id="test-images-record"
        )
        return self.names

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister(
            "before-call.s3", unique_id="test-images-record"
        )

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)


def test_an_s3_photo_comes_back_as_uploaded(s3: S3Settings, photo: bytes) -> None:
    version = _put(s3, "people/obama.jpg", photo)
    named = {"Bucket": BUCKET, "Name": "people/obama.jpg"}
    assert image_bytes({"S3Object": named}, s3) == photo
    assert image_bytes({"S3Object": {**named, "Version": version}}, s3) == photo
    pixels = decode_image(image_bytes({"S3Object": named}, s3))
    assert pixels.shape == (480, 853, 3)


def test_an_older_version_is_read_when_named(s3: S3Settings) -> None:
    first = _put(s3, "versioned.bin", b"first")
    _put(s3, "versioned.bin", b"second")
    named = {"Bucket": BUCKET, "Name": "versioned.bin"}
    assert image_bytes({"S3Object": named}, s3) == b"second"
    assert image_bytes({"S3Object": {**named, "Version": first}}, s3) == b"first"


@pytest.mark.parametrize(
    "s3_object",
    [
        {"Bucket": BUCKET, "Name": "no/such/key.jpg"},
        {"Bucket": "no-such-bucket", "Name": "versioned.bin"},
        {"Bucket": BUCKET, "Name": "versioned.bin", "Version": "no-such-version"},
        {
            "Bucket": BUCKET,
            "Name": "versioned.bin",
            "Version": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
        },
    ],
    ids=["missing-key", "missing-bucket", "malformed-version", "unknown-version"],
)
def test_a_missing_object_is_an_invalid_s3_object(
    s3: S3Settings, s3_object: dict[str, str]
) -> None:
    _put(s3, "versioned.bin", b"present")
    _raises(
        InvalidS3ObjectException,
        S3_METADATA_MESSAGE,
        lambda: image_bytes({"S3Object": s3_object}, s3),
    )


def test_an_s3_object_over_15_mib_is_refused_without_downloading(
    s3: S3Settings,
) -> None:
    _put(s3, "huge.jpg", b"\xff\xd8\xff" + bytes(MAX_S3_IMAGE_SIZE - 2))
    with _Requests(s3_client(s3)) as requests:
        _raises(
            ImageTooLargeException,
            TOO_LARGE,
            lambda: image_bytes(
                {"S3Object": {"Bucket": BUCKET, "Name": "huge.jpg"}}, s3
            ),
        )
    assert requests == ["HeadObject"]


def test_an_s3_object_of_exactly_15_mib_is_downloaded(s3: S3Settings) -> None:
    body = b"\xff\xd8\xff" + bytes(MAX_S3_IMAGE_SIZE - 3)
    _put(s3, "largest.jpg", body)
    with _Requests(s3_client(s3)) as requests:
        data = image_bytes({"S3Object": {"Bucket": BUCKET, "Name": "largest.jpg"}}, s3)
    assert data == body
    assert requests == ["HeadObject", "GetObject"]


def test_boto3s_own_credentials_are_used_when_none_are_set(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    settings = S3Settings(endpoint_url=s3_endpoint, read_timeout_s=29.0)
    _put(settings, "chain.bin", b"via the credential chain")
    named = {"Bucket": BUCKET, "Name": "chain.bin"}
    assert image_bytes({"S3Object": named}, settings) == b"via the credential chain"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_endpoint_is_an_invalid_s3_object_fast() -> None:
    settings = S3Settings(
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        access_key_id="testing",
        secret_access_key="testing",
        connect_timeout_s=1.0,
        max_attempts=1,
    )
    began = time.monotonic()
    _raises(
        InvalidS3ObjectException,
        S3_METADATA_MESSAGE,
        lambda: image_bytes(
            {"S3Object": {"Bucket": BUCKET, "Name": "a.jpg"}}, settings
        ),
    )
    assert time.monotonic() - began < 5


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where boto3's credential chain finds nothing, quickly."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_credentials")
def test_a_server_without_s3_says_so() -> None:
    # Settings of their own, so that this test gets a client of its own.
    settings = S3Settings(connect_timeout_s=1.25, max_attempts=1)
    with pytest.raises(InvalidS3ObjectException, match="no S3 configured") as caught:
        image_bytes({"S3Object": {"Bucket": BUCKET, "Name": "a.jpg"}}, settings)
    assert "REKOLLECT_S3_ENDPOINT_URL" in caught.value.message


@pytest.mark.usefixtures("no_aws_credentials")
def test_an_endpoint_without_credentials_says_so(s3_endpoint: str) -> None:
    settings = S3Settings(endpoint_url=s3_endpoint, connect_timeout_s=1.25)
    with pytest.raises(InvalidS3ObjectException, match="no S3 credentials"):
        image_bytes({"S3Object": {"Bucket": BUCKET, "Name": "a.jpg"}}, settings)
