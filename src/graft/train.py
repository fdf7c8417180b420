"""The `train` and `baseline` stages: one training loop; `init_from` is the only difference between them.

`pretrained` fine-tunes the selected backbone; `scratch` trains the same architecture from random weights with the
same data, split, seed and budget, so the comparison is fair by construction (nanoGPT's `init_from`).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from graft import model as gm
from graft.artifacts import atomic_dir
from graft.config import Candidate, Config
from graft.evaluate import label_ids, scores


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorm weights (the BERT recipe)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _warmup_linear(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(train: pd.DataFrame, validation: pd.DataFrame, candidate: Candidate, cfg: Config,
        init_from: gm.InitFrom, out: str | Path) -> dict:
    """Train a classifier on `train`, report validation scores per epoch, save it atomically to `out`."""
    t = cfg.train
    gen = seed_everything(cfg.seed)
    classes = list(cfg.data.labels)
    tokenizer, model = gm.build(candidate, classes, init_from, t.dropout)
    texts, y = train["text"].astype(str).tolist(), torch.tensor(label_ids(train["label"], classes))
    val_texts, val_y = validation["text"].astype(str).tolist(), label_ids(validation["label"], classes)
    steps_per_epoch = math.ceil(len(texts) / t.batch_size)
    total = steps_per_epoch * t.epochs
    optimizer = _optimizer(model, t.learning_rate, t.weight_decay)
    scheduler = _warmup_linear(optimizer, int(t.warmup_ratio * total), total)
    loss_fn = nn.CrossEntropyLoss()
    history, start = [], time.perf_counter()
    for epoch in range(1, t.epochs + 1):
        model.train()
        order = torch.randperm(len(texts), generator=gen).tolist()
        bar = tqdm(range(steps_per_epoch), desc=f"{init_from} epoch {epoch}/{t.epochs}", unit="step", disable=None)
        running = 0.0
        for step in bar:
            idx = order[step * t.batch_size:(step + 1) * t.batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=t.max_length,
                            return_tensors="pt")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=t.precision == "bf16"):
                logits = model(enc["input_ids"], enc["attention_mask"])
            loss = loss_fn(logits.float(), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / (step + 1):.4f}")
        val = scores(val_y, gm.predict_logits(model, tokenizer, val_texts, t.max_length, 64).argmax(1), classes)
        history.append({"epoch": epoch, "train_loss": round(running / steps_per_epoch, 4),
                        "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"]})
    seconds = round(time.perf_counter() - start, 1)
    meta = {"labels": classes, "max_length": t.max_length, "dropout": t.dropout, "init_from": init_from,
            "backbone": candidate.model_dump(), "train_rows": len(texts), "seed": cfg.seed}
    with atomic_dir(out) as tmp:
        gm.save(model, tokenizer, tmp, meta)
    return {"init_from": init_from, "backbone": candidate.name, "train_rows": len(texts), "seconds": seconds,
            "val_accuracy": history[-1]["val_accuracy"], "val_macro_f1": history[-1]["val_macro_f1"],
            "history": history}


def run(split_dir: str | Path, selection: str | Path, out: str | Path, cfg: Config, init_from: gm.InitFrom,
        metrics: str | Path) -> dict:
    """The stage as the orchestrators call it: read the splits and the selection, fit, write the metrics JSON."""
    from graft.artifacts import read_json, write_json
    from graft.data import read_splits
    from graft.select import selected_candidate

    splits = read_splits(split_dir)
    result = fit(splits["train"], splits["validation"], selected_candidate(read_json(selection), cfg), cfg,
                 init_from, out)
    write_json(metrics, result)
    return result
