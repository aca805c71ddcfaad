"""From a request's `Image` member to RGB pixels, failing the way Rekognition fails.

Two steps, kept apart because they run in different places:

* `image_bytes` (in the request thread) turns the validated `Image` member into the
  image file's bytes: `Image.Bytes` as sent, or the `Image.S3Object` read from S3.
* `decode_image` (inside engine worker processes) turns those bytes into pixels. It is
  a pure function of the bytes, and every error it raises is a `ServiceError` that
  survives pickling, so a worker can send it back to the server unchanged.

Limits and decisions:

* Exactly one of `Bytes` and `S3Object` must be set, else InvalidParameterException.
  An `S3Object` without `Bucket` or `Name` is InvalidS3ObjectException.
* Size: `Bytes` up to 5 MiB (5,242,880 bytes, the model's `ImageBlob` max; the
  validator already enforces it), S3 objects up to 15 MiB, as AWS documents. The S3
  size comes from a HEAD request, so an object that is too large is refused before any
  of it is downloaded; the download itself is also capped, in case the object changed
  in between. `decode_image` cannot tell where bytes came from, so it accepts up to
  the larger, S3, limit.
* Formats: JPEG (including MPO, the multi-picture JPEG some cameras write; its first
  picture is used) and PNG only, told apart by their content, never by a name. Anything
  else, and any corrupt or truncated file, is InvalidImageFormatException.
* Pixels: at most `MAX_PIXELS` (50 megapixels). AWS documents no pixel limit, but
  a server decoding many images at once must bound each one's memory: a 50 MP image
  needs 150 MB as RGB (about twice that at the peak of decoding), per worker. 50 MP
  still takes the full-size output of common cameras (full-frame bodies of 45-50 MP,
  phones' usual 12-50 MP; the shared sample photos of 32-36 MP decode in about a
  second); a face detector gains nothing from more. Byte size does not bound pixels:
  those samples are 0.07 bytes a pixel, so 15 MiB of JPEG can hold 200 MP. The width
  and height are read from the file's header (PNG's IHDR,
  JPEG's frame header) before Pillow sees the file, so a decompression bomb - a few
  hundred kB that would inflate to gigabytes - is refused before any pixel is
  decoded, and Pillow's own DecompressionBombWarning/Error is never triggered (it is
  still caught, should the two header readings ever disagree).
* At least 80 pixels wide and high (AWS's documented minimum), else
  InvalidParameterException. The check is made on the header size: an EXIF rotation
  swaps width and height, so it cannot change the smaller of the two.
* EXIF orientation is applied, so engines see the photo upright, as AWS does.
  Unreadable EXIF is ignored: the photo decodes as stored.
* Warnings: Pillow reports some damage it can live with (corrupt EXIF, for one) as a
  warning, and the image decodes. Where a process turns warnings into errors (the
  test suite does), such a warning ends decoding as InvalidImageFormatException -
  never a 500. Changing the warning filters here instead is not an option: they are
  process-wide, and `catch_warnings` is not thread-safe before Python 3.14.
* Colour: everything becomes 8-bit RGB. Transparency (RGBA, LA, palettes with a
  transparent colour) is composited onto white, as an image viewer would show it;
  dropping the alpha instead would expose whatever colour happens to be stored under
  transparent pixels, often black. 16-bit greyscale is scaled down (Pillow's own
  conversion would clip it). CMYK JPEGs use Pillow's plain CMYK-to-RGB conversion,
  without colour management. Animated PNGs use their first frame.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
from PIL import Image, ImageOps

from rekollect.engine.base import RGBImage
from rekollect.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ProvisionedThroughputExceededException,
    ServiceError,
)

logger = logging.getLogger(__name__)

MAX_BYTES_IMAGE_SIZE = 5 * 1024 * 1024  # Image.Bytes: the model's ImageBlob max
MAX_S3_IMAGE_SIZE = 15 * 1024 * 1024  # Image.S3Object, as AWS documents
MAX_PIXELS = 50_000_000
MIN_IMAGE_SIDE = 80

S3_METADATA_MESSAGE = (
    "Unable to get object metadata from S3. "
    "Check object key, region and/or access permissions."
)
S3_THROTTLED_MESSAGE = "S3 download limit exceeded."
_S3_THROTTLE_CODES = frozenset({"SlowDown", "503", "RequestLimitExceeded"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_ACCEPTED_PILLOW_FORMATS = frozenset({"JPEG", "MPO", "PNG"})
# JPEG markers that start a frame header (SOF0-3, 5-7, 9-11, 13-15); the others in
# C0-CF are DHT (C4), JPG (C8) and DAC (CC).
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length: TEM and RST0-7.
_JPEG_BARE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


# --------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Settings:
    """Where `Image.S3Object` images are read from.

    Unset members fall back to boto3's own configuration (AWS_* variables,
    ~/.aws files, instance roles); an unset endpoint means AWS's S3 itself. With an
    endpoint of its own (MinIO, moto, ...) the bucket goes in the path, as those
    servers expect, and the region defaults to us-east-1. The timeouts and attempts
    bound how long one request can wait on S3.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "S3 credentials need both an access key id and a secret access key."
            )
        if self.max_attempts < 1:
            raise ValueError("S3 requests need at least one attempt.")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """Settings from `REKOLLECT_S3_ENDPOINT_URL`, `REKOLLECT_S3_REGION`,
        `REKOLLECT_S3_ACCESS_KEY_ID` and `REKOLLECT_S3_SECRET_ACCESS_KEY` (empty
        counts as unset)."""
        env = os.environ if environ is None else environ

        def read(name: str) -> str | None:
            return env.get(f"REKOLLECT_S3_{name}") or None

        return cls(
            endpoint_url=read("ENDPOINT_URL"),
            region=read("REGION"),
            access_key_id=read("ACCESS_KEY_ID"),
            secret_access_key=read("SECRET_ACCESS_KEY"),
        )


