"""Running `rekollect` and `aws` as subprocesses, side by side, for the CLI tests.

Every command gets a clean environment: no `AWS_*`, `REKOLLECT_*` or `XDG_*`
variables from the developer's shell, `HOME` in a temporary folder. `aws` gets dummy
credentials and a region, as a user would configure them; `rekollect` gets nothing
but a data directory of its own, since it must work without any AWS configuration.
Commands started together run at once (each CLI takes most of a second to start).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REGION, aws_executable

CLI_TIMEOUT_S = 60
REKOLLECT = [sys.executable, "-m", "rekollect"]


@dataclass(frozen=True)
class Run:
    """A finished command: what it exited with and printed."""

    command: Sequence[str]
    returncode: int
    stdout: bytes
    stderr: bytes

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.command)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout.decode(errors='replace')}"
            f"--- stderr\n{self.stderr.decode(errors='replace')}"
        )


Command = tuple[Sequence[str], dict[str, str]]


def clean_env(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without AWS, rekollect or XDG settings."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "REKOLLECT_", "XDG_"))
    }
    return kept | {"HOME": str(home), "MANPAGER": "cat", "PAGER": "cat"} | variables


def aws_env(home: Path, **variables: str) -> dict[str, str]:
    """What a configured aws CLI user has: credentials and a region."""
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    return clean_env(home, **credentials, **variables)


def rekollect_env(home: Path, **variables: str) -> dict[str, str]:
    """No AWS configuration at all; local data in `home`."""
    return clean_env(home, REKOLLECT_DATA_DIR=str(home / "local-data"), **variables)


def aws_command(*args: str) -> list[str]:
    return [aws_executable(), "rekognition", *args]


def rekollect_command(*args: str) -> list[str]:
    return [*REKOLLECT, *args]


def run_all(*commands: Command) -> list[Run]:
    """Run the commands at once; their runs, in order."""
    started = [
        (
            command,
            subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for command, env in commands
    ]
    return [_finish(command, process) for command, process in started]


def run_one(command: Sequence[str], env: dict[str, str]) -> Run:
    return run_all((command, env))[0]


def _finish(command: Sequence[str], process: subprocess.Popen[bytes]) -> Run:
    try:
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"{' '.join(command)} ran past {CLI_TIMEOUT_S} s:\n{stderr.decode()}"
        ) from None
    return Run(command, process.returncode, stdout, stderr)


def assert_same(aws: Run, rekollect: Run) -> None:
    """`rekollect` exited and printed exactly what `aws` did, byte for byte."""
    seen = (rekollect.returncode, rekollect.stdout, rekollect.stderr)
    expected = (aws.returncode, aws.stdout, aws.stderr)
    assert seen == expected, f"aws:\n{aws}\nrekollect:\n{rekollect}"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key: PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
