"""Metrics against closed forms."""

import numpy as np
import pytest

from diffusio.generative.evaluation.metrics import frechet_distance, kernel_inception_distance, precision_recall


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2.0 + np.array([1.0, 0.0, 2.0])
    # ||mu||^2 + tr(I + 4I - 2 * 2I) = 5 + 3
    assert frechet_distance(a, b) == pytest.approx(8.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    assert abs(kernel_inception_distance(a, b, subsets=10)) < 0.01
    assert kernel_inception_distance(a, b + 1.0, subsets=10) > 0.1


def test_precision_recall():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 2))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    # a collapsed generator: precise, no recall
    collapsed = np.zeros((500, 2)) + rng.normal(size=(500, 2)) * 0.01
    p, r = precision_recall(real, collapsed)
    assert p == 1.0 and r < 0.2
    # far away: neither
    assert precision_recall(real, real + 20.0) == (0.0, 0.0)
