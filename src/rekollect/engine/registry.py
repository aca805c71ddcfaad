"""Engines by name: the built-in dlib engine, and any engine a package registers.

A third-party engine is a class (or factory) taking keyword options and returning an
object that satisfies `rekollect.engine.base.Engine`; it registers itself in its
package metadata under the entry-point group `rekollect.engines`:

    [project.entry-points."rekollect.engines"]
    arcface = "my_package.engine:ArcFaceEngine"

and is chosen with `REKOLLECT_ENGINE=arcface` (options as `name:key=value,key=value`).
Nothing in the service layer changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from rekollect.engine import DEFAULT_FACE_MODEL_VERSION
from rekollect.engine.base import Engine
from rekollect.errors import RekollectError

ENTRY_POINT_GROUP = "rekollect.engines"
DEFAULT_ENGINE = "dlib"


@dataclass(frozen=True)
class EngineSpec:
    """Which engine to build, and with what options; picklable for worker processes."""

    name: str = DEFAULT_ENGINE
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> EngineSpec:
        """`dlib`, or `dlib:detector=cnn,landmarks68=true`."""
        name, _, rest = text.strip().partition(":")
        options: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise RekollectError(f"Engine option {item!r} is not key=value.")
            options[key.strip()] = value.strip()
        return cls(name or DEFAULT_ENGINE, options)

    def __str__(self) -> str:
        options = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}:{options}" if options else self.name


def _dlib(**options: str) -> Engine:
    from rekollect.engine.dlib_engine import DlibEngine

    detector = options.pop("detector", "hog")
    landmarks68 = options.pop("landmarks68", "false").lower() in {"1", "true", "yes"}
    if options:
        raise RekollectError(f"Unknown dlib engine options: {', '.join(options)}.")
    return DlibEngine(detector=detector, landmarks68=landmarks68)


_BUILT_IN: dict[str, Callable[..., Engine]] = {"dlib": _dlib}
# FaceModelVersion of each built-in engine, known without building one (whatever its
# options, an engine's embeddings live in one space).
_BUILT_IN_VERSIONS = {"dlib": DEFAULT_FACE_MODEL_VERSION}


def model_version_of(spec: EngineSpec) -> str:
    """The FaceModelVersion an engine produces, without loading its models."""
    if spec.name in _BUILT_IN_VERSIONS:
        return _BUILT_IN_VERSIONS[spec.name]
    return create_engine(spec).model_version


def create_engine(spec: EngineSpec) -> Engine:
    """A new engine for `spec`; its models load when it first analyses an image."""
    factory: Callable[..., Any] | None = _BUILT_IN.get(spec.name)
    if factory is None:
        found = [
            ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec.name
        ]
        if not found:
            known = sorted(_BUILT_IN) + sorted(
                ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)
            )
            raise RekollectError(
                f"No face engine named {spec.name!r}; known: {', '.join(known)}."
            )
        factory = found[0].load()
    engine = factory(**dict(spec.options))
    if not isinstance(engine, Engine):
        raise RekollectError(f"Engine {spec.name!r} does not implement the Engine API.")
    return engine
