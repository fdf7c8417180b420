"""The score helpers train, select, evaluate, export and the classical baselines share, on hand-computed cases."""

import numpy as np
import pandas as pd
import pytest

from graft.core.errors import GraftError
from graft.metrics.scores import label_ids, roc, scores


def test_label_ids_follow_the_configured_order():
    ids = label_ids(pd.Series(["b", "a", "c", "a"]), ["c", "a", "b"])
    assert ids.tolist() == [2, 1, 0, 1] and ids.dtype == np.int64


def test_an_unknown_label_names_itself_and_the_setting():
    with pytest.raises(GraftError, match=r"labels \['z'\] are not in data.labels \['a', 'b'\]"):
        label_ids(pd.Series(["a", "z"]), ["a", "b"])


def test_scores_by_hand():
    # actual:    a a a b b c ; predicted: a a b b c c
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    out = scores(y, pred, ["a", "b", "c"])
    assert out["accuracy"] == round(4 / 6, 4) and out["rows"] == 6
    # a: P=1, R=2/3, F1=0.8; b: P=1/2, R=1/2, F1=0.5; c: P=1/2, R=1, F1=2/3
    assert out["per_class"]["a"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3}
    assert out["per_class"]["c"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert out["macro_f1"] == round((0.8 + 0.5 + 2 / 3) / 3, 4)
    assert out["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows: actual
    assert "ece" not in out and "roc" not in out


def test_a_class_never_predicted_scores_zero_not_an_error():
    out = scores(np.array([0, 1, 1]), np.array([0, 0, 0]), ["a", "b"])
    assert out["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert out["macro_f1"] == round((0.5 + 0.0) / 2, 4)


def test_probabilities_add_calibration_and_for_two_classes_the_roc():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]])
    out = scores(y, probs.argmax(1), ["neg", "pos"], probs)
    assert 0.0 <= out["ece"] <= 1.0
    # positives scored 0.65 and 0.8, negatives 0.1 and 0.6: 4 of 4 pairs ranked right
    assert out["roc"]["auc"] == 1.0
    three = scores(np.array([0, 1, 2]), np.array([0, 1, 2]), ["a", "b", "c"], np.eye(3))
    assert "roc" not in three and three["ece"] == 0.0


def test_roc_by_hand_and_thinned():
    curve = roc(np.array([0, 1, 0, 1]), np.array([0.2, 0.4, 0.6, 0.8]))
    assert curve["auc"] == 0.75  # pairs (pos, neg) ranked right: (0.4>0.2), (0.8>0.2), (0.8>0.6); 3 of 4
    assert curve["fpr"][0] == 0.0 and curve["fpr"][-1] == 1.0 and curve["tpr"][-1] == 1.0
    assert curve["thresholds"][0] == 1.0  # +inf ("predict none") capped
    rng = np.random.default_rng(0)
    big = roc(rng.integers(0, 2, 5000), rng.random(5000), points=11)
    assert len(big["fpr"]) <= 11 and big["fpr"] == sorted(big["fpr"])
