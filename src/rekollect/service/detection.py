"""DetectFaces and CompareFaces: stateless image operations, nothing is stored."""

from __future__ import annotations

from typing import Any

import numpy as np

from rekollect.engine.pool import ImageAnalysis
from rekollect.engine.similarity import similarity_from_distance
from rekollect.errors import InvalidParameterException
from rekollect.service.context import Service
from rekollect.service.face_detail import (
    MAX_FACES_PER_IMAGE,
    bounding_box,
    compared_face,
    face_detail,
    select_faces,
)
from rekollect.service.images import image_bytes
from rekollect.storage.records import Scope

Result = dict[str, Any]

DEFAULT_SIMILARITY_THRESHOLD = 80.0


def detect_faces(
    svc: Service,
    scope: Scope,
    *,
    image: dict[str, Any],
    attributes: list[str] | None = None,
) -> Result:
    """FaceDetails of the 100 largest faces (only the attributes the engine measures)."""
    del scope, attributes
    analysis = svc.analyzer.analyze(image_bytes(image, svc.s3_settings), embed=False)
    return {
        "FaceDetails": [
            face_detail(face, analysis.width, analysis.height)
            for face in analysis.faces[:MAX_FACES_PER_IMAGE]
        ]
    }


def compare_faces(
    svc: Service,
    scope: Scope,
    *,
    source_image: dict[str, Any],
    target_image: dict[str, Any],
    similarity_threshold: float | None = None,
    quality_filter: str | None = None,
) -> Result:
    """Compare the largest face of the source with the 100 largest of the target."""
    del scope
    threshold = (
        DEFAULT_SIMILARITY_THRESHOLD
        if similarity_threshold is None
        else similarity_threshold
    )
    level = quality_filter or "NONE"
    source = svc.analyzer.analyze(image_bytes(source_image, svc.s3_settings))
    target = svc.analyzer.analyze(image_bytes(target_image, svc.s3_settings))

    source_faces = _usable(source, level)
    if not source_faces:
        raise InvalidParameterException(
            "There are no faces in the source image that pass the quality filter."
        )
    target_faces = _usable(target, level)
    if not target_faces:
        raise InvalidParameterException(
            "There are no faces in the target image that pass the quality filter."
        )

    probe = source_faces[0]
    assert probe.embedding is not None
    matches: list[Result] = []
    unmatched: list[Result] = []
    for face in target_faces:
        assert face.embedding is not None
        distance = float(np.linalg.norm(face.embedding - probe.embedding))
        similarity = similarity_from_distance(distance)
        shown = compared_face(face, target.width, target.height)
        if similarity >= threshold:
            matches.append({"Similarity": similarity, "Face": shown})
        else:
            unmatched.append(shown)
    matches.sort(key=lambda match: match["Similarity"], reverse=True)
    return {
        "SourceImageFace": {
            "BoundingBox": bounding_box(probe.box, source.width, source.height),
            "Confidence": probe.confidence,
        },
        "FaceMatches": matches,
        "UnmatchedFaces": unmatched,
    }


def _usable(analysis: ImageAnalysis, quality_filter: str) -> list[Any]:
    selection = select_faces(
        analysis.faces,
        analysis.width,
        analysis.height,
        quality_filter=quality_filter,
        max_faces=MAX_FACES_PER_IMAGE,
    )
    return selection.kept
