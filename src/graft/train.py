"""The `train` and `baseline` stages: one training loop; `init_from` is the only difference between them.

`pretrained` fine-tunes the selected backbone; `scratch` trains the same architecture from random weights with the
same data, split, seed, recipe and budget, so the comparison is fair by construction (nanoGPT's `init_from`).
The loop pads each batch to its own longest text and groups texts of similar length (group_by_length), runs in bf16
autocast where the hardware has it, keeps the best epoch by validation macro-F1, can stop early, and writes a
resumable checkpoint (graft.checkpoint) so a killed run continues where it stopped with the same result.
"""

from __future__ import annotations

import copy
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from graft import checkpoint, optim
from graft import model as gm
from graft.artifacts import atomic_dir
from graft.config import Candidate, Config
from graft.evaluate import label_ids, scores
from graft.hardware import Hardware, resolve


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def bucketed(lengths: list[int], batch_size: int, gen: torch.Generator, megabatch: int = 50) -> list[list[int]]:
    """Shuffled batches of similar-length examples: shuffle, sort within chunks of 50 batches, shuffle batches."""
    order = torch.randperm(len(lengths), generator=gen).tolist()
    out = []
    for i in range(0, len(order), batch_size * megabatch):
        chunk = sorted(order[i:i + batch_size * megabatch], key=lengths.__getitem__)
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]


class Inputs:
    """A split ready for the loop: token ids (padded per batch) or, with a frozen backbone, cached features."""

    def __init__(self, ids: list[list[int]] | None, feats: torch.Tensor | None, pad_id: int, hw: Hardware):
        self.ids, self.feats, self.pad_id, self.hw = ids, feats, pad_id, hw

    def lengths(self) -> list[int]:
        """Tokens per example (all equal for features)."""
        return [len(x) for x in self.ids] if self.ids is not None else [1] * len(self.feats)

    def logits(self, model: gm.Classifier, idx: list[int]) -> torch.Tensor:
        """The model's logits for examples `idx` (under autocast)."""
        with self.hw.autocast():
            if self.feats is not None:
                return model.head(model.dropout(self.feats[idx].to(self.hw.device)))
            width = max(len(self.ids[i]) for i in idx)
            ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :len(self.ids[i])] = torch.tensor(self.ids[i])
                mask[row, :len(self.ids[i])] = 1
            return model(ids.to(self.hw.device), mask.to(self.hw.device))


def inputs(texts: list[str], tokenizer, model: gm.Classifier, candidate: Candidate, cfg: Config,
           init_from: gm.InitFrom, hw: Hardware) -> tuple[Inputs, int]:
    """Token ids, or for feature extraction the pooled features (from the cache where selection left them)."""
    t = cfg.train
    if t.mode != "feature_extraction":
        ids = tokenizer(texts, truncation=True, max_length=t.max_length)["input_ids"]
        return Inputs(ids, None, tokenizer.pad_token_id, hw), 0
    from graft import features

    depth = model.encoder.config.num_hidden_layers
    digest = features.digest(gm.resolve_source(candidate.source), model.encoder.config)
    # a random backbone's features are this run's alone: computed, never cached
    pretrained = init_from == "pretrained"
    key = features.backbone_key(digest, depth, t.max_length, hw.precision) if pretrained else "scratch"
    cache = features.FeatureCache(cfg.select.feature_cache if pretrained else None)
    vectors, computed = features.cached(cache, {depth: key}, tokenizer, model.encoder, texts,
                                        t.max_length, hw)
    return Inputs(None, torch.from_numpy(vectors[depth]), tokenizer.pad_token_id, hw), computed


@torch.inference_mode()
def validate(model: gm.Classifier, data: Inputs, y: np.ndarray, loss_fn, classes: list[str], batch: int) -> dict:
    """Validation loss, accuracy and macro-F1 in eval mode."""
    model.eval()
    order = sorted(range(len(y)), key=data.lengths().__getitem__)
    parts = [data.logits(model, order[i:i + batch]).float() for i in range(0, len(order), batch)]
    logits = torch.empty((len(y), len(classes)))
    logits[order] = torch.cat(parts).cpu()
    loss = float(loss_fn(logits, torch.from_numpy(y)))
    s = scores(y, logits.argmax(1).numpy(), classes)
    return {"val_loss": round(loss, 4), "val_accuracy": s["accuracy"], "val_macro_f1": s["macro_f1"]}


