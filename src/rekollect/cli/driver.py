"""`rekollect <operation> ...`: the aws CLI's own driver, run as `aws rekognition`.

Argument names, shorthand syntax, `file://` and `fileb://`, pagination, the global
options and the json, text and table output are the awscli package's own, so what
`rekollect` prints is what `aws rekognition` prints. rekollect adds three things on
the driver's botocore session once the global options are parsed:

* with no endpoint (no `--endpoint-url`, no `AWS_ENDPOINT_URL_REKOGNITION` or
  `AWS_ENDPOINT_URL`, no `endpoint_url` in the profile) requests are answered in this
  process from the local data directory, through the `WireHandler` `rekollect serve`
  uses, with image jobs run inline;
* with no credentials anywhere, dummy ones (rekollect never checks signatures);
* with no region anywhere, rekollect's own (`REKOLLECT_REGION`, default us-east-1).

Two deliberate differences from `aws`: an unknown option is a usage error, exit
status 2 (`aws` says 255), and help goes through groff and a pager only on a
terminal; piped, it is plain text (`aws` pipes overstruck man output).

This module imports awscli before anything imports botocore: awscli then makes
`botocore` resolve to the copy it vendors, the one `aws` itself runs on.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any

import awscli
import botocore
import botocore.session
from awscli import argparser, clidriver, plugin
from awscli.bcdoc.textwriter import TextWriter
from awscli.help import PosixHelpRenderer
from botocore.configprovider import ConfiguredEndpointProvider
from docutils.core import publish_string

from rekollect import __version__

if TYPE_CHECKING:
    from rekollect.server.wire import WireHandler
    from rekollect.service import Service

SERVICE = "rekognition"
PROGRAM = "rekollect"
DUMMY_KEY = "rekollect"
# argparse prints this after "usage: ".
USAGE = (
    f"{PROGRAM} [options] <operation> [parameters]\n"
    "To see help text, you can run:\n"
    "\n"
    f"  {PROGRAM} help\n"
    f"  {PROGRAM} <operation> help\n"
)
USAGE_ERROR = 2
# groff's bold ("X\bX") and underline ("_\bX") in its ASCII output.
_OVERSTRIKE = re.compile(rb"[^\x08]\x08")


class LocalService:
    """The service core on the local data directory, opened on the first request."""

    def __init__(self) -> None:
        self.service: Service | None = None

    def handler(self) -> WireHandler:
        from rekollect.config import load_settings
        from rekollect.server.wire import WireHandler

        self.service = load_settings().open_service(engine_workers=0)
        return WireHandler(self.service)

    def close(self) -> None:
        if self.service is not None:
            self.service.close()


class PlainHelpRenderer(PosixHelpRenderer):  # type: ignore[misc]
    """Help as plain text on standard output: no pager, no overstrike.

    Used when standard output is not a terminal, or when neither groff nor mandoc
    is installed (then docutils' own text writer lays the page out).
    """

    def _convert_doc_content(self, contents: str) -> bytes:
        if _formats_man(self):
            return _OVERSTRIKE.sub(b"", super()._convert_doc_content(contents))
        text: bytes = publish_string(
            contents,
            writer=TextWriter(),
            settings_overrides=self._DEFAULT_DOCUTILS_SETTINGS_OVERRIDES,
        )
        return text

    def _send_output_to_pager(self, output: bytes) -> None:
        try:
            sys.stdout.write(output.decode("utf-8"))
            sys.stdout.flush()
        except BrokenPipeError:
            # `rekollect help | head`: the reader has gone; so has the rest.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _formats_man(renderer: Any) -> bool:
    return bool(renderer._exists_on_path("groff") or renderer._exists_on_path("mandoc"))


def _with_renderer(help_command: Any) -> Any:
    """`help_command`, paging man output on a terminal and plain text elsewhere."""
    renderer = help_command.renderer
    if not (
        isinstance(renderer, PosixHelpRenderer)
        and sys.stdout.isatty()
        and _formats_man(renderer)
    ):
        help_command.renderer = PlainHelpRenderer()
    return help_command


class Operation(clidriver.ServiceOperation):  # type: ignore[misc]
    """An operation subcommand: an unknown option is a usage error."""

    def __call__(self, args: list[str], parsed_globals: argparse.Namespace) -> Any:
        try:
            return super().__call__(args, parsed_globals)
        except clidriver.UnknownArgumentError as error:
            sys.stderr.write(f"usage: {USAGE}{error}\n")
            raise SystemExit(USAGE_ERROR) from None

    def create_help_command(self) -> Any:
        return _with_renderer(super().create_help_command())


class RekognitionCommand(clidriver.ServiceCommand):  # type: ignore[misc]
    """`aws rekognition`, with rekollect's operations and help."""

    def _create_command_table(self) -> Any:
        table = super()._create_command_table()
        for command in table.values():
            # awscli builds plain ServiceOperations; customizations stay as they are.
            if type(command) is clidriver.ServiceOperation:
                command.__class__ = Operation
        return table

    def create_help_command(self) -> Any:
        return _with_renderer(super().create_help_command())


class Driver(clidriver.CLIDriver):  # type: ignore[misc]
    """awscli's driver, named rekollect, with `RekognitionCommand` as rekognition."""

    def _build_builtin_commands(self, session: Any) -> Any:
        commands = super()._build_builtin_commands(session)
        commands[SERVICE] = RekognitionCommand(
            cli_name=SERVICE, session=session, service_name=SERVICE
        )
        return commands

    def _create_parser(self, command_table: Any) -> Any:
        parser = super()._create_parser(command_table)
        parser.prog = PROGRAM
        return parser


def create_driver() -> Driver:
    """The driver on a session set up as `aws` sets up its own."""
    session = botocore.session.Session(awscli.EnvironmentVariables)
    session.user_agent_name = PROGRAM
    session.user_agent_version = __version__
    session.user_agent_extra = (
        f"aws-cli/{awscli.__version__} botocore/{botocore.__version__}"
    )
    plugin.load_plugins(
        session.full_config.get("plugins", {}),
        event_hooks=session.get_component("event_emitter"),
    )
    return Driver(session=session)


def run(args: list[str]) -> int:
    """Run `aws rekognition *args` with rekollect's defaults; the exit status."""
    local = LocalService()
    driver = create_driver()
    session = driver.session

    def prepare(parsed_args: argparse.Namespace, **_: Any) -> None:
        _prepare(session, parsed_args, local)

    session.register("session-initialized", prepare)

    # awscli's parsers print this usage text, and name the program after argv[0].
    program, aws_usage = sys.argv[0], argparser.USAGE
    sys.argv[0], argparser.USAGE = PROGRAM, USAGE
    try:
        # Help returns None, which `aws` exits with: status 0.
        return int(driver.main([SERVICE, *args]) or 0)
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    finally:
        sys.argv[0], argparser.USAGE = program, aws_usage
        local.close()


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _prepare(
    session: Any, parsed_args: argparse.Namespace, local: LocalService
) -> None:
    """Choose in-process or HTTP, and fill in credentials and region if missing."""
    if parsed_args.endpoint_url is None and configured_endpoint(session) is None:
        # Imported here: the service core is not needed over HTTP, and slow to load.
        from rekollect.inprocess import LOCAL_ENDPOINT, WireSender

        parsed_args.endpoint_url = LOCAL_ENDPOINT
        session.set_credentials(DUMMY_KEY, DUMMY_KEY)
        session.register(f"before-send.{SERVICE}", WireSender(local.handler))
    elif parsed_args.sign_request and session.get_credentials() is None:
        session.set_credentials(DUMMY_KEY, DUMMY_KEY)
    if session.get_config_variable("region") is None:
        session.set_config_variable("region", default_region())


def configured_endpoint(session: Any) -> str | None:
    """The endpoint the environment or the profile sets for Rekognition, if any."""
    if session.get_config_variable("ignore_configured_endpoint_urls"):
        return None
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config,
        scoped_config=session.get_scoped_config(),
        client_name=SERVICE,
    )
    endpoint: str | None = provider.provide()
    return endpoint


def default_region() -> str:
    from rekollect.service.context import DEFAULT_REGION

    return os.environ.get("REKOLLECT_REGION") or DEFAULT_REGION
