"""The calibrated similarity score used by AssociateFaces (and searches later)."""

from __future__ import annotations

import numpy as np
import pytest

from rekollect.engine.similarity import (
    similarity_from_distance,
    similarity_pct,
    user_similarity_pct,
)


@pytest.mark.parametrize(
    ("distance", "expected"),
    [(0.600, 80.0), (0.566, 95.0), (0.531, 99.0), (0.630, 50.0)],
)
def test_documented_thresholds_sit_at_their_distances(distance, expected):
    assert similarity_from_distance(distance) == pytest.approx(expected, abs=0.5)


def test_similarity_falls_with_distance_and_stays_in_range():
    distances = np.linspace(0.0, 40.0, 400)
    scores = [similarity_from_distance(d) for d in distances]
    assert all(0.0 <= s <= 100.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 99.9 and scores[-1] == 0.0


def test_identical_embeddings_score_near_100():
    vector = np.full(128, 0.05, dtype=np.float32)
    assert similarity_pct(vector, vector) > 99.9


def test_user_similarity_is_the_best_match_among_the_users_faces():
    face = np.zeros(128, dtype=np.float32)
    near = face.copy()
    near[0] = 0.4
    far = face.copy()
    far[0] = 1.2
    assert user_similarity_pct(face, [far, near]) == pytest.approx(
        similarity_pct(face, near)
    )
    assert user_similarity_pct(face, []) == 0.0
