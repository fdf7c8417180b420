"""The `select` stage: rank candidate backbones by transferability scores, within budgets, on the training data.

Two scores on frozen, mean-pooled features of a stratified training sample, no backbone training:
- LogME (graft.logme): the Bayesian evidence that the labels are a linear function of the features; it rewards
  separability and penalises needing a complex fit. The default ranking score.
- the cross-validated accuracy of a logistic-regression probe: the same question answered empirically.
Candidates that share a source (a backbone and its truncations) share one loaded encoder and one forward pass: the
hidden state after layer k of the full network is exactly the output of its k-layer truncation, and the time to
reach it is the truncation's latency. The pooled features are cached by content (graft.features), so a rerun on the
same texts, and feature-extraction training of the chosen backbone, reuse them instead of recomputing.
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

from graft import features
from graft import model as gm
from graft.config import Candidate, Config, SelectConfig
from graft.data import examples
from graft.errors import GraftError
from graft.features import FeatureCache
from graft.hardware import resolve
from graft.logme import logme


def sample(train: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A stratified, seeded sample of at most `size` training rows."""
    if len(train) <= size:
        return train
    return train_test_split(train, train_size=size, random_state=seed, stratify=train["label"])[0]


# (batch size, most timed runs). Runs stop early once MEASURE_SECONDS have been spent timing, as timeit's autorange
# does: many short passes are needed to see through jitter, while one long pass already averages it out.
LATENCY_RUNS = ((1, 7), (32, 3))
MEASURE_SECONDS = 0.2


def _stamp(stamps: list[float]):
    return lambda *_: stamps.append(time.perf_counter())


@torch.inference_mode()
def latency_by_depth(tokenizer, encoder, texts: list[str], max_length: int, batch: int, repeats: int
                     ) -> dict[int, float]:
    """Best wall time per example (ms) of an fp32 forward pass at `batch`, for every depth k of the encoder.

    One timed pass serves all truncations: a forward hook stamps the clock as each layer finishes, and the first k
    layers of the full network are exactly the k-layer truncation's computation. The minimum over up to `repeats`
    runs (after a warm-up at batch 1; fewer once MEASURE_SECONDS are spent), not the median: other work on the
    machine only ever adds time. An encoder whose layers cannot be found is timed as a whole (depth = its own).
    """
    chunk = (texts * batch)[:batch]
    enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    layers, stamps = gm.layer_list(encoder), []
    hooks = [layer.register_forward_hook(_stamp(stamps)) for layer in (layers or [])]
    best: dict[int, float] = {}
    try:
        encoder(input_ids=enc["input_ids"][:1], attention_mask=enc["attention_mask"][:1])  # warm-up (cheap)
        spent = 0.0
        for _ in range(repeats):
            if spent >= MEASURE_SECONDS:
                break
            stamps.clear()
            start = time.perf_counter()
            encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            end = time.perf_counter()
            spent += end - start
            ends = dict(enumerate(stamps, 1)) | {encoder.config.num_hidden_layers: end}
            for depth, t in ends.items():
                best[depth] = min(best.get(depth, float("inf")), 1000 * (t - start) / batch)
    finally:
        for hook in hooks:
            hook.remove()
    return best


def params_by_depth(encoder) -> dict[int, int]:
    """Parameter count of the first-k-layers truncation, for every depth k."""
    total = sum(p.numel() for p in encoder.parameters())
    layers = gm.layer_list(encoder) or []
    sizes = [sum(p.numel() for p in layer.parameters()) for layer in layers]
    return {k: total - sum(sizes[k:]) for k in range(1, len(sizes) + 1)} | {encoder.config.num_hidden_layers: total}


