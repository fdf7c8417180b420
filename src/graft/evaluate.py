"""The `evaluate` stage: fine-tuned, scratch, classical (graft.classical) and champion models on one test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from graft import model as gm
from graft.config import Config
from graft.data import examples
from graft.errors import GraftError


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
        from graft.stats import expected_calibration_error

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


def score_model(folder: str | Path, test: pd.DataFrame, cfg: Config) -> tuple[dict, np.ndarray]:
    """Score one saved model on `test`; return (scores, predicted class ids)."""
    tokenizer, model, meta = gm.load(folder)
    if meta["labels"] != list(cfg.data.labels):
        raise GraftError(f"{folder}: trained for labels {meta['labels']}, but data.labels is {cfg.data.labels}")
    from graft.stats import softmax

    logits = gm.predict_logits(model, tokenizer, examples(test), meta["max_length"],
                               cfg.evaluate.batch_size)
    pred = logits.argmax(1)
    return scores(label_ids(test["label"], meta["labels"]), pred, meta["labels"], softmax(logits)), pred


def evaluate(splits: dict[str, pd.DataFrame], finetune: str | Path, scratch: str | Path, cfg: Config,
             data_md5: str | None = None) -> tuple[dict, list[dict]]:
    """Scores of the fine-tuned model and both baselines on the test split, and the confusion-plot rows.

    The rows are the fine-tuned model's (actual, predicted) pairs.
    """
    classes, test = list(cfg.data.labels), splits["test"]
    from graft.stats import compare

    ft, ft_pred = score_model(finetune, test, cfg)
    sc, sc_pred = score_model(scratch, test, cfg)
    from graft.classical import baseline

    cl, cl_pred = baseline(splits["train"], test, classes, cfg.seed)
    y, n = label_ids(test["label"], classes), cfg.evaluate.bootstrap_resamples
    comparisons = {f"finetune_vs_{name}": compare(y, ft_pred, pred, len(classes), n, cfg.seed)
                   for name, pred in (("scratch", sc_pred), ("classical", cl_pred))}
    champ = champion_check(test, y, ft_pred, cfg, data_md5)
    if "comparison" in champ:
        comparisons["finetune_vs_champion"] = champ.pop("comparison")
    rows = [{"actual": a, "predicted": classes[p]} for a, p in zip(test["label"].astype(str), ft_pred)]
    return {"finetune": ft, "scratch": sc, "classical": cl, "champion": champ, "comparisons": comparisons,
            "labels": classes}, rows


def champion_check(test: pd.DataFrame, y: np.ndarray, ft_pred: np.ndarray, cfg: Config, data_md5: str | None
                   ) -> dict:
    """Re-score the registry's current champion on this test split: its stored metrics are never trusted.

    {"version": None, "first_run": True} when nothing was promoted yet. A champion trained on another data version
    is still scored on the current split, and the note says so.
    """
    import tempfile

    from graft import registry
    from graft.export import package_logits
    from graft.predict import Package
    from graft.stats import compare, softmax

    classes = list(cfg.data.labels)
    with tempfile.TemporaryDirectory() as tmp:
        found = registry.download_champion(cfg.registry, tmp)
        if found is None:
            return {"version": None, "first_run": True, "note": "no champion yet: the first-run policy applies"}
        pkg = Package(found["path"], "fp32")
        if pkg.labels != classes:
            return {"version": found["version"], "first_run": False, "comparable": False,
                    "note": f"champion v{found['version']} predicts {pkg.labels}, not data.labels {classes}"}
        logits = package_logits(pkg, examples(test), cfg.evaluate.batch_size)
        trained_on = pkg.meta.get("data_md5")
    pred = logits.argmax(1)
    note = f"champion v{found['version']} re-scored on the current test split"
    if trained_on and data_md5 and trained_on != data_md5:
        note += f" (it was trained on data {trained_on[:8]}, this split comes from {data_md5[:8]})"
    return {"version": found["version"], "first_run": False, "comparable": True, "note": note,
            "scores": scores(y, pred, classes, softmax(logits)),
            "comparison": compare(y, ft_pred, pred, len(classes), cfg.evaluate.bootstrap_resamples, cfg.seed)}


def selection_check(test: pd.DataFrame, finetune: dict, selection: dict, selfcheck: str | Path, cfg: Config
                    ) -> dict:
    """Score the selfcheck runners-up on `test` and audit the ranking against the real scores (graft.selfcheck)."""
    from graft.selfcheck import audit, models

    tested = [{"name": selection["selected"], "predicted_rank": 1, **finetune}]
    for m in models(selfcheck):
        scored = score_model(m["path"], test, cfg)[0]
        tested.append({"name": m["name"], "predicted_rank": m["predicted_rank"], **scored})
    return audit(selection, tested, cfg.selfcheck.metric)


def run(split_dir: str | Path, finetune: str | Path, scratch: str | Path, cfg: Config, out: str | Path,
        confusion: str | Path | None = None, selection: str | Path | None = None,
        selfcheck: str | Path | None = None) -> dict:
    """The stage as the orchestrators call it: score the models, write the metrics (and confusion rows) JSON.

    Given the selection and the selfcheck folder, it also audits the ranking against the real test scores.
    """
    from graft.artifacts import read_json, write_json
    from graft.data import read_splits

    splits = read_splits(split_dir)
    manifest = Path(split_dir) / "manifest.json"
    result, rows = evaluate(splits, finetune, scratch, cfg,
                            read_json(manifest)["source_md5"] if manifest.is_file() else None)
    if selection and selfcheck:
        result["selection_check"] = selection_check(splits["test"], result["finetune"], read_json(selection),
                                                    selfcheck, cfg)
    write_json(out, result)
    if confusion:
        write_json(confusion, rows)
    return result