class Loop:
    """One training run's moving parts; `state()` / `restore()` make it resumable."""

    def __init__(self, model: gm.Classifier, cfg: Config, y: np.ndarray, steps_per_epoch: int, hw: Hardware):
        t = cfg.train
        self.model, self.t, self.hw = model, t, hw
        self.opt = optim.optimizer(model, t)
        self.sched = optim.scheduler(self.opt, t, steps_per_epoch * t.epochs)
        self.loss_fn = optim.loss_fn(t, y, len(cfg.data.labels)).to(hw.device)
        self.epoch, self.position, self.step, self.batches = 1, 0, 0, []
        self.running = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.history: list[dict] = []
        self.best: dict | None = None
        self.stale = 0

    def state(self, gen: torch.Generator, fp: str) -> dict:
        """Everything needed to continue exactly from here."""
        best = self.best
        if best and best["epoch"] == self.epoch - 1 and self.position == 0:
            best = {**best, "weights": None}  # the best epoch just ended: its weights are the model's, not stored twice
        return {"fingerprint": fp, "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "rng": checkpoint.rng_state(gen), "epoch": self.epoch,
                "position": self.position, "step": self.step, "batches": self.batches, "running": self.running,
                "history": self.history, "best": best, "stale": self.stale}

    def restore(self, state: dict, gen: torch.Generator) -> None:
        """Continue from a saved state."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        checkpoint.set_rng_state(state["rng"], gen)
        for key in ("epoch", "position", "step", "batches", "running", "history", "best", "stale"):
            setattr(self, key, state[key])
        if self.best and self.best["weights"] is None:
            self.best["weights"] = copy.deepcopy(self.model.state_dict())

    def train_batches(self, data: Inputs, y: torch.Tensor, save) -> None:
        """Run the rest of the current epoch's batches (from `position`), stepping every grad_accum batches."""
        t, run = self.t, self.running
        self.model.train()
        bar = tqdm(total=len(self.batches), initial=self.position, unit="batch", disable=None,
                   desc=f"epoch {self.epoch}/{t.epochs}")
        start = time.perf_counter() - run["seconds"]
        while self.position < len(self.batches):
            idx = self.batches[self.position]
            logits = data.logits(self.model, idx).float()
            target = y[idx].to(self.hw.device)
            loss = self.loss_fn(logits, target)
            (loss / t.grad_accum_steps).backward()
            run["loss"] += loss.item() * len(idx)
            run["correct"] += int((logits.argmax(1) == target).sum())
            run["seen"] += len(idx)
            self.position += 1
            if self.position % t.grad_accum_steps == 0 or self.position == len(self.batches):
                torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
                self.opt.step()
                self.sched.step()
                self.opt.zero_grad(set_to_none=True)
                self.step += 1
                if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0:
                    run["seconds"] = time.perf_counter() - start
                    save()
            run["seconds"] = time.perf_counter() - start
            bar.update()
            bar.set_postfix(loss=f"{run['loss'] / run['seen']:.4f}", ex_per_s=f"{run['seen'] / run['seconds']:.0f}")
        bar.close()

    def end_epoch(self, val: dict) -> bool:
        """Record the epoch, keep the best weights; True when early stopping says stop."""
        run = self.running
        row = {"epoch": self.epoch, "train_loss": round(run["loss"] / run["seen"], 4),
               "train_accuracy": round(run["correct"] / run["seen"], 4), **val,
               "seconds": round(run["seconds"], 2), "examples_per_second": round(run["seen"] / run["seconds"], 1)}
        self.history.append(row)
        if self.best is None or val["val_macro_f1"] > self.best["val_macro_f1"]:
            self.best = {"epoch": self.epoch, "val_macro_f1": val["val_macro_f1"], "val_accuracy":
                         val["val_accuracy"], "weights": copy.deepcopy(self.model.state_dict())}
            self.stale = 0
        else:
            self.stale += 1
        self.epoch += 1
        self.position, self.batches = 0, []
        self.running = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        patience = self.t.early_stopping_patience
        return patience is not None and self.stale >= patience


