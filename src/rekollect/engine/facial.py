"""Face measurements from landmarks and pixels: pose, quality, confidence, landmarks.

Pure numpy, no ML runtime: the dlib engine calls these with the points its models
found, and they are testable without dlib.

Geometry is expressed in the *eye frame* of a face: the origin halfway between the two
eye centres, x along the eye line towards the image-right eye, y perpendicular to it
pointing down the face, one unit = the distance between the eye centres (an eye's
centre is the midpoint of its two corners). The constants below were measured in that
frame on 497 Labeled Faces in the Wild images (lfw-dev, dlib's HOG detector, its
5-point and 68-point shape predictors):

- the 5-point model's eye corners sit at x = +-0.3025 (inner) and +-0.6975 (outer),
  y = 0, and its nose point (the base of the nose, where it meets the upper lip) at
  (0, 0.771), the same place as the 68-point model's point 33;
- the 68-point model's mouth corners average (+-0.456, 1.093);
- the nose base lies 0.53 units in front of the eye centres: fitted from how the eye
  distance foreshortens (relative to the eye-mouth and eye-chin heights, which yaw
  does not change) as the nose moves sideways; both heights gave 0.53.

Sign conventions of `Pose` (AWS documents the range, -180..180, not the signs; these
follow the image's axes, x right and y down):

- Roll: the eye line's angle from the horizontal, positive when the face is turned
  clockwise on screen (the image-right eye lower than the image-left one);
- Yaw: positive when the face turns towards the image's right side (the subject's own
  left), i.e. the nose moves right of the eyes' midpoint;
- Pitch: positive when the face tilts up (chin forward, nose moving towards the eyes),
  negative when it looks down.

Yaw and pitch come from a single average face, so individual face proportions bias
them: expect about +-10 degrees, enough to tell frontal from turned or profile faces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from rekollect.engine.base import PixelBox, Pose, Quality, RGBImage

Points = npt.NDArray[np.float64]  # shape (n, 2): x, y in pixels

# dlib 5-point model order: image-right eye outer and inner corner, image-left eye
# outer and inner corner, base of the nose (for an upright face).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_OUTER, LEFT_EYE_INNER, NOSE_BASE = range(5)

# Mean 5-point positions in the eye frame (see the module docstring), symmetrised.
CANONICAL_FIVE = np.array(
    [[0.6975, 0.0], [0.3025, 0.0], [-0.6975, 0.0], [-0.3025, 0.0], [0.0, 0.771]]
)
# Mean mouth corners (image-left, image-right) in the eye frame.
CANONICAL_MOUTH = np.array([[-0.456, 1.093], [0.456, 1.093]])
# How far the nose base sits in front of the eye centres, in eye distances.
NOSE_DEPTH = 0.53
# How far below the eye line the nose base sits in a frontal face, in eye distances.
NOSE_DROP = float(CANONICAL_FIVE[NOSE_BASE, 1])

# Landmarks of the 5-point model that are estimated rather than measured.
FIVE_POINT_ESTIMATED = frozenset({"mouthLeft", "mouthRight"})
# The 68-point model has no pupils: they are taken as the centre of the eye's outline,
# which is where they are when the subject looks ahead.
SIXTY_EIGHT_POINT_ESTIMATED = frozenset({"leftPupil", "rightPupil"})


# --- eye frame and landmarks -----------------------------------------------------------


def _eye_frame(five: Points) -> tuple[Points, float, Points, Points]:
    """(origin, eye distance, x unit vector, y unit vector) of a face's eye frame."""
    left_eye = (five[LEFT_EYE_OUTER] + five[LEFT_EYE_INNER]) / 2.0
    right_eye = (five[RIGHT_EYE_OUTER] + five[RIGHT_EYE_INNER]) / 2.0
    across = right_eye - left_eye
    distance = float(np.hypot(across[0], across[1]))
    if distance <= 0.0:
        raise ValueError("The two eyes are at the same point.")
    x_axis = across / distance
    y_axis = np.array([-x_axis[1], x_axis[0]])  # x rotated by +90 degrees, y down
    return (left_eye + right_eye) / 2.0, distance, x_axis, y_axis


def similarity_transform(source: Points, target: Points) -> tuple[complex, complex]:
    """The least-squares similarity (rotation, uniform scale, shift) from source to
    target points, as complex numbers (a, b) with target ~ a * source + b."""
    src = source[:, 0] + 1j * source[:, 1]
    dst = target[:, 0] + 1j * target[:, 1]
    src_mean, dst_mean = src.mean(), dst.mean()
    centred = src - src_mean
    a = complex(np.vdot(centred, dst - dst_mean) / np.vdot(centred, centred))
    return a, complex(dst_mean - a * src_mean)


