"""AWS Signature Version 4: parsing the `Authorization` header, and verifying it.

A request signed by boto3 or the aws CLI carries

    AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/rekognition/aws4_request,
    SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<64 hex>

The region in the credential scope selects the region the request runs in.

`verify` recomputes the signature from the request as the signer must have built it:
the canonical request (method, path, query, the signed headers and the SHA-256 of
the body), the string to sign (algorithm, `X-Amz-Date`, credential scope, hash of the
canonical request) and the signing key derived from the secret, the date, the region
and the service. The date must lie within `MAX_CLOCK_SKEW_S` of the server's clock;
signatures are compared in constant time. This module knows nothing of keys: the
caller looks the secret up and decides what a session token must be.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from rekollect.errors import IncompleteSignatureException, InvalidSignatureException

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rekognition"
# AWS refuses a request dated more than 15 minutes away from its own clock.
MAX_CLOCK_SKEW_S = 15 * 60
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{8}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
# Every AWS region name has this form: us-east-1, us-gov-west-1, cn-northwest-1.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


@dataclass(frozen=True)
class Credential:
    """What the `Authorization` header says about who signed, where and when."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request that a signature covers.

    `raw_path` and `query` are as they arrived (percent-encoded); `headers` keeps
    every header line, names in lower case, repeated names included.
    """

    method: str
    raw_path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        """The value of header `name` (lower case); repeated lines joined by ','."""
        values = [value for key, value in self.headers if key == name]
        return ",".join(values) if values else None


def parse_authorization(header: str) -> Credential:
    """Parse a SigV4 `Authorization` header or raise `IncompleteSignatureException`."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported signing algorithm '{algorithm}'; expected {ALGORITHM}."
        )

    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise IncompleteSignatureException(
                f"Authorization header component '{part.strip()}' is not of the form"
                " key=value."
            )
        fields[key] = value
    missing = [
        k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields
    ]
    if missing:
        raise IncompleteSignatureException(
            "Authorization header requires "
            + ", ".join(f"'{k}'" for k in missing)
            + " parameters."
        )

    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not _DATE.fullmatch(scope[1]):
        raise IncompleteSignatureException(
            "Credential should be scoped to a valid region, service and date: "
            "'<key>/<yyyymmdd>/<region>/<service>/aws4_request'."
        )
    if not _SIGNATURE.fullmatch(fields["Signature"]):
        raise IncompleteSignatureException("Signature must be 64 lowercase hex digits.")

    access_key, date, region, service, _ = scope
    if not access_key or not region or not service:
        raise IncompleteSignatureException("Credential scope has an empty component.")
    return Credential(
        access_key=access_key,
        date=date,
        region=region,
        service=service,
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
    )


def check_scope(credential: Credential, request: HttpRequest, now: float) -> str:
    """Check the credential scope and the request's date; return `X-Amz-Date`.

    Raises `IncompleteSignatureException` for a request that cannot have been
    signed properly (no date, `host` unsigned) and `InvalidSignatureException` for
    one signed for another service, region form, day or time.
    """
    signed = credential.signed_headers
    if "host" not in signed:
        raise IncompleteSignatureException(
            "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    amz_date = request.header("x-amz-date")
    if amz_date is None:
        raise IncompleteSignatureException(
            "Authorization header requires existence of a 'X-Amz-Date' header."
        )
    if "x-amz-date" not in signed:
        raise IncompleteSignatureException(
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."
        )
    if not _AMZ_DATE.fullmatch(amz_date):
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        )
    if credential.service != SERVICE:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{SERVICE}'."
        )
    if not _REGION.fullmatch(credential.region):
        raise InvalidSignatureException(
            "Credential should be scoped to a valid region."
        )
    if credential.date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
            f"of date from HTTP: '{credential.date}' != '{amz_date[:8]}', from "
            f"'{amz_date}'."
        )
    _check_clock(amz_date, now)
    return amz_date


def _check_clock(amz_date: str, now: float) -> None:
    try:
        signed_at = datetime.strptime(amz_date, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ) from None
    skew = signed_at.timestamp() - now
    if abs(skew) <= MAX_CLOCK_SKEW_S:
        return
    server = _amz_date(now)
    minutes = MAX_CLOCK_SKEW_S // 60
    if skew < 0:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than "
            f"{_amz_date(now - MAX_CLOCK_SKEW_S)} ({server} - {minutes} min.)"
        )
    raise InvalidSignatureException(
        f"Signature not yet current: {amz_date} is still later than "
        f"{_amz_date(now + MAX_CLOCK_SKEW_S)} ({server} + {minutes} min.)"
    )


def verify(
    credential: Credential, request: HttpRequest, secret: str, now: float
) -> None:
    """Raise unless `credential.signature` signs `request` with `secret`."""
    amz_date = check_scope(credential, request, now)
    payload = hashlib.sha256(request.body).hexdigest()
    declared = request.header("x-amz-content-sha256")
    if declared is not None and declared != payload:
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was "
            "computed."
        )

    canonical = canonical_request(request, credential.signed_headers, payload)
    to_sign = string_to_sign(credential, amz_date, canonical)
    key = signing_key(secret, credential.date, credential.region, credential.service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, credential.signature):
        raise InvalidSignatureException(
            InvalidSignatureException.default_message
            + " Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'"
            f"\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
        )


def canonical_request(
    request: HttpRequest, signed_headers: Sequence[str], payload_sha256: str
) -> str:
    """The SigV4 canonical request: one line per part, in the order of the spec."""
    headers = "".join(
        f"{name}:{_trim(request.header(name) or '')}\n" for name in signed_headers
    )
    return "\n".join(
        [
            request.method.upper(),
            canonical_path(request.raw_path),
            canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            payload_sha256,
        ]
    )


def canonical_path(raw_path: str) -> str:
    """The path without dot segments, each character encoded once more (the rule for
    every service but S3)."""
    segments: list[str] = []
    for segment in raw_path.split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith(("/.", "/..")) and path != "/":
        path += "/"
    return quote(path, safe="/~")


def canonical_query(query: str) -> str:
    """Query parameters decoded, encoded again strictly, and sorted."""
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((_strict(unquote(name)), _strict(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def string_to_sign(credential: Credential, amz_date: str, canonical: str) -> str:
    scope = "/".join(
        [credential.date, credential.region, credential.service, "aws4_request"]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _trim(value: str) -> str:
    return " ".join(value.split())


def _strict(text: str) -> str:
    return quote(text, safe="-_.~")


def _amz_date(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime(DATE_FORMAT)
