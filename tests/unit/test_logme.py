import numpy as np
import pytest

from graft.metrics import logme as L


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(60, 5))
    y = (f[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(float)
    return f, y


def test_fast_path_equals_the_evidence_computed_from_its_definition(problem):
    f, y = problem
    s, v = np.linalg.eigh(f.T @ f)
    value, alpha, beta = L._fixed_point(f, y, v, s)
    assert value == pytest.approx(L.evidence(f, y, alpha, beta), abs=1e-10)


def test_the_fixed_point_maximises_the_evidence(problem):
    f, y = problem
    s, v = np.linalg.eigh(f.T @ f)
    value, alpha, beta = L._fixed_point(f, y, v, s)
    for da, db in ((1.2, 1), (0.8, 1), (1, 1.2), (1, 0.8)):
        assert L.evidence(f, y, alpha * da, beta * db) < value


def test_hand_computed_one_feature_case():
    # One feature, two examples: F = [[1], [2]], y = [1, 2], alpha = beta = 1.
    # A = 1 + 5 = 6; m = 5/6; residual = (1 - 5/6)^2 + (2 - 10/6)^2 = 5/36; ||m||^2 = 25/36.
    expected = (0.5 * np.log(1) + 1 * np.log(1) - 0.5 * 5 / 36 - 0.5 * 25 / 36 - 0.5 * np.log(6)
                - np.log(2 * np.pi)) / 2
    assert L.evidence(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]), 1.0, 1.0) == pytest.approx(expected)


def test_separable_features_score_higher_than_noise(problem):
    f, y = problem
    noise = np.random.default_rng(1).normal(size=f.shape)
    assert L.logme(f, y.astype(int)) > L.logme(noise, y.astype(int))
