"""What a face engine is: detect, align and embed the faces of one decoded image.

The service layer only knows this interface. An engine takes an RGB image (a numpy
array, height x width x 3, uint8, already rotated by its EXIF orientation) and returns
one `AnalyzedFace` per face it finds, in pixel coordinates of that image. Everything
AWS reports as ratios (BoundingBox, Landmarks) is derived from these by the caller.

Engines are looked up by name (`rekollect.engine.registry`); a third-party engine
registers itself under the `rekollect.engines` entry-point group and needs no change
to the service code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

RGBImage = npt.NDArray[np.uint8]
Vector = npt.NDArray[np.float32]

# Landmark types every engine must report, as AWS names them.
REQUIRED_LANDMARKS = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


@dataclass(frozen=True)
class PixelBox:
    """A face's box in pixels; it may reach past the image's edges."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


@dataclass(frozen=True)
class Pose:
    """Head rotation in degrees, each in -180..180 as AWS reports it."""

    roll: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class Quality:
    """Brightness and sharpness of the face's pixels, each 0-100."""

    brightness: float
    sharpness: float


@dataclass(frozen=True)
class AnalyzedFace:
    box: PixelBox
    # The detector's own score, and that score mapped to AWS's 0-100 Confidence.
    score: float
    confidence: float
    # AWS landmark type name -> (x, y) in pixels; at least REQUIRED_LANDMARKS.
    landmarks: Mapping[str, tuple[float, float]]
    pose: Pose
    quality: Quality
    # None when the caller did not ask for embeddings.
    embedding: Vector | None = field(default=None, repr=False)
    # Names of landmarks that are estimated rather than measured (documented).
    estimated_landmarks: frozenset[str] = frozenset()


@runtime_checkable
class Engine(Protocol):
    """Detect, align and embed faces. Implementations load their models lazily."""

    # Short name used in settings (REKOLLECT_ENGINE) and logs.
    name: str
    # The FaceModelVersion of collections whose embeddings this engine makes: a
    # numeric string, one per embedding space (docs/compatibility.md).
    model_version: str
    embedding_dim: int

    def analyze(self, image: RGBImage, *, embed: bool = True) -> list[AnalyzedFace]:
        """Every face found in `image`, largest first.

        Embeddings are compared by Euclidean distance; `rekollect.engine.similarity`
        maps a distance to the calibrated 0-100 similarity of `model_version`.
        """
        ...