_clients: dict[S3Settings, Any] = {}
_clients_lock = threading.Lock()


def s3_client(settings: S3Settings) -> Any:
    """The boto3 S3 client for `settings`, created once and shared.

    boto3 clients are safe to use from several threads; creating one (a session,
    credential lookup, endpoint rules) is not cheap and its session is not
    thread-safe, hence one per settings, made under a lock.
    """
    with _clients_lock:
        client = _clients.get(settings)
        if client is None:
            client = _new_client(settings)
            _clients[settings] = client
        return client


def _new_client(settings: S3Settings) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name=settings.region
        or (None if settings.endpoint_url is None else "us-east-1"),
    )
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
    )
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config)


def image_bytes(
    image: Mapping[str, Any], s3: S3Settings, *, member: str = "Image"
) -> bytes:
    """The bytes of the image file that a validated `Image` member names.

    `member` is the request member's name (`Image`, `SourceImage`, ...), used only in
    error messages.
    """
    has_bytes = image.get("Bytes") is not None
    has_object = image.get("S3Object") is not None
    if has_bytes == has_object:
        raise InvalidParameterException(
            "Request has invalid parameters: exactly one of "
            f"{member}.Bytes and {member}.S3Object must be set."
        )
    if has_bytes:
        data = image["Bytes"]
        if not isinstance(data, bytes | bytearray):
            raise InvalidParameterException(
                f"Request has invalid parameters: {member}.Bytes must be binary data."
            )
        if len(data) > MAX_BYTES_IMAGE_SIZE:
            raise ImageTooLargeException()
        return bytes(data)
    s3_object = image["S3Object"]
    if not isinstance(s3_object, Mapping):
        raise InvalidS3ObjectException()
    bucket, key = s3_object.get("Bucket"), s3_object.get("Name")
    version = s3_object.get("Version")
    if not bucket or not key:
        raise InvalidS3ObjectException(
            f"Request has invalid S3 object: {member}.S3Object needs a Bucket and a "
            "Name."
        )
    return _read_s3_object(s3, bucket, key, version)


def _read_s3_object(
    settings: S3Settings, bucket: str, key: str, version: str | None
) -> bytes:
    """HEAD the object, refuse it if too large, then download it (capped)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = {"Bucket": bucket, "Key": key}
    if version is not None:
        where["VersionId"] = version
    client = s3_client(settings)
    try:
        head = client.head_object(**where)
    except NoCredentialsError:
        raise InvalidS3ObjectException(_unconfigured_message(settings)) from None
    except ClientError as error:
        _raise_s3_client_error(error, S3_METADATA_MESSAGE, bucket, key)
    except BotoCoreError as error:
        logger.info("S3 HEAD s3://%s/%s failed: %s", bucket, key, error)
        raise InvalidS3ObjectException(S3_METADATA_MESSAGE) from None
    if int(head.get("ContentLength", 0)) > MAX_S3_IMAGE_SIZE:
        raise ImageTooLargeException()

    try:
        response = client.get_object(**where)
        data = _read_capped(response["Body"], MAX_S3_IMAGE_SIZE + 1)
    except ClientError as error:
        _raise_s3_client_error(
            error, InvalidS3ObjectException.default_message, bucket, key
        )
    except BotoCoreError as error:
        logger.info("S3 GET s3://%s/%s failed: %s", bucket, key, error)
        raise InvalidS3ObjectException() from None
    if len(data) > MAX_S3_IMAGE_SIZE:
        raise ImageTooLargeException()
    return data


def _read_capped(body: Any, limit: int) -> bytes:
    """At most `limit` bytes of a streamed body, which is then closed."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            chunk = body.read(min(1024 * 1024, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        body.close()
    return b"".join(chunks)


