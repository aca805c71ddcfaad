"""Parsing of the SigV4 `Authorization` header (verification is a separate concern).

A request signed by boto3 or the aws CLI carries

    AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/rekognition/aws4_request,
    SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<64 hex>

The region in the credential scope selects the region the request runs in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rekollect.errors import IncompleteSignatureException

ALGORITHM = "AWS4-HMAC-SHA256"
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{8}")


@dataclass(frozen=True)
class Credential:
    """What the `Authorization` header says about who signed, where and when."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


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
