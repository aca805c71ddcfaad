"""The arithmetic of bench/fit_similarity.py, on synthetic data with known answers.

The benchmark's fitted k and d0 go into rekollect's similarity constants, so the
Newton fit and the ROC figures are checked here where the truth is known.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "fit_similarity.py"


@pytest.fixture
def fit(monkeypatch):
    # The benches run as scripts and import their siblings (`harness`) by file name.
    monkeypatch.syspath_prepend(str(_PATH.parent))
    spec = importlib.util.spec_from_file_location("fit_similarity", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fit_similarity", module)
    spec.loader.exec_module(module)
    return module


def _sample(k: float, d0: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    distances = rng.uniform(0.2, 1.1, n)
    p_same = 1.0 / (1.0 + np.exp(k * (distances - d0)))
    return distances, (rng.random(n) < p_same).astype(int)


@pytest.mark.parametrize(("k", "d0"), [(46.2, 0.630), (25.0, 0.55)])
def test_the_fit_recovers_known_constants(fit, k, d0):
    distances, same = _sample(k, d0, 40_000, seed=7)
    curve = fit.fit_curve(distances, same)
    assert abs(curve.k - k) < 4 * curve.k_se
    assert abs(curve.d0 - d0) < 4 * curve.d0_se
    assert curve.k_se < 0.1 * k and curve.d0_se < 0.01
    assert curve.iterations < 50


def test_standard_errors_shrink_with_more_data(fit):
    small = fit.fit_curve(*_sample(40.0, 0.6, 2_000, seed=1))
    large = fit.fit_curve(*_sample(40.0, 0.6, 32_000, seed=1))
    # Four times the standard error for a sixteenth of the data, give or take.
    assert 2.5 < small.k_se / large.k_se < 6


def test_the_curve_inverts_like_the_server_does(fit):
    curve = fit.Curve(46.2, 0.630)
    assert curve.distance_for(80) == pytest.approx(0.630 - math.log(4) / 46.2)
    assert float(curve.similarity(np.array(curve.distance_for(95)))) == pytest.approx(
        95.0
    )


def test_verification_figures_on_a_known_split(fit):
    genuine = np.array([0.1, 0.2, 0.3, 0.4])
    impostor = np.array([0.35, 0.5, 0.6, 0.7, np.inf])
    assert fit.roc_auc(genuine, impostor) == pytest.approx(19 / 20)
    distances = np.concatenate([genuine, impostor])
    same = np.array([1] * 4 + [0] * 5)
    threshold, accuracy = fit.best_threshold(distances, same)
    assert accuracy == pytest.approx(8 / 9)
    assert fit.accuracy_at(distances, same, threshold) == pytest.approx(8 / 9)
    # FAR 20% of 5 impostors allows one: everything below the second impostor.
    assert fit.tar_at_far(genuine, impostor, 0.2)[0] == 1.0
    # FAR 10% allows none: only genuine pairs below the nearest impostor.
    tar, limit = fit.tar_at_far(genuine, impostor, 0.1)
    assert tar == 0.75 and limit < 0.35
