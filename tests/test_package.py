"""Guards on the package itself and on `rekollect serve`."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import rekollect
from tests.conftest import http_client


def test_importing_rekollect_loads_no_database_driver_ml_runtime_or_sdk():
    code = (
        "import sys, rekollect; "
        "heavy = {'sqlalchemy', 'sqlite3', 'psycopg', 'numpy', 'dlib', 'boto3', 'botocore'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_version_is_a_string():
    assert re.fullmatch(r"\d+\.\d+\.\d+", rekollect.__version__)


def test_serve_on_port_zero_logs_the_chosen_port_and_how_to_connect(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rekollect",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "startup complete" in x for x in lines
        ):
            lines.append(process.stdout.readline())
        log = "".join(lines)
        url = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", log)
        assert url and int(url.group(2)) > 0
        assert str(tmp_path) in log
        assert f"endpoint_url='{url.group(1)}'" in log
        assert f"--endpoint-url {url.group(1)}" in log
        assert http_client(url.group(1)).list_collections()["CollectionIds"] == []
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert (tmp_path / "rekollect.db").exists()
