"""Scoring text backbones for selection: pooled features, parameters and latency, for a backbone and its truncations.

Candidates that share a source (a backbone and its truncations) share one loaded encoder and one forward pass: the
hidden state after layer k of the full network is exactly the output of its k-layer truncation, and the time to
reach it is the truncation's latency. The pooled features are cached by content (graft.models.features), so a rerun
on the same texts, and feature-extraction training of the chosen backbone, reuse them instead of recomputing.
"""

from __future__ import annotations

import time

import torch

from graft.core.config import Candidate, Config
from graft.core.hardware import resolve
from graft.modalities.text.model import TextProcessor, cached_features, load_encoder, resolve_source
from graft.models import features
from graft.models.classifier import layer_list

# (batch size, most timed runs). Runs stop early once MEASURE_SECONDS have been spent timing, as timeit's autorange
# does: many short passes are needed to see through jitter, while one long pass already averages it out.
LATENCY_RUNS = ((1, 7), (32, 3))
MEASURE_SECONDS = 0.2


def _stamp(stamps: list[float]):
    return lambda *_: stamps.append(time.perf_counter())


@torch.inference_mode()
def latency_by_depth(processor: TextProcessor, encoder, texts: list[str], batch: int, repeats: int
                     ) -> dict[int, float]:
    """Best wall time per example (ms) of an fp32 forward pass at `batch`, for every depth k of the encoder.

    One timed pass serves all truncations: a forward hook stamps the clock as each layer finishes, and the first k
    layers of the full network are exactly the k-layer truncation's computation. The minimum over up to `repeats`
    runs (after a warm-up at batch 1; fewer once MEASURE_SECONDS are spent), not the median: other work on the
    machine only ever adds time. An encoder whose layers cannot be found is timed as a whole (depth = its own).
    """
    enc = processor((texts * batch)[:batch])
    layers, stamps = layer_list(encoder), []
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
    sizes = [sum(p.numel() for p in layer.parameters()) for layer in layer_list(encoder) or []]
    return {k: total - sum(sizes[k:]) for k in range(1, len(sizes) + 1)} | {encoder.config.num_hidden_layers: total}


def score_source(group: list[Candidate], texts: list[str], cfg: Config, cache: features.FeatureCache
                 ) -> tuple[list[dict], int]:
    """Features, parameters and latency of the candidates that share one source, from one loaded encoder.

    Returns their entries and how many texts' features had to be computed (the rest came from the cache).
    """
    depth = None if any(c.num_layers is None for c in group) else max(c.num_layers for c in group)
    names = ", ".join(c.name for c in group)
    tokenizer, encoder = load_encoder(Candidate(name=names, source=group[0].source, num_layers=depth))
    encoder.eval()
    t = cfg.train
    processor = TextProcessor(tokenizer, t.max_length)
    full = encoder.config.num_hidden_layers
    layer = {c.name: c.num_layers or full for c in group}
    digest = features.digest(resolve_source(group[0].source), encoder.config)
    hw = resolve(t)
    encoder.to(hw.device)
    keys = {k: features.backbone_key(digest, k, t.max_length, hw.precision) for k in sorted(set(layer.values()))}
    feats, computed = cached_features(cache, keys, processor, encoder, texts, hw)
    encoder.to("cpu")  # latency is measured where the budget applies: fp32 on this machine's CPU
    timing = {b: latency_by_depth(processor, encoder, texts, b, reps) for b, reps in LATENCY_RUNS}
    params = params_by_depth(encoder)
    entries = []
    for cand in group:
        k = layer[cand.name]
        if k not in timing[1]:  # the encoder's layers were not found: time this truncation on its own
            tok, own = load_encoder(cand)
            own_processor = TextProcessor(tok, t.max_length)
            timing = {b: timing[b] | latency_by_depth(own_processor, own.eval(), texts, b, reps)
                      for b, reps in LATENCY_RUNS}
        entries.append({"name": cand.name, "source": cand.source, "num_layers": cand.num_layers,
                        "features": feats[k], "params": int(params.get(k, 0)),
                        "latency_ms": {f"batch_{b}": round(timing[b][k], 3) for b in (1, 32)}})
    return entries, computed
