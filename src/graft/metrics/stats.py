"""Statistics for comparing two classifiers on the same test rows: paired bootstrap, McNemar, calibration.

A point estimate of "A beats B by 0.8 points" on 1000 rows says little on its own; these say how sure it is.
- paired bootstrap: resample test rows with replacement (the same rows for both models), recompute the metric
  difference each time; the 2.5% and 97.5% quantiles bound it (seeded, so reruns agree).
- McNemar's exact test: only the rows where exactly one model is right carry information; under "equally good"
  each such row is a fair coin, so the p-value is a two-sided binomial tail.
- expected calibration error: how far the predicted confidence is from the accuracy, averaged over confidence bins.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import binomtest

Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of rows predicted right."""
    return float((y == pred).mean())


def macro_f1(num_classes: int) -> Metric:
    """Macro-F1 over classes 0..k-1 from confusion counts; a thousand bootstrap resamples need it fast.

    Absent classes count as 0, as scikit-learn's zero_division=0 does.
    """
    k = num_classes

    def metric(y: np.ndarray, pred: np.ndarray) -> float:
        cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
        tp = np.diag(cm)
        denom = 2 * tp + (cm.sum(0) - tp) + (cm.sum(1) - tp)
        return float(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).mean())

    return metric


def paired_bootstrap(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, metric: Metric, resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> dict:
    """metric(A) - metric(B) on the test rows, with a paired-bootstrap confidence interval."""
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, n)
        diffs[i] = metric(y[idx], pred_a[idx]) - metric(y[idx], pred_b[idx])
    tail = (1 - level) / 2
    return {"diff": round(metric(y, pred_a) - metric(y, pred_b), 6),
            "ci_low": round(float(np.quantile(diffs, tail)), 6),
            "ci_high": round(float(np.quantile(diffs, 1 - tail)), 6), "level": level, "resamples": resamples}


def mcnemar_exact(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """McNemar's exact test: p-value that A and B are equally accurate, from the rows where they disagree."""
    a_only = int(((pred_a == y) & (pred_b != y)).sum())
    b_only = int(((pred_a != y) & (pred_b == y)).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)
    return {"a_right_b_wrong": a_only, "a_wrong_b_right": b_only, "p_value": float(f"{p:.3g}")}  # 3 significant


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins of the top-class probability."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs((pred[mask] == y[mask]).mean() - conf[mask].mean())
    return round(float(total), 6)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def compare(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int, resamples: int, seed: int
            ) -> dict:
    """A vs B on the same rows: accuracy and macro-F1 differences with bootstrap CIs, and McNemar's p-value."""
    return {"accuracy": paired_bootstrap(y, pred_a, pred_b, accuracy, resamples, seed),
            "macro_f1": paired_bootstrap(y, pred_a, pred_b, macro_f1(num_classes), resamples, seed),
            "mcnemar": mcnemar_exact(y, pred_a, pred_b)}
