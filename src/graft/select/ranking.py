"""Ranking candidate backbones by transferability scores, within budgets, on the training data.

Two scores on frozen, pooled features of a stratified training sample, no backbone training:
- LogME (graft.metrics.logme): the Bayesian evidence that the labels are a linear function of the features; it
  rewards separability and penalises needing a complex fit. The default ranking score.
- the cross-validated accuracy of a logistic-regression probe: the same question answered empirically.
The features, parameter counts and measured latencies come from the modality (a text backbone and its truncations
share one forward pass there). Budgets (parameters, latency per example at batch 1 and 32) exclude candidates,
with the reason.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from graft import modalities
from graft.core import progress
from graft.core.config import Candidate, Config, SelectConfig
from graft.core.errors import GraftError
from graft.metrics.logme import logme
from graft.models.features import FeatureCache


def sample(train: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A stratified, seeded sample of at most `size` training rows."""
    if len(train) <= size:
        return train
    return train_test_split(train, train_size=size, random_state=seed, stratify=train["label"])[0]


def budget_reasons(entry: dict, cfg: SelectConfig) -> list[str]:
    """Why a scored candidate is over budget (empty when it fits)."""
    limits = [("params", entry["params"], cfg.max_params, ""),
              ("latency at batch 1", entry["latency_ms"]["batch_1"], cfg.max_latency_ms_batch1, " ms/example"),
              ("latency at batch 32", entry["latency_ms"]["batch_32"], cfg.max_latency_ms_batch32, " ms/example")]
    return [f"{what} {value:,.4g}{unit} > budget {limit:,}{unit}" for what, value, limit, unit in limits
            if limit is not None and value > limit]


def probe_accuracy(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    """Mean cross-validated accuracy of a logistic-regression probe."""
    folds = max(2, min(folds, int(pd.Series(y).value_counts().min())))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, x, y, cv=cv, scoring="accuracy").mean())


def rank(train: pd.DataFrame, cfg: Config) -> dict:
    """Score every candidate and check its budgets; return the ranking (eligible first, best first) and the pick."""
    modality = modalities.get(cfg.data.modality)
    rows = sample(train, cfg.select.sample_size, cfg.seed)
    items, y = modality.examples(rows), rows["label"].astype(str).to_numpy()
    if len(set(y)) < 2:
        raise GraftError("select: the training sample has fewer than two classes")
    start = time.perf_counter()
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    for cand in cfg.select.candidates:
        by_source[cand.source].append(cand)
    cache, ranking, computed = FeatureCache(cfg.select.feature_cache), [], 0
    for group in progress.bar(list(by_source.values()), desc="select: scoring backbones", unit="source"):
        entries, n = modality.score_backbones(group, items, cfg, cache)
        computed += n
        for found in entries:
            feats = found.pop("features")
            entry = {**{k: found[k] for k in ("name", "source", "num_layers")},
                     "logme": round(logme(feats, y), 4),
                     "probe_accuracy": round(probe_accuracy(feats, y, cfg.select.cv_folds, cfg.seed), 4),
                     "params": found["params"], "latency_ms": found["latency_ms"]}
            reasons = budget_reasons(entry, cfg.select)
            ranking.append({**entry, "eligible": not reasons, "reason": "; ".join(reasons) or "within budgets"})
    # Eligible first, then the configured score (higher is better); on a tie the smaller model wins.
    ranking.sort(key=lambda r: (not r["eligible"], -r[cfg.select.rank_by], r["params"]))
    if not ranking[0]["eligible"]:
        raise GraftError("select: no candidate fits the budgets: " + "; ".join(
            f"{r['name']}: {r['reason']}" for r in ranking))
    return {"ranking": ranking, "selected": ranking[0]["name"], "rank_by": cfg.select.rank_by,
            "sample_rows": len(rows), "seconds": round(time.perf_counter() - start, 2),
            "features": {"computed": computed, "cached": len(by_source) * len(items) - computed}}


def markdown(selection: dict) -> str:
    """The ranking as a Markdown table (KFP UI, report)."""
    lines = ["| rank | backbone | LogME | probe accuracy | params | ms/example (b1 / b32) | eligible |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(selection["ranking"], 1):
        mark = " **(selected)**" if r["name"] == selection["selected"] else ""
        ok = "yes" if r["eligible"] else f"no: {r['reason']}"
        lines.append(f"| {i} | {r['name']}{mark} | {r['logme']:.4f} | {r['probe_accuracy']:.4f} | {r['params']:,} | "
                     f"{r['latency_ms']['batch_1']:.2f} / {r['latency_ms']['batch_32']:.2f} | {ok} |")
    feats = selection.get("features", {})
    reuse = f"; features: {feats['computed']} computed, {feats['cached']} from the cache" if feats else ""
    return "\n".join(lines) + f"\n\nranked by {selection['rank_by']}; scored in {selection['seconds']} s{reuse}\n"
