"""Are the attributions faithful? The deletion test and integrated gradients' completeness, measured.

Deletion: remove the top `fraction` of an input's units by attribution, and separately a random `fraction` of them,
and compare how much the probability of the explained class drops. Attributions that point at what the model uses
make the first drop larger: the ratio of mean drops is > 1, and a shuffled attribution gives about 1. The interval
is a bootstrap over items (paired: each item's two drops stay together).
"""

from __future__ import annotations

import math

import numpy as np

from graft.models.attribution import Attribution, Explainer


def masks(attributions: list[Attribution], fraction: float, rng: np.random.Generator
          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per input: a mask of its top-`fraction` units by score, and a mask of as many random units."""
    top, rand = [], []
    for a in attributions:
        n = a.scores.size
        k = min(n, max(1, math.ceil(fraction * n)))
        t, r = np.zeros(n, bool), np.zeros(n, bool)
        t[np.argsort(-a.scores.ravel(), kind="stable")[:k]] = True
        r[rng.choice(n, k, replace=False)] = True
        top.append(t.reshape(a.scores.shape))
        rand.append(r.reshape(a.scores.shape))
    return top, rand


def _ratio(top: np.ndarray, rand: np.ndarray) -> np.ndarray:
    """Mean top drop over mean random drop, per bootstrap row (inf where the random drop is not positive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rand > 0, top / np.where(rand > 0, rand, 1), np.inf)


def deletion(explainer: Explainer, items: list, attributions: list[Attribution], fraction: float, seed: int,
             resamples: int = 1000) -> dict:
    """The deletion test on `items` and their attributions: mean drops, their ratio and difference, with 95% CIs."""
    rng = np.random.default_rng(seed)
    top_masks, rand_masks = masks(attributions, fraction, rng)
    target = np.array([a.target for a in attributions])
    before = np.array([a.probability for a in attributions])
    rows = np.arange(len(items))
    top = before - explainer.delete(items, top_masks)[rows, target]
    rand = before - explainer.delete(items, rand_masks)[rows, target]
    idx = rng.integers(0, len(items), (resamples, len(items)))
    t, r = top[idx].mean(1), rand[idx].mean(1)
    diff, ratio = t - r, _ratio(t, r)
    point = float(_ratio(np.array(top.mean()), np.array(rand.mean())))
    with np.errstate(invalid="ignore"):  # inf - inf between two unbounded resamples: no bound (None)
        ratio_ci = [_finite(np.percentile(ratio, 2.5)), _finite(np.percentile(ratio, 97.5))]
    return {"items": len(items), "fraction": fraction, "top_drop": round(float(top.mean()), 5),
            "random_drop": round(float(rand.mean()), 5),
            "ratio": round(point, 4) if math.isfinite(point) else None,
            "ratio_ci": ratio_ci,
            "difference": {"diff": round(float(top.mean() - rand.mean()), 5),
                           "ci_low": round(float(np.percentile(diff, 2.5)), 5),
                           "ci_high": round(float(np.percentile(diff, 97.5)), 5), "level": 0.95,
                           "resamples": resamples}}


def _finite(x: float) -> float | None:
    return round(float(x), 4) if math.isfinite(x) else None


def completeness(attributions: list[Attribution], bound: float) -> dict:
    """How many items' scores add up to p(input) - p(baseline) within `bound`: IG's convergence at these steps."""
    delta = np.abs([a.delta for a in attributions])
    return {"bound": bound, "share": round(float((delta <= bound).mean()), 4) if delta.size else None,
            "median_abs_delta": round(float(np.median(delta)), 5) if delta.size else None,
            "max_abs_delta": round(float(delta.max()), 5) if delta.size else None}


def concentration(attributions: list[Attribution], fraction: float) -> float | None:
    """Mean share of an input's absolute attribution held by its top `fraction` of units (1/n-uniform: fraction)."""
    shares = []
    for a in attributions:
        s = np.sort(np.abs(a.scores.ravel()))[::-1]
        k = min(s.size, max(1, math.ceil(fraction * s.size)))
        if s.sum() > 0:
            shares.append(s[:k].sum() / s.sum())
    return round(float(np.mean(shares)), 4) if shares else None
