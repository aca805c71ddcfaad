"""From an engine's faces (pixels) to the API's FaceDetail (ratios), and which faces
a QualityFilter keeps.

FaceDetail carries what the engine measures: BoundingBox, Confidence, Landmarks, Pose
and Quality, the DEFAULT attributes. Attributes an engine cannot estimate (AgeRange,
Gender, Emotions, Smile, ...) are left out even when asked for with ALL or by name:
a missing member is honest, an invented one is not (docs/compatibility.md).

Quality filtering uses one bar per level; AUTO is the default of IndexFaces and sits
between LOW and MEDIUM, so ordinary photos (LFW's 250x250 news pictures, phone
photos) index, while blurred, dark, tiny or profile faces do not. The thresholds are
documented in docs/compatibility.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rekollect.engine.base import AnalyzedFace, PixelBox

Result = dict[str, Any]

# AWS detects faces down to 40x40 px in a 1920x1080 image, scaling with larger ones.
_MIN_FACE_PX_AT_1920 = 40.0
# IndexFaces stores at most this many faces of one image, as AWS's newer models do.
MAX_FACES_PER_IMAGE = 100


@dataclass(frozen=True)
class QualityBar:
    min_confidence: float
    min_brightness: float
    min_sharpness: float
    max_yaw: float
    max_pitch: float
    # The smallest face side, as a share of AWS's 40 px at 1920 px.
    min_size_share: float


QUALITY_BARS: dict[str, QualityBar] = {
    "LOW": QualityBar(50.0, 5.0, 3.0, 75.0, 60.0, 0.5),
    "AUTO": QualityBar(70.0, 10.0, 6.0, 65.0, 50.0, 0.75),
    "MEDIUM": QualityBar(80.0, 15.0, 10.0, 55.0, 45.0, 1.0),
    "HIGH": QualityBar(95.0, 25.0, 20.0, 40.0, 30.0, 1.25),
}


def bounding_box(box: PixelBox, width: int, height: int) -> Result:
    """A pixel box as AWS's ratios of the image size (they may pass 0 or 1)."""
    return {
        "Width": box.width / width,
        "Height": box.height / height,
        "Left": box.left / width,
        "Top": box.top / height,
    }


def face_detail(face: AnalyzedFace, width: int, height: int) -> Result:
    """The FaceDetail of one analysed face."""
    return {
        "BoundingBox": bounding_box(face.box, width, height),
        "Landmarks": [
            {"Type": name, "X": x / width, "Y": y / height}
            for name, (x, y) in face.landmarks.items()
        ],
        "Pose": {
            "Roll": face.pose.roll,
            "Yaw": face.pose.yaw,
            "Pitch": face.pose.pitch,
        },
        "Quality": {
            "Brightness": face.quality.brightness,
            "Sharpness": face.quality.sharpness,
        },
        "Confidence": face.confidence,
    }


def compared_face(face: AnalyzedFace, width: int, height: int) -> Result:
    """A face as CompareFaces' ComparedFace shape (FaceDetail's DEFAULT members)."""
    return face_detail(face, width, height)


def quality_reasons(
    face: AnalyzedFace, width: int, height: int, quality_filter: str
) -> list[str]:
    """Why `quality_filter` rejects `face` (empty: it passes)."""
    bar = QUALITY_BARS.get(quality_filter)
    if bar is None:  # NONE
        return []
    reasons = []
    smallest = _MIN_FACE_PX_AT_1920 * bar.min_size_share * max(width, height) / 1920.0
    if min(face.box.width, face.box.height) < smallest:
        reasons.append("SMALL_BOUNDING_BOX")
    if face.confidence < bar.min_confidence:
        reasons.append("LOW_CONFIDENCE")
    if face.quality.brightness < bar.min_brightness:
        reasons.append("LOW_BRIGHTNESS")
    if face.quality.sharpness < bar.min_sharpness:
        reasons.append("LOW_SHARPNESS")
    if abs(face.pose.yaw) > bar.max_yaw or abs(face.pose.pitch) > bar.max_pitch:
        reasons.append("EXTREME_POSE")
    return reasons


def quality_score(face: AnalyzedFace) -> float:
    """One number to rank faces by when MaxFaces drops some (higher is better)."""
    pose_penalty = (abs(face.pose.yaw) + abs(face.pose.pitch)) / 180.0
    return (
        face.confidence / 100.0
        + face.quality.sharpness / 100.0
        + face.quality.brightness / 200.0
        - pose_penalty
    )


@dataclass(frozen=True)
class Selection:
    kept: list[AnalyzedFace]
    # Each rejected face with its reasons, in the order the engine found them.
    rejected: list[tuple[AnalyzedFace, list[str]]]


def select_faces(
    faces: Sequence[AnalyzedFace],
    width: int,
    height: int,
    *,
    quality_filter: str,
    max_faces: int | None,
) -> Selection:
    """Apply the quality filter, then keep at most `max_faces`.

    When more faces pass than may be kept, the lowest-quality ones go first and,
    among equals, the smallest, as AWS documents; the kept faces stay largest first.
    """
    passing: list[AnalyzedFace] = []
    rejected: list[tuple[AnalyzedFace, list[str]]] = []
    for face in faces:
        reasons = quality_reasons(face, width, height, quality_filter)
        if reasons:
            rejected.append((face, reasons))
        else:
            passing.append(face)

    limit = min(max_faces or MAX_FACES_PER_IMAGE, MAX_FACES_PER_IMAGE)
    if len(passing) > limit:
        ranked = sorted(
            passing, key=lambda f: (quality_score(f), f.box.area), reverse=True
        )
        keep = {id(face) for face in ranked[:limit]}
        rejected += [(f, ["EXCEEDS_MAX_FACES"]) for f in passing if id(f) not in keep]
        passing = [face for face in passing if id(face) in keep]
    passing.sort(key=lambda f: f.box.area, reverse=True)
    return Selection(passing, rejected)
