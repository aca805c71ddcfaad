"""Running `rekollect` as a real subprocess, with every file it reads or writes
(data directory, settings file, AWS config and credentials, home) inside one folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def cli_env(root: Path) -> dict[str, str]:
    """An environment whose data, settings and home all lie under `root`."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "REKOLLECT_", "XDG_"))
    }
    return inherited | {
        "HOME": str(home),
        "REKOLLECT_DATA_DIR": str(root / "data"),
        "REKOLLECT_CONFIG_FILE": str(home / "rekollect.ini"),
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_PAGER": "",
        # Wide enough that rich never wraps a table cell the tests look for.
        "COLUMNS": "240",
    }


def rekollect(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`rekollect *args`, finished; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "rekollect", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def closed_port_url() -> str:
    """An http:// URL on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
