"""What the benchmarks share: a data directory, a `rekollect serve` process on a free
port, a boto3 client for it, and printing a table of figures (the benches run as scripts, so they
import this module by its file name)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REGION = "us-east-1"
_LISTENING = re.compile(r"listening on http://[^:\s]+:(\d+)")


@contextmanager
def bench_dir(given: str | None, prefix: str = "rekollect-bench-") -> Iterator[Path]:
    """The folder `given` (made if missing), else a temporary one removed afterwards."""
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        yield Path(given)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        yield Path(directory)


@contextmanager
def running_server(data_dir: Path, log_name: str, *options: str) -> Iterator[str]:
    """`python -m rekollect serve` on a free port; yields its endpoint URL.

    The server logs at INFO, as deployed: its start-up line tells the port.
    """
    log_path = data_dir / log_name
    command = [sys.executable, "-m", "rekollect", "serve", "--port", "0",
               "--data-dir", str(data_dir), *options]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{wait_for_port(process, log_path)}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_for_port(process: subprocess.Popen[bytes], log_path: Path) -> int:
    """The port a starting server logs, once it logs it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_text())
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"rekollect serve did not start:\n{log_path.read_text()}")


def http_client(endpoint: str) -> Any:
    """boto3 for `endpoint`, without retries (a failure must show in the figures)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "rekognition",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}, read_timeout=300),
    )


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int = 180,
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*row)
    Console(width=width).print(table)
