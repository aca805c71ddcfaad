"""`rekollect serve`: run the Rekognition-compatible HTTP server."""

from __future__ import annotations

import argparse
import logging
import os
import socket

from rekollect import __version__
from rekollect.config import load_settings

DEFAULT_PORT = 9860

logger = logging.getLogger("rekollect")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    serve.add_argument("--data-dir", help="where the embedded database lives")
    serve.add_argument(
        "--database-url", help="a SQLAlchemy URL instead of the embedded store"
    )
    serve.add_argument("--account-id", help="12-digit account id used in ARNs")
    serve.add_argument(
        "--region", help="region for unsigned requests (default us-east-1)"
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes sharing the port and the store (default 1)",
    )
    serve.add_argument(
        "--engine",
        help="face engine, e.g. dlib or dlib:detector=cnn (default dlib)",
    )
    serve.add_argument(
        "--engine-workers",
        type=int,
        help="engine processes per server process (default: one per core, "
        "or one each with --workers)",
    )
    serve.add_argument(
        "--image-timeout",
        type=float,
        help="seconds one image may take to analyse (default 60)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    serve.add_argument("--tls-cert", help="PEM certificate file: serve HTTPS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.set_defaults(run=serve_command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from rekollect.engine.pool import usable_cores
    from rekollect.server.app import configure_logging, create_app
    from rekollect.storage import open_database

    if bool(args.tls_cert) != bool(args.tls_key):
        args.parser.error("--tls-cert and --tls-key go together")
    configure_logging(args.log_level)
    settings = load_settings(
        args.data_dir,
        database_url=args.database_url,
        account_id=args.account_id,
        region=args.region,
        engine=args.engine,
        engine_workers=args.engine_workers,
        image_timeout_s=args.image_timeout,
    )
    # Migrate once, here, before any worker opens the store.
    database = open_database(settings.database_url)

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    scheme = "https" if args.tls_cert else "http"
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
    _announce(
        url,
        settings.data_dir if not args.database_url else None,
        database.url,
        settings.account_id,
        settings.region,
        bool(args.tls_cert),
    )

    options = {"log_level": args.log_level, "access_log": False, "log_config": None}
    if args.tls_cert:
        options |= {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
    if args.workers == 1:
        database.close()
        service = settings.open_service(engine_workers=usable_cores(), migrate=False)
        logger.info(
            "face engine %s (FaceModelVersion %s), %d worker process(es), "
            "started with the first image",
            settings.engine,
            service.face_model_version,
            service.engine_workers,
        )
        try:
            uvicorn.Server(uvicorn.Config(create_app(service), **options)).run(
                sockets=[sock]
            )
        finally:
            service.close()
        return 0

    # Worker processes are spawned: they build the app from these settings.
    database.close()
    os.environ.update(settings.environment() | {"REKOLLECT_LOG_LEVEL": args.log_level})
    config = uvicorn.Config(
        "rekollect.server.app:create_app_from_environment",
        factory=True,
        workers=args.workers,
        **options,
    )
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _announce(
    url: str,
    data_dir: object,
    database_url: str,
    account: str,
    region: str,
    tls: bool,
) -> None:
    where = f"{data_dir} ({database_url})" if data_dir else database_url
    logger.info("rekollect %s listening on %s", __version__, url)
    logger.info("data: %s", where)
    logger.info(
        "account %s, default region %s; signatures are not verified", account, region
    )
    logger.info(
        "boto3: boto3.client('rekognition', endpoint_url='%s', region_name='%s', "
        "aws_access_key_id='x', aws_secret_access_key='x')",
        url,
        region,
    )
    logger.info("aws CLI: aws rekognition list-collections --endpoint-url %s", url)
    logger.info("rekollect CLI: rekollect list-collections --endpoint-url %s", url)
    if tls:
        logger.info(
            "TLS: give clients the certificate (boto3 verify='cert.pem', "
            "aws CLI --ca-bundle cert.pem), or --no-verify-ssl to skip the check"
        )