def _raise_s3_client_error(error: Any, message: str, bucket: str, key: str) -> NoReturn:
    code = str(error.response.get("Error", {}).get("Code", ""))
    logger.info("S3 request for s3://%s/%s failed: %s", bucket, key, code or error)
    if code in _S3_THROTTLE_CODES:
        raise ProvisionedThroughputExceededException(S3_THROTTLED_MESSAGE) from None
    raise InvalidS3ObjectException(message) from None


def _unconfigured_message(settings: S3Settings) -> str:
    if settings.endpoint_url is None:
        return (
            "Request has invalid S3 object: this server has no S3 configured "
            "(set REKOLLECT_S3_ENDPOINT_URL and credentials to read S3Object images)."
        )
    return (
        "Request has invalid S3 object: this server has no S3 credentials configured "
        "(set REKOLLECT_S3_ACCESS_KEY_ID and REKOLLECT_S3_SECRET_ACCESS_KEY)."
    )


# --------------------------------------------------------------------- decoding


def decode_image(data: bytes) -> RGBImage:
    """The pixels of a JPEG or PNG file: height x width x 3, uint8, upright."""
    if len(data) > MAX_S3_IMAGE_SIZE:
        raise ImageTooLargeException()
    if data.startswith(_PNG_SIGNATURE):
        pillow_format, size = "PNG", _png_size(data)
    elif data.startswith(_JPEG_SIGNATURE):
        pillow_format, size = "JPEG", _jpeg_size(data)
    else:
        raise InvalidImageFormatException()
    if size is not None:
        _check_size(*size)

    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as opened:
            if opened.format not in _ACCEPTED_PILLOW_FORMATS:
                raise InvalidImageFormatException()
            _check_size(*opened.size)
            opened.seek(0)  # an animated PNG's first frame
            opened.load()
            _apply_exif_orientation(opened)
            return _to_rgb_array(opened)
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeException() from None
    except MemoryError:
        raise
    except Exception:
        # Pillow reports damaged files in many ways (OSError, SyntaxError,
        # ValueError, struct.error, ...), and a warning becomes an exception where
        # warnings are errors: all mean the bytes are not a usable image.
        raise InvalidImageFormatException() from None


def _apply_exif_orientation(image: Image.Image) -> None:
    """Turn `image` upright, in place, as its EXIF Orientation says. Unreadable
    EXIF is ignored, as viewers ignore it: the pixels themselves are fine."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except MemoryError:
        raise
    except Exception:
        logger.debug("ignoring unreadable EXIF data", exc_info=True)


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLargeException()
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InvalidParameterException(
            f"Request has invalid parameters: the image is {width}x{height} pixels; "
            f"its width and height must each be at least {MIN_IMAGE_SIDE} pixels."
        )


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the IHDR chunk, which must come first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return _nonzero(
        int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    )


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first frame header, walking the marker segments
    before it; None when there is none to find (Pillow then has its say)."""
    position, end = 2, len(data)
    while position + 1 < end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        position += 2
        if marker in _JPEG_BARE_MARKERS:
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI) or position + 2 > end:
            return None
        if marker in _JPEG_FRAME_MARKERS:
            if position + 7 > end:
                return None
            height = int.from_bytes(data[position + 3 : position + 5], "big")
            width = int.from_bytes(data[position + 5 : position + 7], "big")
            return _nonzero(width, height)
        position += int.from_bytes(data[position : position + 2], "big")
    return None


def _nonzero(width: int, height: int) -> tuple[int, int] | None:
    """A size, or None for a zero side (a JPEG may defer its height to a DNL
    marker): such files are left to Pillow to judge."""
    return (width, height) if width and height else None


def _to_rgb_array(image: Image.Image) -> RGBImage:
    """8-bit RGB pixels of any mode a JPEG or PNG opens in (see the module doc)."""
    mode = image.mode
    if mode.startswith("I"):  # 16-bit greyscale PNG: I;16, I;16B, I (older Pillow)
        wide = np.asarray(image, dtype=np.uint32)
        grey = (np.clip(wide, 0, 0xFFFF) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)
