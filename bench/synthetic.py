"""Made-up face embeddings for benchmarks: people as random 128-D points, their faces
about 0.3 apart and other people's about 1.0 apart, like dlib descriptors of clear
photos (the benches run as scripts, so they import this module by its file name)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

DIMENSION = 128


def person_faces(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` faces of one new person, as rows of a float32 matrix."""
    center = rng.standard_normal(DIMENSION) / np.sqrt(2 * DIMENSION)
    noise = rng.standard_normal((count, DIMENSION)) * 0.3 / np.sqrt(2 * DIMENSION)
    return (center + noise).astype(np.float32)


def new_face(embedding: np.ndarray) -> Any:
    """A NewFace ready for `rekollect.service.faces.add_faces`."""
    from rekollect.storage.records import BoundingBox, NewFace

    return NewFace(
        face_id=str(uuid.uuid4()),
        image_id=str(uuid.uuid4()),
        external_image_id=None,
        box=BoundingBox(width=0.25, height=0.3, left=0.4, top=0.2),
        confidence=99.9,
        model_version="1.0",
        embedding=embedding,
    )
