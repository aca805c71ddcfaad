"""`rekollect serve`: run the Rekognition-compatible HTTP server.

Safe by default: it listens on 127.0.0.1, and refuses any other address while no
access key exists (`rekollect keys create`), unless `--allow-unauthenticated-remote`
says this is a lab, which it then warns about at every start. With keys, every
request must be signed by one; without keys on loopback, anything is accepted, and
the start-up log says so.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket

from rekollect import __version__
from rekollect.cli.options import add_store_options
from rekollect.config import Settings, load_settings
from rekollect.errors import RekollectError
from rekollect.security.limits import Limits

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
    add_store_options(serve)
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
        "--no-thumbnails",
        dest="thumbnails",
        action="store_false",
        default=None,
        help="keep no face crops from IndexFaces (the console then shows none; "
        "default: keep them, or $REKOLLECT_THUMBNAILS)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    serve.add_argument("--tls-cert", help="PEM certificate file: serve HTTPS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    _add_security_options(serve)
    serve.set_defaults(run=serve_command)


def _add_security_options(serve: argparse.ArgumentParser) -> None:
    defaults = Limits()
    serve.add_argument(
        "--allow-unauthenticated-remote",
        action="store_true",
        help="listen beyond loopback even while no access key exists (labs only: "
        "anyone who can reach the address can change every collection)",
    )
    serve.add_argument(
        "--master-key-file",
        help="the key that seals access-key secrets (default: master.key in the "
        "user config directory, or $REKOLLECT_MASTER_KEY_FILE)",
    )
    serve.add_argument(
        "--rate-limit",
        type=float,
        default=defaults.rate_per_key,
        metavar="RPS",
        help="requests per second per access key, per server process (default: off)",
    )
    serve.add_argument(
        "--rate-burst",
        type=int,
        default=defaults.rate_burst,
        help="requests a key may send at once before --rate-limit applies "
        "(default: twice the rate)",
    )
    serve.add_argument(
        "--max-image-jobs",
        type=int,
        default=defaults.image_jobs,
        help="image requests in progress per process; more are answered "
        "ThrottlingException (default: 4 per engine worker)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=defaults.header_timeout_s,
        help=f"seconds a request's headers may take (default {defaults.header_timeout_s:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=defaults.body_timeout_s,
        help=f"seconds a request's body may take (default {defaults.body_timeout_s:g})",
    )
    serve.add_argument(
        "--keep-alive",
        type=int,
        default=defaults.keep_alive_s,
        help=f"seconds an idle connection stays open (default {defaults.keep_alive_s})",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive,
        default=defaults.max_connections,
        help="connections per process before answering 503 "
        f"(default {defaults.max_connections})",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from rekollect.engine.pool import usable_cores
    from rekollect.security.keystore import count_keys
    from rekollect.security.timeouts import PROTOCOL, SlowClientProtocol
    from rekollect.server.app import (
        OPEN_WHEN_KEYLESS_VARIABLE,
        configure_logging,
        create_app,
    )
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
        master_key_file=args.master_key_file,
        thumbnails=args.thumbnails,
    )
    limits = _limits(args)
    # Migrate once, here, before any worker opens the store.
    database = open_database(settings.database_url)
    keys = count_keys(database)

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    loopback = is_loopback(host)
    if not loopback and not keys and not args.allow_unauthenticated_remote:
        sock.close()
        database.close()
        raise RekollectError(
            f"Refusing to listen on {host} without authentication: no access key "
            "exists. Create one (rekollect keys create), listen on 127.0.0.1, or "
            "pass --allow-unauthenticated-remote for a lab."
        )
    open_when_keyless = loopback or args.allow_unauthenticated_remote
    # Fail now, not on the first request, if the keys do not open.
    settings.access_control(database, open_when_keyless, limits)

    scheme = "https" if args.tls_cert else "http"
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
    _announce(url, settings, database.url, bool(args.tls_cert), bool(keys))
    _announce_access(keys, loopback, host)

    SlowClientProtocol.header_timeout_s = limits.header_timeout_s
    os.environ.update(limits.environment())
    options = {
        "log_level": args.log_level,
        "access_log": False,
        "log_config": None,
        "http": PROTOCOL,
        "timeout_keep_alive": limits.keep_alive_s,
        "limit_concurrency": limits.max_connections,
    }
    if args.tls_cert:
        options |= {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
    if args.workers == 1:
        service = settings.open_service(engine_workers=usable_cores(), migrate=False)
        access = settings.access_control(service.database, open_when_keyless, limits)
        database.close()
        logger.info(
            "face engine %s (FaceModelVersion %s), %d worker process(es), "
            "started with the first image",
            settings.engine,
            service.face_model_version,
            service.engine_workers,
        )
        app = create_app(service, access=access, limits=limits)
        try:
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
        finally:
            service.close()
        return 0

    # Worker processes are spawned: they build the app from these settings.
    database.close()
    os.environ.update(settings.environment() | {"REKOLLECT_LOG_LEVEL": args.log_level})
    os.environ[OPEN_WHEN_KEYLESS_VARIABLE] = "1" if open_when_keyless else "0"
    config = uvicorn.Config(
        "rekollect.server.app:create_app_from_environment",
        factory=True,
        workers=args.workers,
        **options,
    )
    Multiprocess(config, sockets=[sock]).run()
    return 0


def is_loopback(host: str) -> bool:
    """Whether `host` (a numeric address, as bound) is reachable from this machine
    only."""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(
        rate_per_key=args.rate_limit,
        rate_burst=args.rate_burst,
        image_jobs=args.max_image_jobs,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
        max_connections=args.max_connections,
    )


def _announce(
    url: str, settings: Settings, database_url: str, tls: bool, keys: bool
) -> None:
    data_dir = settings.data_dir if database_url.startswith("sqlite") else None
    where = f"{data_dir} ({database_url})" if data_dir else database_url
    logger.info("rekollect %s listening on %s", __version__, url)
    logger.info("data: %s", where)
    logger.info("account %s, default region %s", settings.account_id, settings.region)
    credentials = (
        "aws_access_key_id='<key id>', aws_secret_access_key='<secret>'"
        if keys
        else "aws_access_key_id='x', aws_secret_access_key='x'"
    )
    logger.info(
        "boto3: boto3.client('rekognition', endpoint_url='%s', region_name='%s', %s)",
        url,
        settings.region,
        credentials,
    )
    logger.info("aws CLI: aws rekognition list-collections --endpoint-url %s", url)
    logger.info("rekollect CLI: rekollect list-collections --endpoint-url %s", url)
    if tls:
        logger.info(
            "TLS: give clients the certificate (boto3 verify='cert.pem', "
            "aws CLI --ca-bundle cert.pem), or --no-verify-ssl to skip the check"
        )


def _announce_access(keys: int, loopback: bool, host: str) -> None:
    level, line = access_summary(keys, loopback, host)
    logger.log(level, "%s", line)


def access_summary(keys: int, loopback: bool, host: str) -> tuple[int, str]:
    """The log level and line that say whether requests must be signed."""
    if keys:
        return (
            logging.INFO,
            f"authentication: on; {keys} access key(s); every request must be signed "
            "by one",
        )
    if loopback:
        return (
            logging.INFO,
            "authentication: off; no access keys exist, so every request is "
            "accepted, unsigned or with any signature (loopback only; "
            "`rekollect keys create` turns it on)",
        )
    return (
        logging.WARNING,
        f"authentication: off on {host} (--allow-unauthenticated-remote); anyone who "
        "can reach this address can read and change every collection",
    )