def estimate_mouth_corners(five: Points) -> tuple[tuple[float, float], ...]:
    """Mouth corners (image-left, image-right) of a 5-point face, in pixels.

    The 5-point model finds no mouth, so the mean face's mouth corners are mapped
    through the similarity transform that best fits the mean face's five points onto
    the measured ones (what dlib does to align a face). On lfw-dev this lands a mean
    0.12 eye distances (about 7 mm) from the 68-point model's corners; expressions
    (smiles) account for most of the rest.
    """
    a, b = similarity_transform(CANONICAL_FIVE, five)
    mapped = a * (CANONICAL_MOUTH[:, 0] + 1j * CANONICAL_MOUTH[:, 1]) + b
    return tuple((float(z.real), float(z.imag)) for z in mapped)


def _point(p: Points) -> tuple[float, float]:
    return float(p[0]), float(p[1])


def five_point_landmarks(five: Points) -> dict[str, tuple[float, float]]:
    """AWS landmarks of a 5-point face; mouth corners are estimates
    (FIVE_POINT_ESTIMATED). `nose` is the base of the nose, where the 5-point model
    puts its point; AWS's sits nearer the tip (about 0.2 eye distances higher)."""
    mouth_left, mouth_right = estimate_mouth_corners(five)
    return {
        "eyeLeft": _point((five[LEFT_EYE_OUTER] + five[LEFT_EYE_INNER]) / 2.0),
        "eyeRight": _point((five[RIGHT_EYE_OUTER] + five[RIGHT_EYE_INNER]) / 2.0),
        "nose": _point(five[NOSE_BASE]),
        "mouthLeft": mouth_left,
        "mouthRight": mouth_right,
        "leftEyeLeft": _point(five[LEFT_EYE_OUTER]),
        "leftEyeRight": _point(five[LEFT_EYE_INNER]),
        "rightEyeLeft": _point(five[RIGHT_EYE_INNER]),
        "rightEyeRight": _point(five[RIGHT_EYE_OUTER]),
    }


# AWS landmark -> the 68-point (iBUG 300-W) indices whose mean it is. The 68-point
# model's "right eye" (36-41) is the image-left one; AWS's eyeLeft is image-left too
# (its DetectFaces examples give eyeLeft the smaller X), and so are the "Left" ends.
_IBUG_68_TO_AWS: Mapping[str, tuple[int, ...]] = {
    "eyeLeft": (36, 37, 38, 39, 40, 41),
    "eyeRight": (42, 43, 44, 45, 46, 47),
    "leftPupil": (36, 37, 38, 39, 40, 41),
    "rightPupil": (42, 43, 44, 45, 46, 47),
    "nose": (30,),  # the tip
    "mouthLeft": (48,),
    "mouthRight": (54,),
    "leftEyeBrowLeft": (17,),
    "leftEyeBrowRight": (21,),
    "leftEyeBrowUp": (19,),
    "rightEyeBrowLeft": (22,),
    "rightEyeBrowRight": (26,),
    "rightEyeBrowUp": (24,),
    "leftEyeLeft": (36,),
    "leftEyeRight": (39,),
    "leftEyeUp": (37, 38),
    "leftEyeDown": (40, 41),
    "rightEyeLeft": (42,),
    "rightEyeRight": (45,),
    "rightEyeUp": (43, 44),
    "rightEyeDown": (46, 47),
    "noseLeft": (31,),
    "noseRight": (35,),
    "mouthUp": (51,),  # top of the upper lip
    "mouthDown": (57,),  # bottom of the lower lip
    "upperJawlineLeft": (1,),
    "midJawlineLeft": (4,),
    "chinBottom": (8,),
    "midJawlineRight": (12,),
    "upperJawlineRight": (15,),
}


def sixty_eight_point_landmarks(points: Points) -> dict[str, tuple[float, float]]:
    """All 30 AWS landmarks of a 68-point face; the pupils are estimates
    (SIXTY_EIGHT_POINT_ESTIMATED), the rest measured."""
    if points.shape != (68, 2):
        raise ValueError(f"Expected 68 points, got {points.shape}.")
    return {
        name: _point(points[list(indices)].mean(axis=0))
        for name, indices in _IBUG_68_TO_AWS.items()
    }


# --- pose ------------------------------------------------------------------------------


def estimate_pose(five: Points) -> Pose:
    """Roll, yaw and pitch (degrees, signs as in the module docstring) of a face.

    Roll is the eye line's angle. In the eye frame the nose base moves sideways by
    NOSE_DEPTH * tan(yaw) eye distances when the head turns (the eye distance itself
    shrinks by cos(yaw), which the frame's unit already divides out), so
    yaw = atan(x / NOSE_DEPTH). Tilting the head by `pitch` moves the nose base's
    height below the eye line, in unforeshortened eye distances, to
    NOSE_DROP * cos(pitch) - NOSE_DEPTH * sin(pitch), which is solved for pitch.
    """
    origin, distance, x_axis, y_axis = _eye_frame(five)
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    nose = five[NOSE_BASE] - origin
    sideways = float(nose @ x_axis) / distance
    drop = float(nose @ y_axis) / distance
    yaw = math.atan2(sideways, NOSE_DEPTH)
    # NOSE_DROP*cos(p) - NOSE_DEPTH*sin(p) = R*cos(p + alpha)
    radius = math.hypot(NOSE_DROP, NOSE_DEPTH)
    alpha = math.atan2(NOSE_DEPTH, NOSE_DROP)
    height = drop * math.cos(yaw)
    pitch = math.acos(max(-1.0, min(1.0, height / radius))) - alpha
    return Pose(
        roll=_wrap_degrees(roll),
        yaw=math.degrees(yaw),
        pitch=_wrap_degrees(math.degrees(pitch)),
    )


