"""LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021).

The log marginal evidence of a Bayesian linear model on frozen features, maximised over its prior precision alpha
and noise precision beta by the paper's fixed-point iteration, averaged over one-vs-rest targets and divided by the
number of examples. Higher means the labels are more linearly predictable from the features, with complexity
penalised: it needs no training and no hyper-parameters.
"""

from __future__ import annotations

import numpy as np


def evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """Log evidence per example of y = F w + noise, w ~ N(0, 1/alpha), noise ~ N(0, 1/beta).

    Straight from the definition (no decomposition): the reference the fast path is tested against.
    """
    f = features.astype(np.float64)
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ target)
    _, logdet = np.linalg.slogdet(a)
    fit = beta / 2 * np.sum((target - f @ m) ** 2) + alpha / 2 * np.sum(m ** 2)
    return float((d / 2 * np.log(alpha) + n / 2 * np.log(beta) - fit - logdet / 2 - n / 2 * np.log(2 * np.pi)) / n)


def _fixed_point(f: np.ndarray, y: np.ndarray, v: np.ndarray, s: np.ndarray, steps: int = 100
                 ) -> tuple[float, float, float]:
    """MacKay's updates of alpha and beta for one target; returns (evidence per example, alpha, beta)."""
    n, d = f.shape
    proj = v.T @ (f.T @ y)  # F^T y in the eigenbasis of F^T F
    alpha, beta = 1.0, 1.0
    for _ in range(steps):
        gamma = float(np.sum(beta * s / (alpha + beta * s)))
        m = v @ (proj * beta / (alpha + beta * s))
        m2 = float(m @ m)
        res2 = float(np.sum((y - f @ m) ** 2))
        new_alpha, new_beta = gamma / (m2 + 1e-12), (n - gamma) / (res2 + 1e-12)
        done = abs(new_alpha / new_beta - alpha / beta) <= 1e-6 * (alpha / beta)
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m = v @ (proj * beta / (alpha + beta * s))
    res2, m2 = float(np.sum((y - f @ m) ** 2)), float(m @ m)
    value = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - beta / 2 * res2 - alpha / 2 * m2
             - np.sum(np.log(alpha + beta * s)) / 2 - n / 2 * np.log(2 * np.pi))
    return float(value / n), alpha, beta


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean LogME over the one-vs-rest targets of `labels` (any hashable class values)."""
    f = features.astype(np.float64)
    s, v = np.linalg.eigh(f.T @ f)
    s = np.clip(s, 0, None)
    return float(np.mean([_fixed_point(f, (labels == c).astype(np.float64), v, s)[0] for c in np.unique(labels)]))
