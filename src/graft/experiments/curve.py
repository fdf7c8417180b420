"""The `curve` stage: the data-efficiency curve, so "transfer needs less data" is measured, not asserted.

Each point trains the selected backbone pretrained or from scratch (the same `fit`, recipe and budget as the
`train` and `baseline` stages) on the first N rows of one seeded shuffle of the training pool, so every smaller
set is contained in every larger one, and scores it on the same test split as the main run. The pool is what
`prepare` leaves after the test and validation splits (the same rows, by the same seed), all of it rather than
`prepare.train_size`. `curve_plot` gathers the points into one DVC plot: test accuracy against labeled examples.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from graft.core import outputs
from graft.core.artifacts import read_json, write_json
from graft.core.config import Config
from graft.core.errors import GraftError
from graft.data import prepare
from graft.evaluate.scoring import score_model
from graft.train import fit, selected_candidate


def pool(raw: str | Path, cfg: Config) -> dict:
    """The main run's validation and test splits, and every other clean row as the training pool."""
    table = prepare.table(raw, cfg)[0]
    everything = cfg.model_copy(update={"prepare": cfg.prepare.model_copy(update={"train_size": "all"})})
    return prepare.split(table, everything)


def run(raw: str | Path, selection: str | Path, size: int, init_from: str, cfg: Config, out: str | Path) -> dict:
    """The `curve` stage, one point: train on the first `size` rows of the shuffled pool, score on test, write it."""
    splits = pool(raw, cfg)
    train = splits["train"]
    if size > len(train):
        raise GraftError(f"curve.sizes has {size}, but the training pool has only {len(train)} rows")
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    subset = train.iloc[order[:size]].reset_index(drop=True)
    if subset["label"].nunique() < 2:
        raise GraftError(f"curve: the first {size} shuffled rows hold a single class; use a larger size")
    candidate = selected_candidate(outputs.read(selection, "select"), cfg)
    with tempfile.TemporaryDirectory() as tmp:
        trained = fit(subset, splits["validation"], candidate, cfg, init_from, Path(tmp) / "model")
        scored, _ = score_model(Path(tmp) / "model", splits["test"], cfg)
    result = {"examples": size, "init_from": init_from, "backbone": candidate.name, "accuracy": scored["accuracy"],
              "macro_f1": scored["macro_f1"], "test_rows": scored["rows"], "seconds": trained["seconds"]}
    write_json(out, result)
    return result


def collect(folder: str | Path, out: str | Path) -> list[dict]:
    """Gather the point files into plot rows: {"examples", "pretrained", "scratch", "gain"} by size."""
    points = [read_json(p) for p in sorted(Path(folder).glob("*.json"))]
    if not points:
        raise GraftError(f"{folder}: no curve points; run `dvc repro curve`")
    by_size: dict[int, dict] = {}
    for p in points:
        by_size.setdefault(p["examples"], {"examples": p["examples"]})[p["init_from"]] = p["accuracy"]
    rows = [by_size[n] for n in sorted(by_size)]
    for row in rows:
        if "pretrained" in row and "scratch" in row:
            row["gain"] = round(row["pretrained"] - row["scratch"], 4)
    write_json(out, rows)
    return rows
