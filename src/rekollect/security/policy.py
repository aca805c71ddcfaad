"""Access-key policies: a small, documented subset of IAM identity policies.

A policy is a JSON document of Allow and Deny statements:

    {"Version": "2012-10-17",
     "Statement": [
       {"Effect": "Allow", "Action": ["rekognition:Search*", "rekognition:ListFaces"],
        "Resource": "arn:aws:rekognition:*:123456789012:collection/team-*"},
       {"Effect": "Deny", "Action": "rekognition:Delete*", "Resource": "*"}]}

Evaluation is IAM's: an explicit Deny wins; otherwise a matching Allow allows;
otherwise the request is denied. `Action` and `Resource` take a string or a list,
with `*` (any run of characters) and `?` (one character) as wildcards; actions match
case-insensitively, resources exactly. Operations that act on no collection
(ListCollections, DetectFaces, CompareFaces) have the resource `*`, which only the
pattern `*` matches, as in IAM. Anything beyond this subset (`Condition`,
`NotAction`, `NotResource`, `Principal`) is refused when the policy is stored, never
silently ignored: ignoring a condition would grant more than its author meant.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rekollect.errors import PolicyError

VERSION = "2012-10-17"
SERVICE_PREFIX = "rekognition:"
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource"}
_UNSUPPORTED = {"Condition", "NotAction", "NotResource", "Principal", "NotPrincipal"}


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def matches(self, action: str, resource: str) -> bool:
        return any(
            _pattern(a, fold=True).fullmatch(action) for a in self.actions
        ) and any(_pattern(r, fold=False).fullmatch(resource) for r in self.resources)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    document: str

    def decide(self, action: str, resource: str) -> Decision:
        """IAM's verdict on `action` (e.g. `rekognition:ListFaces`) on `resource`."""
        matching = [s for s in self.statements if s.matches(action, resource)]
        if any(s.effect == "Deny" for s in matching):
            return Decision.EXPLICIT_DENY
        if matching:
            return Decision.ALLOW
        return Decision.IMPLICIT_DENY


def parse_policy(text: str, known_actions: Iterable[str]) -> Policy:
    """The policy in `text`, checked against the subset above; `known_actions` are
    the operation names an action pattern of `rekognition:` must match one of."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise PolicyError(f"The policy is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise PolicyError("A policy is a JSON object with a 'Statement' member.")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"Unsupported policy members: {', '.join(sorted(unknown))}.")
    if document.get("Version", VERSION) != VERSION:
        raise PolicyError(f"The policy Version must be '{VERSION}'.")
    raw = document.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError(
            "'Statement' must be a statement or a non-empty list of them."
        )

    names = list(known_actions)
    statements = tuple(_statement(item, names) for item in raw)
    return Policy(statements, json.dumps(document, separators=(",", ":")))


def _statement(item: Any, known_actions: list[str]) -> Statement:
    if not isinstance(item, dict):
        raise PolicyError("Each statement must be a JSON object.")
    unsupported = _UNSUPPORTED & set(item)
    if unsupported:
        raise PolicyError(
            f"rekollect does not support {', '.join(sorted(unsupported))} in policies."
        )
    unknown = set(item) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"Unknown statement members: {', '.join(sorted(unknown))}.")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError("A statement's Effect must be 'Allow' or 'Deny'.")
    actions = _strings(item, "Action")
    for action in actions:
        _check_action(action, known_actions)
    return Statement(effect, actions, _strings(item, "Resource"))


def _strings(item: dict[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name)
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise PolicyError(f"A statement's {name} must be a string or a list of them.")
    return tuple(values)


def _check_action(action: str, known_actions: list[str]) -> None:
    if action == "*" or ":" not in action:
        if action != "*":
            raise PolicyError(f"Action '{action}' must be 'service:Name' or '*'.")
        return
    if not action.lower().startswith(SERVICE_PREFIX):
        return  # another service's action (e.g. s3:GetObject): it never matches here
    pattern = _pattern(action, fold=True)
    if not any(pattern.fullmatch(SERVICE_PREFIX + name) for name in known_actions):
        raise PolicyError(f"Action '{action}' matches no Rekognition operation.")


@functools.lru_cache(maxsize=4096)
def _pattern(glob: str, *, fold: bool) -> re.Pattern[str]:
    parts = (
        "." if char == "?" else ".*" if char == "*" else re.escape(char)
        for char in glob
    )
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if fold else re.DOTALL)