def fit(train: pd.DataFrame, validation: pd.DataFrame, candidate: Candidate, cfg: Config,
        init_from: gm.InitFrom, out: str | Path, ckpt: str | Path | None = None) -> dict:
    """Train a classifier on `train`, keep the best epoch by validation macro-F1, save it atomically to `out`.

    `ckpt` (default: `<out>.ckpt`) holds the resumable state while training runs; it is removed on success.
    """
    t, out = cfg.train, Path(out)
    ckpt = Path(ckpt) if ckpt else out.with_name(out.name + ".ckpt")
    hw = resolve(t)
    gen = seed_everything(cfg.seed)
    classes = list(cfg.data.labels)
    tokenizer, model = gm.build(candidate, classes, init_from, t.dropout)
    optim.freeze(model, t)
    model.to(hw.device)
    texts, y = train["text"].astype(str).tolist(), label_ids(train["label"], classes)
    val_y = label_ids(validation["label"], classes)
    data, computed = inputs(texts, tokenizer, model, candidate, cfg, init_from, hw)
    val_data, val_computed = inputs(validation["text"].astype(str).tolist(), tokenizer, model, candidate, cfg,
                                    init_from, hw)
    steps_per_epoch = math.ceil(math.ceil(len(texts) / t.batch_size) / t.grad_accum_steps)
    loop = Loop(model, cfg, y, steps_per_epoch, hw)
    fp = checkpoint.fingerprint(t.model_dump(exclude={"threads"}), cfg.seed, candidate.model_dump(), init_from,
                                classes, texts, y.tolist(), validation["text"].astype(str).tolist(), val_y.tolist())
    state = checkpoint.load(ckpt, fp)
    resumed = None
    if state:
        loop.restore(state, gen)
        resumed = {"epoch": loop.epoch, "batch": loop.position, "step": loop.step}
    save = lambda: checkpoint.save(ckpt, loop.state(gen, fp))  # noqa: E731
    y_t, stop = torch.tensor(y), False
    while loop.epoch <= t.epochs and not stop:
        if not loop.batches:
            loop.batches = bucketed(data.lengths(), t.batch_size, gen)
        loop.train_batches(data, y_t, save)
        stop = loop.end_epoch(validate(model, val_data, val_y, loop.loss_fn.cpu(), classes, 64))
        loop.loss_fn.to(hw.device)
        save()
    return _finish(loop, model, tokenizer, out, ckpt, candidate, init_from, cfg, hw, len(texts),
                   {"resumed_from": resumed, "stopped_early": stop, "features_computed": computed + val_computed})


def _finish(loop: Loop, model: gm.Classifier, tokenizer, out: Path, ckpt: Path, candidate: Candidate,
            init_from: gm.InitFrom, cfg: Config, hw: Hardware, rows: int, extra: dict) -> dict:
    """Load the best epoch's weights, save the model atomically, drop the checkpoint, summarise the run."""
    t = cfg.train
    model.load_state_dict(loop.best["weights"])
    meta = {"labels": list(cfg.data.labels), "max_length": t.max_length, "dropout": t.dropout,
            "init_from": init_from, "mode": t.mode, "backbone": candidate.model_dump(), "train_rows": rows,
            "seed": cfg.seed, "best_epoch": loop.best["epoch"]}
    with atomic_dir(out) as tmp:
        gm.save(model.cpu(), tokenizer, tmp, meta)
    shutil.rmtree(ckpt, ignore_errors=True)
    seconds = sum(h["seconds"] for h in loop.history)
    return {"init_from": init_from, "mode": t.mode, "backbone": candidate.name, "train_rows": rows,
            "seconds": round(seconds, 1),
            "examples_per_second": round(rows * len(loop.history) / max(seconds, 1e-9), 1),
            "device": hw.device.type, "precision": hw.precision, "threads": hw.threads,
            "optimizer_steps": loop.step, "best_epoch": loop.best["epoch"], "val_accuracy": loop.best["val_accuracy"],
            "val_macro_f1": loop.best["val_macro_f1"], **extra, "history": loop.history}


def run(split_dir: str | Path, selection: str | Path, out: str | Path, cfg: Config, init_from: gm.InitFrom,
        metrics: str | Path, history: str | Path | None = None) -> dict:
    """The stage as the orchestrators call it: read the splits and the selection, fit, write the metrics JSON.

    `history` (optional) gets the per-epoch rows alone, for a DVC plot.
    """
    from graft.artifacts import read_json, write_json
    from graft.data import read_splits
    from graft.select import selected_candidate

    splits = read_splits(split_dir)
    result = fit(splits["train"], splits["validation"], selected_candidate(read_json(selection), cfg), cfg,
                 init_from, out)
    write_json(metrics, result)
    if history:
        write_json(history, [{"init_from": init_from, **row} for row in result["history"]])
    return result