def score_source(group: list[Candidate], texts: list[str], y: np.ndarray, cfg: Config, cache: FeatureCache
                 ) -> tuple[list[dict], int]:
    """Score the candidates that share one source from one loaded encoder.

    Returns their entries and how many texts' features had to be computed (the rest came from the cache).
    """
    depth = None if any(c.num_layers is None for c in group) else max(c.num_layers for c in group)
    names = ", ".join(c.name for c in group)
    tokenizer, encoder = gm.load_encoder(Candidate(name=names, source=group[0].source, num_layers=depth))
    encoder.eval()
    full, t = encoder.config.num_hidden_layers, cfg.train
    layer = {c.name: c.num_layers or full for c in group}
    digest = features.digest(gm.resolve_source(group[0].source), encoder.config)
    hw = resolve(t)
    encoder.to(hw.device)
    keys = {k: features.backbone_key(digest, k, t.max_length, hw.precision) for k in sorted(set(layer.values()))}
    feats, computed = features.cached(cache, keys, tokenizer, encoder, texts, t.max_length, hw)
    encoder.to("cpu")  # latency is measured where the budget applies: fp32 on this machine's CPU
    timing = {b: latency_by_depth(tokenizer, encoder, texts, t.max_length, b, reps) for b, reps in LATENCY_RUNS}
    params = params_by_depth(encoder)
    entries = []
    for cand in group:
        k = layer[cand.name]
        if k not in timing[1]:  # the encoder's layers were not found: time this truncation on its own
            tok, own = gm.load_encoder(cand)
            timing = {b: timing[b] | latency_by_depth(tok, own.eval(), texts, t.max_length, b, reps)
                      for b, reps in LATENCY_RUNS}
        entries.append({
            "name": cand.name, "source": cand.source, "num_layers": cand.num_layers,
            "logme": round(logme(feats[k], y), 4),
            "probe_accuracy": round(probe_accuracy(feats[k], y, cfg.select.cv_folds, cfg.seed), 4),
            "params": int(params.get(k, 0)),
            "latency_ms": {f"batch_{b}": round(timing[b][k], 3) for b in (1, 32)},
        })
    return entries, computed


@torch.inference_mode()
def image_latency(model: gm.ImageClassifier, pixels: torch.Tensor, batch: int, repeats: int) -> float:
    """Best fp32 wall time per example (ms) of the pooled features at `batch`, after a warm-up (as for text)."""
    chunk = pixels[:batch].repeat(-(-batch // len(pixels)), 1, 1, 1)[:batch]
    model.features(chunk[:1])
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        if spent >= MEASURE_SECONDS:
            break
        start = time.perf_counter()
        model.features(chunk)
        took = time.perf_counter() - start
        spent += took
        best = min(best, 1000 * took / batch)
    return best


def score_images(cands: list[Candidate], images: list[bytes], y: np.ndarray, cfg: Config) -> list[dict]:
    """Score image backbones: LogME and the probe on pooled features of the sample, parameters, latency."""
    from graft.train import image_features

    hw, size = resolve(cfg.train), cfg.train.image_size
    pixels = gm.ImageProcessor(size)(images)
    entries = []
    for cand in cands:
        model = gm.build_image(cand, 2, "pretrained", 0.0, size)[1].eval()
        feats = image_features(model.to(hw.device), pixels, hw).numpy()
        model.to("cpu")  # latency is measured where the budget applies: fp32 on this machine's CPU
        entries.append({
            "name": cand.name, "source": cand.source, "num_layers": None,
            "logme": round(logme(feats, y), 4),
            "probe_accuracy": round(probe_accuracy(feats, y, cfg.select.cv_folds, cfg.seed), 4),
            "params": int(sum(p.numel() for p in model.encoder.parameters())),
            "latency_ms": {f"batch_{b}": round(image_latency(model, pixels, b, reps), 3) for b, reps in LATENCY_RUNS},
        })
    return entries


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
    texts, y = examples(rows), rows["label"].astype(str).to_numpy()
    if len(set(y)) < 2:
        raise GraftError("select: the training sample has fewer than two classes")
    start = time.perf_counter()
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    for cand in cfg.select.candidates:
        by_source[cand.source].append(cand)
    cache, ranking, computed = FeatureCache(cfg.select.feature_cache), [], 0
    for group in tqdm(list(by_source.values()), desc="select: scoring backbones", unit="source", disable=None):
        if cfg.data.modality == "image":
            entries, n = score_images(group, texts, y, cfg), len(texts)
        else:
            entries, n = score_source(group, texts, y, cfg, cache)
        computed += n
        for entry in entries:
            reasons = budget_reasons(entry, cfg.select)
            ranking.append({**entry, "eligible": not reasons, "reason": "; ".join(reasons) or "within budgets"})
    # Eligible first, then the configured score (higher is better); on a tie the smaller model wins.
    ranking.sort(key=lambda r: (not r["eligible"], -r[cfg.select.rank_by], r["params"]))
    if not ranking[0]["eligible"]:
        raise GraftError("select: no candidate fits the budgets: " + "; ".join(
            f"{r['name']}: {r['reason']}" for r in ranking))
    return {"ranking": ranking, "selected": ranking[0]["name"], "rank_by": cfg.select.rank_by,
            "sample_rows": len(rows), "seconds": round(time.perf_counter() - start, 2),
            "features": {"computed": computed, "cached": len(by_source) * len(texts) - computed}}


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
    feats = selection.get("features", {})
    reuse = f"; features: {feats['computed']} computed, {feats['cached']} from the cache" if feats else ""
    return "\n".join(lines) + f"\n\nranked by {selection['rank_by']}; scored in {selection['seconds']} s{reuse}\n"
