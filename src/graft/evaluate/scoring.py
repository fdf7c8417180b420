"""Scoring saved models on the test split, the classical baseline and the re-scored champion, and the selfcheck.

Every comparison is paired on the same test rows (graft.metrics.stats): bootstrap intervals and McNemar's test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from graft import modalities
from graft.core.config import Config
from graft.core.errors import GraftError
from graft.metrics.scores import label_ids, scores
from graft.metrics.stats import compare, softmax
from graft.models.classifier import predict_logits
from graft.promote import registry
from graft.select.selfcheck import compare_ranking, models
from graft.serve.export import package_logits
from graft.serve.predict import Package


def score_model(folder: str | Path, test: pd.DataFrame, cfg: Config) -> tuple[dict, np.ndarray]:
    """Score one saved model on `test`; return (scores, predicted class ids)."""
    processor, model, meta = modalities.load_model(folder)
    if meta["labels"] != list(cfg.data.labels):
        raise GraftError(f"{folder}: trained for labels {meta['labels']}, but data.labels is {cfg.data.labels}")
    logits = predict_logits(model, processor, modalities.get(meta["modality"]).examples(test),
                            cfg.evaluate.batch_size)
    pred = logits.argmax(1)
    return scores(label_ids(test["label"], meta["labels"]), pred, meta["labels"], softmax(logits)), pred


def evaluate(splits: dict[str, pd.DataFrame], finetune: str | Path, scratch: str | Path, cfg: Config,
             data_md5: str | None = None) -> tuple[dict, list[dict], dict]:
    """Scores of the fine-tuned model and both baselines on the test split, the confusion-plot rows, the predictions.

    The rows are the fine-tuned model's (actual, predicted) pairs; the predictions (class ids per model, named as
    the domains section names them) let that section compare on the same test split without scoring it again.
    """
    classes, test = list(cfg.data.labels), splits["test"]
    ft, ft_pred = score_model(finetune, test, cfg)
    sc, sc_pred = score_model(scratch, test, cfg)
    y, n = label_ids(test["label"], classes), cfg.evaluate.bootstrap_resamples
    probs, method = modalities.get(cfg.data.modality).classical(splits["train"], test, classes, cfg.seed)
    cl_pred = probs.argmax(1)
    cl = {**scores(y, cl_pred, classes, probs), "method": method}
    comparisons = {f"finetune_vs_{name}": compare(y, ft_pred, pred, len(classes), n, cfg.seed)
                   for name, pred in (("scratch", sc_pred), ("classical", cl_pred))}
    champ = champion_check(test, y, ft_pred, cfg, data_md5)
    if "comparison" in champ:
        comparisons["finetune_vs_champion"] = champ.pop("comparison")
    rows = [{"actual": a, "predicted": classes[p]} for a, p in zip(test["label"].astype(str), ft_pred)]
    return ({"finetune": ft, "scratch": sc, "classical": cl, "champion": champ, "comparisons": comparisons,
             "labels": classes}, rows, {"source_only": ft_pred, "scratch": sc_pred, "classical": cl_pred})


def champion_check(test: pd.DataFrame, y: np.ndarray, ft_pred: np.ndarray, cfg: Config, data_md5: str | None
                   ) -> dict:
    """Re-score the registry's current champion on this test split: its stored metrics are never trusted.

    {"version": None, "first_run": True} when nothing was promoted yet. A champion trained on another data version
    is still scored on the current split, and the note says so.
    """
    classes = list(cfg.data.labels)
    with tempfile.TemporaryDirectory() as tmp:
        found = registry.download_champion(cfg.registry, tmp)
        if found is None:
            return {"version": None, "first_run": True, "note": "no champion yet: the first-run policy applies"}
        pkg = Package(found["path"], "fp32")
        if pkg.labels != classes:
            return {"version": found["version"], "first_run": False, "comparable": False,
                    "note": f"champion v{found['version']} predicts {pkg.labels}, not data.labels {classes}"}
        logits = package_logits(pkg, pkg.modality.examples(test), cfg.evaluate.batch_size)
        trained_on = pkg.meta.get("data_md5")
    pred = logits.argmax(1)
    note = f"champion v{found['version']} re-scored on the current test split"
    if trained_on and data_md5 and trained_on != data_md5:
        note += f" (it was trained on data {trained_on[:8]}, this split comes from {data_md5[:8]})"
    return {"version": found["version"], "first_run": False, "comparable": True, "note": note,
            "scores": scores(y, pred, classes, softmax(logits)),
            "comparison": compare(y, ft_pred, pred, len(classes), cfg.evaluate.bootstrap_resamples, cfg.seed)}


def selfcheck(test: pd.DataFrame, finetune: dict, selection: dict, runners_up: str | Path, cfg: Config) -> dict:
    """Score the selfcheck's runners-up on `test` and compare the ranking with the real scores."""
    tested = [{"name": selection["selected"], "predicted_rank": 1, **finetune}]
    for m in models(runners_up):
        scored = score_model(m["path"], test, cfg)[0]
        tested.append({"name": m["name"], "predicted_rank": m["predicted_rank"], **scored})
    return compare_ranking(selection, tested, cfg.selfcheck.metric)
