"""Train/serving skew on the selected backbone: can its frozen features tell training inputs from target inputs?

A stratified training sample and a sample of the target pool (each up to select.sample_size) go through the
selected pretrained backbone; a cross-validated domain classifier on the pooled features gives the AUC and the
proxy A-distance (graft.data.skew), judged against validate.skew.domain_auc, and a 2-D PCA projection of both for
the report. Above `fail` the run stops (the target is another task, not a shifted one); above `warn` it says so.
"""

from __future__ import annotations

import pandas as pd

from graft import modalities
from graft.core.config import Candidate, Config
from graft.core.errors import GraftError
from graft.data.skew import measure
from graft.models.features import FeatureCache
from graft.select.ranking import sample


def features(items: list, candidate: Candidate, cfg: Config) -> "object":
    """Pooled features of the frozen pretrained candidate for `items` (through the feature cache)."""
    modality = modalities.get(cfg.data.modality)
    entries, _ = modality.score_backbones([candidate], items, cfg, FeatureCache(cfg.select.feature_cache))
    return entries[0]["features"]


def skew(train: pd.DataFrame, target: pd.DataFrame, candidate: Candidate, cfg: Config) -> dict:
    """The domain classifier's numbers, its status against the bounds, a sentence, and the projection."""
    modality, n = modalities.get(cfg.data.modality), cfg.select.sample_size
    source = modality.examples(sample(train, n, cfg.seed))
    target_rows = target.sample(min(n, len(target)), random_state=cfg.seed)
    src, tgt = features(source, candidate, cfg), features(modality.examples(target_rows), candidate, cfg)
    try:
        found = measure(src, tgt, cfg.select.cv_folds, cfg.seed)
    except ValueError as exc:
        raise GraftError(f"data.target.raw: {exc}") from None
    bound = cfg.validate_.skew.domain_auc
    auc = found["auc"]
    status = "fail" if bound.fail is not None and auc > bound.fail else "warn" if auc > bound.warn else "ok"
    why = (f"a domain classifier on {candidate.name}'s frozen features tells training from target inputs with AUC "
           f"{auc:.3f} (proxy A-distance {found['proxy_a_distance']:.3f}; warn > {bound.warn}"
           + (f", fail > {bound.fail}" if bound.fail is not None else "") + ")")
    if status == "fail":
        raise GraftError(f"skew: {why}: the target looks like another task; raise validate.skew.domain_auc.fail "
                         "only if that is expected")
    return {**found, "backbone": candidate.name, "status": status, "why": why}