def _wrap_degrees(angle: float) -> float:
    """`angle` in -180..180."""
    return (angle + 180.0) % 360.0 - 180.0


# --- detector confidence ---------------------------------------------------------------

# Logistic slope of score -> confidence, per detector, and the score that maps to 50.
# Both detectors' decision threshold is 0: a face at the threshold is a coin flip.
CONFIDENCE_SLOPE = {"hog": 4.0, "cnn": 6.0}


def detection_confidence(score: float, detector: str) -> float:
    """AWS's 0-100 Confidence for a detector's raw score: 100 / (1 + exp(-k * score)).

    Monotonic; 50 at the detector's threshold (score 0). HOG scores of clear frontal
    faces run 1-4 (lfw-dev median 1.7 -> 99.4); k = 3 puts the 5th percentile of
    lfw-dev faces (0.7) at 89 and false detections, rarely above 0.4, below 77. The
    CNN (MMOD) detector's scores of clear faces are about 1.0, hence its k = 6.
    """
    exponent = -CONFIDENCE_SLOPE[detector] * score
    if exponent > 700.0:
        return 0.0
    return 100.0 / (1.0 + math.exp(exponent))


# --- quality ---------------------------------------------------------------------------

# Faces are measured at about this many pixels a side (see `_face_luma`).
_QUALITY_SIDE = 64
# Sharpness = 100 * (1 - exp(-laplacian_ratio / _SHARPNESS_SCALE)).
_SHARPNESS_SCALE = 0.016


def block_mean(pixels: npt.NDArray[Any], factor: int) -> npt.NDArray[np.float32]:
    """`pixels` (H x W or H x W x C) averaged over factor x factor blocks; the last
    rows and columns that do not fill a block are dropped.

    Sums strided views into a float32 total (exact for 8-bit pixels), so a large
    photo is never copied whole as floats."""
    if factor <= 1:
        return pixels.astype(np.float32)
    rows = (pixels.shape[0] // factor) * factor
    cols = (pixels.shape[1] // factor) * factor
    total = np.zeros((rows // factor, cols // factor, *pixels.shape[2:]), np.float32)
    for dy in range(factor):
        for dx in range(factor):
            total += pixels[dy:rows:factor, dx:cols:factor]
    total /= factor * factor
    return total


def _face_luma(image: RGBImage, box: PixelBox) -> npt.NDArray[np.float64]:
    """The face box's pixels (clipped to the image) as Rec. 601 luma, 0-255, reduced
    by an integer block average so the shorter side is 64-127 pixels when larger."""
    height, width = image.shape[:2]
    left, top = max(int(round(box.left)), 0), max(int(round(box.top)), 0)
    right = min(int(round(box.right)), width)
    bottom = min(int(round(box.bottom)), height)
    if right <= left or bottom <= top:
        return np.zeros((0, 0))
    crop = image[top:bottom, left:right]
    rgb = block_mean(crop, max(1, min(crop.shape[:2]) // _QUALITY_SIDE)).astype(
        np.float64
    )
    # Weighted sum rather than a matrix product: no BLAS threads.
    luma: npt.NDArray[np.float64] = (
        0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    )
    return luma


def measure_quality(image: RGBImage, box: PixelBox) -> Quality:
    """Brightness and sharpness (0-100) of the face box's pixels.

    Brightness: the mean luma of the box, 0-255 scaled to 0-100 (linear: black 0,
    white 100; well-lit faces are 40-80).

    Sharpness: how much of the face's contrast is fine detail. The box is reduced to
    64-127 pixels a side (so the figure does not depend on the photo's resolution),
    and the variance of its 4-neighbour Laplacian is divided by 8 times the variance
    of its luma (dimensionless: independent of brightness and contrast), then mapped
    with 100 * (1 - exp(-ratio / 0.05)). Blur removes fine detail, so it lowers the
    ratio quickly.
    """
    luma = _face_luma(image, box)
    if luma.size == 0:
        return Quality(brightness=0.0, sharpness=0.0)
    brightness = float(luma.mean()) / 255.0 * 100.0
    if min(luma.shape) < 3:
        return Quality(brightness=brightness, sharpness=0.0)
    laplacian = (
        luma[:-2, 1:-1]
        + luma[2:, 1:-1]
        + luma[1:-1, :-2]
        + luma[1:-1, 2:]
        - 4.0 * luma[1:-1, 1:-1]
    )
    variance = float(luma.var())
    if variance < 1e-6:  # a flat patch has no detail at all
        return Quality(brightness=brightness, sharpness=0.0)
    ratio = float(laplacian.var()) / (8.0 * variance)
    sharpness = 100.0 * (1.0 - math.exp(-ratio / _SHARPNESS_SCALE))
    return Quality(brightness=brightness, sharpness=sharpness)
