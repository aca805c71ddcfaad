"""Made-up face embeddings with known distances, until IndexFaces makes real ones.

Each person is a random 128-D point; each face of that person lies near it. Faces of
one person are about 0.3 apart (calibrated similarity above 99), faces of different
people about 1.0 apart (similarity 0), like dlib descriptors of clear photos.
"""

from __future__ import annotations

import itertools
import uuid

import numpy as np

from rekollect.storage.records import BoundingBox, NewFace

DIMENSION = 128
_PERSON_SCALE = 1.0 / np.sqrt(2 * DIMENSION)
_FACE_SCALE = 0.3 / np.sqrt(2 * DIMENSION)
_seeds = itertools.count(1)


def person(seed: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed if seed is not None else next(_seeds) + 10_000)
    return (rng.standard_normal(DIMENSION) * _PERSON_SCALE).astype(np.float32)


def face_of(center: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(next(_seeds))
    noise = rng.standard_normal(DIMENSION) * _FACE_SCALE
    return (center + noise).astype(np.float32)


def new_face(embedding: np.ndarray, external_image_id: str | None = None) -> NewFace:
    return NewFace(
        face_id=str(uuid.uuid4()),
        image_id=str(uuid.uuid4()),
        external_image_id=external_image_id,
        box=BoundingBox(width=0.25, height=0.3, left=0.4, top=0.2),
        confidence=99.9,
        model_version="1.0",
        embedding=embedding,
    )
