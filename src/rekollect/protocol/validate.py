"""Validation of a decoded request against its input shape in the service model.

Every member is checked for what the model says: required, type, length, list size,
numeric range, regular expression pattern, enum, and unknown members. All failures are
collected and reported together in AWS's validation-message form:

    2 validation errors detected: Value 'bad id!' at 'collectionId' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+; ...

Blobs arrive base64-encoded; the validated copy holds the decoded bytes, and blob
length limits apply to the decoded size, as in AWS.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

import regex
from botocore.model import Shape

from rekollect.errors import ImageTooLargeException, InvalidParameterException

_SHOWN_VALUE_DEPTH = 8
_SHOWN_VALUE_CHARS = 100
_SHOWN_PER_CONSTRAINT = 2
_LIST_INDEX = regex.compile(r"\.\d+\.")


@dataclass(frozen=True)
class Violation:
    path: str
    value: Any
    constraint: str
    too_large_blob: bool = False

    def __str__(self) -> str:
        shown = "null" if self.value is None else f"'{_show(self.value)}'"
        return (
            f"Value {shown} at '{self.path}' failed to satisfy constraint: "
            f"{self.constraint}"
        )


def validate(shape: Shape | None, params: Any) -> dict[str, Any]:
    """Return a validated copy of `params` or raise the AWS error a client expects."""
    if not isinstance(params, dict):
        raise InvalidParameterException("The request body must be a JSON object.")
    if shape is None:
        return {}

    violations: list[Violation] = []
    clean = _structure(shape, params, "", violations)
    if any(v.too_large_blob for v in violations):
        raise ImageTooLargeException()
    if violations:
        raise InvalidParameterException(_message(violations))
    assert isinstance(clean, dict)
    return clean


def _message(violations: list[Violation]) -> str:
    """Every failing member and constraint, with repeats over list items summarised."""
    seen: dict[tuple[str, str], int] = {}
    shown: list[str] = []
    for violation in violations:
        key = (_LIST_INDEX.sub(".*.", violation.path), violation.constraint)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= _SHOWN_PER_CONSTRAINT:
            shown.append(str(violation))
    hidden = len(violations) - len(shown)
    count = len(violations)
    text = f"{count} validation {'error' if count == 1 else 'errors'} detected: "
    text += "; ".join(shown)
    if hidden:
        text += f"; and {hidden} more like these"
    return text


def _structure(shape: Shape, value: Any, path: str, out: list[Violation]) -> Any:
    if not isinstance(value, dict):
        out.append(Violation(path, value, "Member must be a structure"))
        return None

    clean: dict[str, Any] = {}
    for name in shape.required_members:
        if value.get(name) is None:
            out.append(Violation(_join(path, name), None, "Member must not be null"))
    for name, member_value in value.items():
        member = shape.members.get(name)
        if member is None:
            out.append(
                Violation(
                    _join(path, name),
                    member_value,
                    f"Member is not defined in {shape.name}",
                )
            )
        elif member_value is not None:
            clean[name] = _value(member, member_value, _join(path, name), out)
    return clean


def _value(shape: Shape, value: Any, path: str, out: list[Violation]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, path, out)
    if kind == "list":
        return _list(shape, value, path, out)
    if kind == "map":
        return _map(shape, value, path, out)
    if kind == "string":
        return _string(shape, value, path, out)
    if kind == "blob":
        return _blob(shape, value, path, out)
    if kind == "boolean":
        if not isinstance(value, bool):
            out.append(Violation(path, value, "Member must be a boolean"))
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(Violation(path, value, "Member must be an integer"))
            return value
        _range(shape, value, path, out)
        return value
    if kind in ("float", "double", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(Violation(path, value, "Member must be a number"))
            return value
        _range(shape, value, path, out)
        return float(value)
    return value


def _string(shape: Shape, value: Any, path: str, out: list[Violation]) -> Any:
    if not isinstance(value, str):
        out.append(Violation(path, value, "Member must be a string"))
        return value
    _length(shape, len(value), value, path, out)
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        allowed = ", ".join(enum)
        out.append(
            Violation(path, value, f"Member must satisfy enum value set: [{allowed}]")
        )
    pattern = shape.metadata.get("pattern")
    if pattern and not _compiled(pattern).fullmatch(value):
        out.append(
            Violation(
                path,
                value,
                f"Member must satisfy regular expression pattern: {pattern}",
            )
        )
    return value


def _blob(shape: Shape, value: Any, path: str, out: list[Violation]) -> Any:
    if not isinstance(value, str):
        out.append(Violation(path, value, "Member must be a base64-encoded string"))
        return value
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        out.append(Violation(path, "<blob>", "Member must be valid base64"))
        return value
    maximum = shape.metadata.get("max")
    if maximum is not None and len(data) > maximum:
        out.append(
            Violation(
                path,
                f"<{len(data)} bytes>",
                f"Member must have length less than or equal to {maximum}",
                too_large_blob=True,
            )
        )
    minimum = shape.metadata.get("min")
    if minimum is not None and len(data) < minimum:
        out.append(
            Violation(
                path,
                f"<{len(data)} bytes>",
                f"Member must have length greater than or equal to {minimum}",
            )
        )
    return data


def _list(shape: Shape, value: Any, path: str, out: list[Violation]) -> Any:
    if not isinstance(value, list):
        out.append(Violation(path, value, "Member must be a list"))
        return value
    _length(shape, len(value), value, path, out)
    return [
        _value(shape.member, item, f"{path}.{index}.member", out)
        for index, item in enumerate(value, start=1)
    ]


def _map(shape: Shape, value: Any, path: str, out: list[Violation]) -> Any:
    if not isinstance(value, dict):
        out.append(Violation(path, value, "Member must be a map"))
        return value
    _length(shape, len(value), value, path, out)
    clean = {}
    for key, item in value.items():
        key_errors: list[Violation] = []
        _value(shape.key, key, path, key_errors)
        for error in key_errors:
            out.append(
                Violation(
                    path, key, f"Map keys must satisfy constraint: [{error.constraint}]"
                )
            )
        item_errors: list[Violation] = []
        clean[key] = _value(shape.value, item, path, item_errors)
        for error in item_errors:
            out.append(
                Violation(
                    path,
                    item,
                    f"Map values must satisfy constraint: [{error.constraint}]",
                )
            )
    return clean


def _length(
    shape: Shape, size: int, value: Any, path: str, out: list[Violation]
) -> None:
    maximum = shape.metadata.get("max")
    minimum = shape.metadata.get("min")
    if maximum is not None and size > maximum:
        out.append(
            Violation(
                path, value, f"Member must have length less than or equal to {maximum}"
            )
        )
    if minimum is not None and size < minimum:
        out.append(
            Violation(
                path,
                value,
                f"Member must have length greater than or equal to {minimum}",
            )
        )


def _range(shape: Shape, number: float, path: str, out: list[Violation]) -> None:
    maximum = shape.metadata.get("max")
    minimum = shape.metadata.get("min")
    if maximum is not None and number > maximum:
        out.append(
            Violation(
                path, number, f"Member must have value less than or equal to {maximum}"
            )
        )
    if minimum is not None and number < minimum:
        out.append(
            Violation(
                path,
                number,
                f"Member must have value greater than or equal to {minimum}",
            )
        )


@functools.cache
def _compiled(pattern: str) -> regex.Pattern[str]:
    # The model's patterns use \p{L}-style classes, which only `regex` understands.
    return regex.compile(pattern)


def _join(path: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{path}.{name}" if path else name


def _show(value: Any, depth: int = 0) -> str:
    """The value as AWS quotes it in messages, shortened; deep nesting elided."""
    if isinstance(value, list | dict) and depth >= _SHOWN_VALUE_DEPTH:
        text = "[...]" if isinstance(value, list) else "{...}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(item, depth + 1) for item in value) + "]"
    elif isinstance(value, dict):
        items = (f"{k}={_show(v, depth + 1)}" for k, v in value.items())
        text = "{" + ", ".join(items) + "}"
    elif value is None or isinstance(value, bool):
        text = json.dumps(value)  # null, true, false: as the client sent them
    else:
        text = str(value)
    if len(text) > _SHOWN_VALUE_CHARS:
        return text[:_SHOWN_VALUE_CHARS] + "..."
    return text
