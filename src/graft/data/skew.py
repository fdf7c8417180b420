"""Train/serving skew without labels: can a classifier tell the training inputs from the target inputs?

A logistic-regression domain classifier on the selected backbone's frozen pooled features, cross-validated:
its AUC (0.5: the domains look alike to the backbone) and the proxy A-distance 2 (1 - 2 err) of Ben-David et al.
(0: indistinguishable, 2: perfectly separable), err being the cross-validated error on a balanced sample. A 2-D
PCA projection of both feature sets goes with it, for the report's picture.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MAX_PER_DOMAIN = 2000  # a balanced sample: both domains equally many, so the error is comparable across runs


def domain_classifier(source: np.ndarray, target: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated AUC, error and proxy A-distance of source-vs-target on balanced samples of both."""
    rng = np.random.default_rng(seed)
    n = min(len(source), len(target), MAX_PER_DOMAIN)
    if n < folds:
        raise ValueError(f"the domain classifier needs at least {folds} inputs in each domain, got {n}")
    x = np.concatenate([source[rng.choice(len(source), n, replace=False)],
                        target[rng.choice(len(target), n, replace=False)]])
    y = np.repeat([0, 1], n)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    prob = cross_val_predict(clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                             method="predict_proba")[:, 1]
    err = float(np.mean((prob > 0.5) != y))
    return {"auc": round(float(roc_auc_score(y, prob)), 4), "error": round(err, 4),
            "proxy_a_distance": round(2 * (1 - 2 * err), 4), "per_domain": n, "folds": folds}


def projection(source: np.ndarray, target: np.ndarray, seed: int = 0, most: int = 500) -> dict:
    """Both feature sets in the 2-D PCA plane fitted on their union: {"source": [[x, y]...], "target": [...]}."""
    rng = np.random.default_rng(seed)
    s = source[rng.choice(len(source), min(most, len(source)), replace=False)]
    t = target[rng.choice(len(target), min(most, len(target)), replace=False)]
    pca = PCA(2, random_state=seed).fit(np.concatenate([s, t]))
    return {"source": np.round(pca.transform(s), 3).tolist(), "target": np.round(pca.transform(t), 3).tolist(),
            "explained": np.round(pca.explained_variance_ratio_, 4).tolist()}


def measure(source: np.ndarray, target: np.ndarray, folds: int, seed: int) -> dict:
    """The domain classifier's numbers and the 2-D projection of both feature sets (what select and evaluate keep)."""
    return {**domain_classifier(source, target, folds, seed), "projection": projection(source, target, seed)}
