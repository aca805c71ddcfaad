"""Encoding of an operation's result by walking its output shape.

Only members the output shape defines are written; absent (None) members are left
out; timestamps become epoch seconds with a fraction, as botocore expects for AWS JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from botocore.model import Shape


def encode(shape: Shape | None, result: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON-ready body for `result` under `shape` (an empty object if none)."""
    if shape is None or not result:
        return {}
    encoded = _value(shape, result)
    assert isinstance(encoded, dict)
    return encoded


def _value(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _value(member, value[name])
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_value(shape.member, item) for item in value]
    if kind == "map":
        return {key: _value(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return _epoch_seconds(value)
    if kind == "blob":
        return base64.b64encode(value).decode("ascii")
    if kind in ("float", "double"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    return value


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return round(value.timestamp(), 3)
    return round(float(value), 3)
