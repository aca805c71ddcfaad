"""Options several management commands share, and the Rekognition client they imply.

`--data-dir` and `--database-url` name the local store, as `serve` takes them.
`--endpoint-url` names a running server instead; without it,
`AWS_ENDPOINT_URL_REKOGNITION` or `AWS_ENDPOINT_URL` do, as for `rekollect
<operation>`, and without any of them the command works in this process on the
local store.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_REKOGNITION", "AWS_ENDPOINT_URL")
# What rekollect sends when no credentials are configured: it checks no signatures.
DUMMY_KEY = "rekollect"


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """`--data-dir` and `--database-url`: which store a command works on."""
    parser.add_argument("--data-dir", help="where the embedded database lives")
    parser.add_argument(
        "--database-url", help="a SQLAlchemy URL instead of the embedded store"
    )


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The store options, and `--region` of the collections worked on."""
    add_store_options(parser)
    parser.add_argument(
        "--region",
        help="the region of the collections (default: the AWS region configured, "
        "else REKOLLECT_REGION, else us-east-1)",
    )


def add_endpoint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        help="a running rekollect server to work through (default: "
        "$AWS_ENDPOINT_URL_REKOGNITION; without one, the local store in this process)",
    )


def configured_endpoint(args: argparse.Namespace) -> str | None:
    """The server named by `--endpoint-url` or the environment, if any."""
    if args.endpoint_url:
        return str(args.endpoint_url)
    for name in ENDPOINT_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


@contextmanager
def rekognition_client(args: argparse.Namespace, config: Any = None) -> Iterator[Any]:
    """A boto3 Rekognition client: over HTTP to the configured endpoint, else served
    in this process from the local store (closed when the block ends)."""
    from rekollect.config import load_settings

    region = region_of(args)
    endpoint = configured_endpoint(args)
    if endpoint is not None:
        yield http_client(endpoint, region, config)
        return

    from rekollect.inprocess import service_client

    settings = load_settings(args.data_dir, database_url=args.database_url)
    service = settings.open_service(engine_workers=0)
    try:
        yield service_client(service, region_name=region, config=config)
    finally:
        service.close()


def region_of(args: argparse.Namespace) -> str:
    """`--region`, else the AWS region configured (variables, profile), else
    rekollect's own, as `rekollect <operation>` chooses it."""
    if args.region:
        return str(args.region)
    import botocore.session

    from rekollect.service.context import DEFAULT_REGION

    configured = botocore.session.Session().get_config_variable("region")
    return str(configured or os.environ.get("REKOLLECT_REGION") or DEFAULT_REGION)


def http_client(endpoint: str, region: str, config: Any = None) -> Any:
    """A boto3 Rekognition client for `endpoint`; dummy credentials if none are set."""
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.get_credentials() is None:
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
            region_name=region,
        )
    return session.client("rekognition", endpoint_url=endpoint, config=config)
