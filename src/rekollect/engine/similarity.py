"""Calibrated similarity: a 0-100 score from the distance between two embeddings.

The score is the fitted probability that two faces show the same person,

    similarity_pct = 100 / (1 + exp(k * (d - d0)))

with d the Euclidean distance between dlib ResNet descriptors. K and D0 come from a
logistic regression over the 6,000 LFW View-2 pairs: the default search threshold 80
then sits at d = 0.600 (98.1% of same-person pairs accepted, 0.47% of
different-person pairs), 95 at 0.566 and 99 at 0.531.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rekollect.storage.records import Embedding

K = 46.2
D0 = 0.630


def similarity_from_distance(distance: float) -> float:
    """The calibrated similarity (0-100) of two faces `distance` apart."""
    exponent = K * (distance - D0)
    if exponent > 700:  # exp() would overflow; the score is 0 to double precision
        return 0.0
    return 100.0 / (1.0 + math.exp(exponent))


def distance_for_similarity(similarity: float) -> float:
    """The largest distance whose similarity is at least `similarity` (0-100)."""
    if similarity <= 0:
        return math.inf
    if similarity >= 100:
        return 0.0
    return D0 + math.log(100.0 / similarity - 1.0) / K


def similarity_pct(a: Embedding, b: Embedding) -> float:
    """The calibrated similarity (0-100) of two embeddings."""
    return similarity_from_distance(float(np.linalg.norm(a - b)))


def user_similarity_pct(face: Embedding, user_faces: Sequence[Embedding]) -> float:
    """How well a face matches a user: its best match among the user's faces.

    Best match keeps a user with photos from several ages or angles reachable from any
    of them; the measured comparison with a centroid belongs to the engine's
    evaluation (docs/compatibility.md).
    """
    if not user_faces:
        return 0.0
    distances = np.linalg.norm(np.stack(user_faces) - face, axis=1)
    return similarity_from_distance(float(distances.min()))
