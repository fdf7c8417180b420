"""The scores every stage shares: label ids, accuracy, macro-F1, per-class scores, confusion, calibration, ROC."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from graft.core.errors import GraftError
from graft.metrics.stats import expected_calibration_error


def label_ids(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Map label strings to class indices; an unknown label is an error (validate should have caught it)."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels.astype(str)) - set(index))
    if unknown:
        raise GraftError(f"labels {unknown} are not in data.labels {classes}: run `graft validate`")
    return labels.astype(str).map(index).to_numpy(dtype=np.int64)


def scores(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], probs: np.ndarray | None = None) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows: actual).

    Given class probabilities, also the expected calibration error.
    """
    ids = list(range(len(classes)))
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    out = {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)), 4),
        "per_class": {c: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                          "f1": round(float(f[i]), 4), "support": int(n[i])} for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "rows": int(len(y_true)),
    }
    if probs is not None:
        out["ece"] = expected_calibration_error(probs, y_true)
        if len(classes) == 2 and len(set(y_true.tolist())) == 2:
            out["roc"] = roc(y_true, probs[:, 1])
    return out


def roc(y_true: np.ndarray, scores_1: np.ndarray, points: int = 101) -> dict:
    """ROC curve of a binary task (the second class is positive), thinned to about `points` points, and its AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, thr = roc_curve(y_true, scores_1)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return {"fpr": [round(float(v), 4) for v in fpr[keep]], "tpr": [round(float(v), 4) for v in tpr[keep]],
            "thresholds": [round(float(min(v, 1.0)), 4) for v in thr[keep]],  # the first is +inf: "predict none"
            "auc": round(float(roc_auc_score(y_true, scores_1)), 4)}
