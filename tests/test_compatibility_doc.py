"""docs/compatibility.md lists every operation of the model, and tells the truth."""

from __future__ import annotations

import re
from pathlib import Path

from rekollect.protocol.model import operation_names
from rekollect.service import OPERATIONS

DOC = Path(__file__).parent.parent / "docs" / "compatibility.md"
_ROW = re.compile(
    r"^\| (\w+) \| (implemented|partial|not implemented) \|", re.MULTILINE
)


def _statuses() -> dict[str, str]:
    rows = _ROW.findall(DOC.read_text())
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "an operation is listed twice"
    return dict(rows)


def test_every_operation_of_the_model_is_listed():
    assert sorted(_statuses()) == sorted(operation_names())


def test_listed_status_matches_what_the_server_implements():
    statuses = _statuses()
    implemented = {
        name for name, status in statuses.items() if status != "not implemented"
    }
    assert implemented == set(OPERATIONS)
