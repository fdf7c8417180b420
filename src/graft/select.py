"""The `select` stage: rank candidate backbones by transferability scores, within budgets, on the training data.

Two scores on frozen, mean-pooled features of a stratified training sample, no backbone training:
- LogME (graft.logme): the Bayesian evidence that the labels are a linear function of the features; it rewards
  separability and penalises needing a complex fit. The default ranking score.
- the cross-validated accuracy of a logistic-regression probe: the same question answered empirically.
Candidates that share a source (a backbone and its truncations) share one forward pass: the hidden state after
layer k of the full network is exactly the output of its k-layer truncation.
Budgets (parameters, measured latency per example at batch 1 and 32) exclude candidates, with the reason.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from graft import model as gm
from graft.config import Candidate, Config, SelectConfig
from graft.errors import GraftError
from graft.logme import logme


def sample(train: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A stratified, seeded sample of at most `size` training rows."""
    if len(train) <= size:
        return train
    return train_test_split(train, train_size=size, random_state=seed, stratify=train["label"])[0]


@torch.inference_mode()
def features(candidates: list[Candidate], texts: list[str], max_length: int, batch_size: int = 64
             ) -> dict[str, np.ndarray]:
    """Frozen mean-pooled features per candidate: one bf16 forward pass per source, at the deepest requested layer."""
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    for cand in candidates:
        by_source[cand.source].append(cand)
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for source, group in by_source.items():
        depth = None if any(c.num_layers is None for c in group) else max(c.num_layers for c in group)
        tokenizer, encoder = gm.load_encoder(Candidate(name=source, source=source, num_layers=depth))
        encoder.eval()
        for chunk in gm.batches(texts, batch_size):
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 output_hidden_states=True).hidden_states
            for cand in group:
                layer = hidden[cand.num_layers or len(hidden) - 1].float()
                out[cand.name].append(gm.mean_pool(layer, enc["attention_mask"]).numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


@torch.inference_mode()
def latency_ms(tokenizer, encoder, texts: list[str], max_length: int, batch: int, repeats: int) -> float:
    """Best wall time per example of an fp32 forward pass at `batch` over `repeats` (after one warm-up), in ms.

    The minimum, not the median: other work on the machine only ever adds time, so the best run is the closest to
    what the model itself costs.
    """
    chunk = (texts * batch)[:batch]
    enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        if i:
            times.append(time.perf_counter() - start)
    return 1000 * min(times) / batch


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
    rows = sample(train, cfg.select.sample_size, cfg.seed)
    texts, y = rows["text"].astype(str).tolist(), rows["label"].astype(str).to_numpy()
    if len(set(y)) < 2:
        raise GraftError("select: the training sample has fewer than two classes")
    start = time.perf_counter()
    feats = features(cfg.select.candidates, texts, cfg.train.max_length)
    ranking = []
    for cand in tqdm(cfg.select.candidates, desc="select: scoring backbones", unit="backbone", disable=None):
        tokenizer, encoder = gm.load_encoder(cand, "pretrained")
        encoder.eval()
        timing = {f"batch_{b}": round(latency_ms(tokenizer, encoder, texts, cfg.train.max_length, b, reps), 3)
                  for b, reps in ((1, 7), (32, 2))}
        entry = {
            "name": cand.name, "source": cand.source, "num_layers": cand.num_layers,
            "logme": round(logme(feats[cand.name], y), 4),
            "probe_accuracy": round(probe_accuracy(feats[cand.name], y, cfg.select.cv_folds, cfg.seed), 4),
            "params": int(sum(p.numel() for p in encoder.parameters())),
            "latency_ms": timing,
        }
        reasons = budget_reasons(entry, cfg.select)
        ranking.append({**entry, "eligible": not reasons, "reason": "; ".join(reasons) or "within budgets"})
    # Eligible first, then the configured score (higher is better); on a tie the smaller model wins.
    ranking.sort(key=lambda r: (not r["eligible"], -r[cfg.select.rank_by], r["params"]))
    if not ranking[0]["eligible"]:
        raise GraftError("select: no candidate fits the budgets: " + "; ".join(
            f"{r['name']}: {r['reason']}" for r in ranking))
    return {"ranking": ranking, "selected": ranking[0]["name"], "rank_by": cfg.select.rank_by,
            "sample_rows": len(rows), "seconds": round(time.perf_counter() - start, 2)}


def selected_candidate(selection: dict, cfg: Config) -> Candidate:
    """The catalog entry that selection picked (it must still be in params.yaml)."""
    for cand in cfg.select.candidates:
        if cand.name == selection["selected"]:
            return cand
    raise GraftError(f"selected backbone {selection['selected']!r} is not in select.candidates: rerun `graft select`")


def markdown(selection: dict) -> str:
    """The ranking as a Markdown table (KFP UI, report)."""
    lines = ["| rank | backbone | LogME | probe accuracy | params | ms/example (b1 / b32) | eligible |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(selection["ranking"], 1):
        mark = " **(selected)**" if r["name"] == selection["selected"] else ""
        ok = "yes" if r["eligible"] else f"no: {r['reason']}"
        lines.append(f"| {i} | {r['name']}{mark} | {r['logme']:.4f} | {r['probe_accuracy']:.4f} | {r['params']:,} | "
                     f"{r['latency_ms']['batch_1']:.2f} / {r['latency_ms']['batch_32']:.2f} | {ok} |")
    return "\n".join(lines) + f"\n\nranked by {selection['rank_by']}; scored in {selection['seconds']} s\n"
