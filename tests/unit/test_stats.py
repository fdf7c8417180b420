import numpy as np
import pytest
from sklearn.metrics import f1_score

from graft.metrics import stats


def test_fast_macro_f1_matches_scikit_learn_including_absent_classes():
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        y, pred = rng.integers(0, k, 200), rng.integers(0, k - 1, 200)  # class k-1 is never predicted
        assert stats.macro_f1(k)(y, pred) == pytest.approx(
            f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0))


def test_mcnemar_exact_on_a_hand_computed_case():
    # 10 rows only A gets right, 2 only B: p = 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    y = np.zeros(30, dtype=int)
    a = np.array([0] * 10 + [1] * 2 + [0] * 18)
    b = np.array([1] * 10 + [0] * 2 + [0] * 18)
    res = stats.mcnemar_exact(y, a, b)
    assert (res["a_right_b_wrong"], res["a_wrong_b_right"]) == (10, 2)
    assert res["p_value"] == pytest.approx(2 * 79 / 4096, rel=1e-3)  # kept to 3 significant digits
    assert stats.mcnemar_exact(y, a, a)["p_value"] == 1.0


def test_paired_bootstrap_is_seeded_and_brackets_the_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    better = np.where(rng.random(1000) < 0.9, y, 1 - y)
    worse = np.where(rng.random(1000) < 0.7, y, 1 - y)
    res = stats.paired_bootstrap(y, better, worse, stats.accuracy, 1000, seed=3)
    assert res == stats.paired_bootstrap(y, better, worse, stats.accuracy, 1000, seed=3)
    assert 0 < res["ci_low"] < res["diff"] < res["ci_high"] and res["diff"] == pytest.approx(
        stats.accuracy(y, better) - stats.accuracy(y, worse))
    same = stats.paired_bootstrap(y, better, better, stats.accuracy, 200, seed=3)
    assert (same["diff"], same["ci_low"], same["ci_high"]) == (0, 0, 0)


def test_expected_calibration_error():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    honest = np.tile([0.6, 0.4], (10, 1))  # says 60% for class 0, is right 40% of the time: gap 0.2
    assert stats.expected_calibration_error(honest, y) == pytest.approx(0.2)
    sure_and_right = np.eye(2)[y]
    assert stats.expected_calibration_error(sure_and_right, y) == 0
