"""The `select` stage: rank candidate backbones by a cheap transferability score on the training data.

The score is the cross-validated accuracy of a linear probe (logistic regression) on frozen, mean-pooled features:
it measures how linearly separable the classes already are in the backbone's representation, which is what
fine-tuning starts from. One forward pass per candidate, no training of the backbone.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from graft import model as gm
from graft.config import Candidate, Config
from graft.errors import GraftError


def sample(train: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A stratified, seeded sample of at most `size` training rows."""
    if len(train) <= size:
        return train
    return train_test_split(train, train_size=size, random_state=seed, stratify=train["label"])[0]


@torch.inference_mode()
def features(tokenizer, encoder, texts: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """Frozen mean-pooled features of `texts` from a pretrained encoder."""
    encoder.eval()
    out = []
    for chunk in gm.batches(texts, batch_size):
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = encoder(**{k: enc[k] for k in ("input_ids", "attention_mask")}).last_hidden_state
        out.append(gm.mean_pool(hidden, enc["attention_mask"]).float().numpy())
    return np.concatenate(out)


def probe_accuracy(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    """Mean cross-validated accuracy of a logistic-regression probe."""
    folds = max(2, min(folds, int(pd.Series(y).value_counts().min())))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, x, y, cv=cv, scoring="accuracy").mean())


def rank(train: pd.DataFrame, cfg: Config) -> dict:
    """Score every candidate; return {"ranking": [...best first], "selected": name}."""
    rows = sample(train, cfg.select.sample_size, cfg.seed)
    texts, y = rows["text"].astype(str).tolist(), rows["label"].astype(str).to_numpy()
    if len(set(y)) < 2:
        raise GraftError("select: the training sample has fewer than two classes")
    ranking = []
    for cand in tqdm(cfg.select.candidates, desc="select: scoring backbones", unit="backbone", disable=None):
        start = time.perf_counter()
        tokenizer, encoder = gm.load_encoder(cand, "pretrained")
        x = features(tokenizer, encoder, texts, cfg.train.max_length)
        acc = probe_accuracy(x, y, cfg.select.cv_folds, cfg.seed)
        ranking.append({
            "name": cand.name,
            "source": cand.source,
            "num_layers": cand.num_layers,
            "probe_accuracy": round(acc, 4),
            "params": int(sum(p.numel() for p in encoder.parameters())),
            "seconds": round(time.perf_counter() - start, 2),
        })
    # Best probe first; on a tie the smaller model wins.
    ranking.sort(key=lambda r: (-r["probe_accuracy"], r["params"]))
    return {"ranking": ranking, "selected": ranking[0]["name"], "sample_rows": len(rows)}


def selected_candidate(selection: dict, cfg: Config) -> Candidate:
    """The catalog entry that selection picked (it must still be in params.yaml)."""
    for cand in cfg.select.candidates:
        if cand.name == selection["selected"]:
            return cand
    raise GraftError(f"selected backbone {selection['selected']!r} is not in select.candidates: rerun `graft select`")


def markdown(selection: dict) -> str:
    """The ranking as a Markdown table (KFP UI, report)."""
    lines = ["| rank | backbone | probe accuracy | params | seconds |", "|---|---|---|---|---|"]
    for i, r in enumerate(selection["ranking"], 1):
        mark = " **(selected)**" if r["name"] == selection["selected"] else ""
        lines.append(f"| {i} | {r['name']}{mark} | {r['probe_accuracy']:.4f} | {r['params']:,} | {r['seconds']} |")
    return "\n".join(lines) + "\n"
