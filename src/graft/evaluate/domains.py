"""The `domains` section of evaluate: every model on the source test split and on the labeled target test.

Models: `source_only` (the train stage's fine-tune), `adapted` (the adapt stage's, when train.adapt is set),
`scratch` and `classical` (both trained on the source training data: no transfer). Comparisons per domain: the
adapted model against source-only, and each transfer model against each no-transfer one, with the paired bootstrap
and McNemar tests of the main section. `chosen` says which of the two transfer models goes on to export and the
gate, and why (graft.promote.gate.choose: the gate's policy, applied here so export can package the right one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from graft import modalities
from graft.core.config import Config
from graft.data.skew import measure
from graft.evaluate.scoring import champion_check, score_model
from graft.metrics.scores import label_ids, scores
from graft.metrics.stats import compare
from graft.promote.gate import choose

TRANSFER = ("source_only", "adapted")
NO_TRANSFER = ("scratch", "classical")


def has_model(folder: str | Path | None) -> bool:
    """True when `folder` holds a saved model (the adapt stage writes only a note when train.adapt is none)."""
    return bool(folder) and (Path(folder) / modalities.MODEL_META).is_file()


def _domain(test: pd.DataFrame, train: pd.DataFrame, models: dict[str, str | Path], cfg: Config
            ) -> tuple[dict, dict]:
    """Scores and predictions of each saved model and of the classical baseline (trained on `train`) on `test`."""
    classes = list(cfg.data.labels)
    out, preds = {}, {}
    for name, folder in models.items():
        out[name], preds[name] = score_model(folder, test, cfg)
    probs, method = modalities.get(cfg.data.modality).classical(train, test, classes, cfg.seed)
    preds["classical"] = probs.argmax(1)
    out["classical"] = {**scores(label_ids(test["label"], classes), preds["classical"], classes, probs),
                        "method": method}
    return out, preds


def _comparisons(y: np.ndarray, preds: dict, cfg: Config) -> dict:
    n, k = cfg.evaluate.bootstrap_resamples, len(cfg.data.labels)
    pairs = [(a, b) for a in TRANSFER for b in NO_TRANSFER if a in preds]
    if "adapted" in preds:
        pairs.insert(0, ("adapted", "source_only"))
    return {f"{a}_vs_{b}": compare(y, preds[a], preds[b], k, n, cfg.seed) for a, b in pairs}


def model_skew(folder: str | Path, train: pd.DataFrame, pool: pd.DataFrame, cfg: Config) -> dict:
    """The domain classifier and the 2-D projection on a trained model's pooled features (training vs target)."""
    from graft.core.hardware import resolve
    from graft.models.classifier import pooled

    processor, model, meta = modalities.load_model(folder)
    modality, hw, n = modalities.get(meta["modality"]), resolve(cfg.train), cfg.select.sample_size
    model.to(hw.device)
    rows = [d.sample(min(n, len(d)), random_state=cfg.seed) for d in (train, pool)]
    src, tgt = (pooled(model, modality.encode(processor, modality.examples(d)), hw.device, hw.autocast).numpy()
                for d in rows)
    return measure(src, tgt, cfg.select.cv_folds, cfg.seed)


def _source(main: tuple[dict, dict], adapted: str | Path | None, test: pd.DataFrame, cfg: Config
            ) -> tuple[dict, dict]:
    """The source test's scores and predictions: the main section's, plus the adapted model's (scored here)."""
    result, preds = main
    out = {"source_only": result["finetune"], "scratch": result["scratch"], "classical": result["classical"]}
    preds = dict(preds)
    if adapted:
        out["adapted"], preds["adapted"] = score_model(adapted, test, cfg)
    return out, preds


def domains(splits: dict[str, pd.DataFrame], target: dict[str, pd.DataFrame], finetune: str | Path,
            scratch: str | Path, adapted: str | Path | None, cfg: Config, data_md5: str | None,
            main: tuple[dict, dict]) -> dict | None:
    """The section, or None when there is neither an adapted model nor a labeled target test (nothing to add).

    `main` is the main section's (result, predictions) on the source test split: reused, not computed again.
    """
    adapted = adapted if has_model(adapted) else None
    if adapted is None and "target_test" not in target:
        return None
    models = {"source_only": finetune, "scratch": scratch, **({"adapted": adapted} if adapted else {})}
    classes = list(cfg.data.labels)
    section = {"method": cfg.train.adapt if adapted else "none", "source": {}, "comparisons": {}}
    for name, test in (("source", splits["test"]), ("target", target.get("target_test"))):
        if test is None:
            continue
        section[name], preds = (_source(main, adapted, test, cfg) if name == "source"
                                else _domain(test, splits["train"], models, cfg))
        y = label_ids(test["label"], classes)
        section["comparisons"][name] = _comparisons(y, preds, cfg)
        if name == "source" and adapted:  # the champion is re-scored on the source test split, as in the main section
            champ = champion_check(test, y, preds["adapted"], cfg, data_md5)
            if "comparison" in champ:
                section["comparisons"]["source"]["adapted_vs_champion"] = champ["comparison"]
    section["rows"] = {"source": len(splits["test"]), "target": len(target.get("target_test", []))}
    if "target" in target:  # before and after adaptation: how far apart the domains are in each model's features
        section["skew"] = {name: model_skew(models[name], splits["train"], target["target"], cfg)
                           for name in TRANSFER if name in models}
    return {**section, **choose(section, cfg.gate)}
