"""The `train` and `baseline` stages: one training loop; `init_from` is the only difference between them.

`pretrained` fine-tunes the selected backbone; `scratch` trains the same architecture from random weights with the
same data, split, seed, recipe and budget, so the comparison is fair by construction (nanoGPT's `init_from`).
The loop pads each batch to its own longest text and groups texts of similar length (group_by_length), steps a bf16
copy of the model with fp32 master weights where the hardware has native bf16 (graft.train.precision), keeps the
best epoch by validation macro-F1 (on a tie, the lower validation loss), can stop early, and writes a resumable
checkpoint (graft.checkpoint) so a killed run continues where it stopped with the same result.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graft import modalities
from graft.core import progress
from graft.core.artifacts import atomic_dir
from graft.core.config import Candidate, Config
from graft.core.errors import GraftError
from graft.core.hardware import Hardware, resolve
from graft.metrics.scores import label_ids
from graft.modalities.base import Modality
from graft.models.classifier import Classifier
from graft.train import adapt, checkpoint, distributed, dropout, embedding_grads, optim, precision
from graft.train.batching import bucketed
from graft.train.inputs import Inputs, Tasks, inputs, validate


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def improves(val: dict, best: dict | None) -> bool:
    """Whether an epoch's validation row beats the best so far: higher macro-F1, or the same and a lower loss.

    Macro-F1 on a few hundred validation rows moves in steps, so two epochs often tie; the loss, which keeps falling
    while the predictions stay put, tells them apart (MiniLM on the default tweets: epochs 3 and 4 both 0.916,
    losses 0.2857 and 0.2654). A best epoch saved before the loss was kept has none, and any tie beats it.
    """
    if best is None:
        return True
    return (val["val_macro_f1"], -val["val_loss"]) > (best["val_macro_f1"], -best.get("val_loss", math.inf))


class Loop:
    """One training run's moving parts; `state()` / `restore()` make it resumable."""

    def __init__(self, model: Classifier, cfg: Config, ys: dict[str, np.ndarray], tasks: Tasks, weights: dict,
                 steps_per_epoch: int, hw: Hardware, world: distributed.World = distributed.World(),
                 method: adapt.Method | None = None, ctx: adapt.Context | None = None, label: str = ""):
        t = cfg.train
        self.label = label  # what progress lines call this run ("pretrained MiniLM: ")
        self.model, self.t, self.hw, self.tasks, self.weights = model, t, hw, tasks, weights
        self.method, self.ctx, self.total = method or adapt.Method(), ctx, steps_per_epoch * t.epochs
        # net: what the training step calls. Several workers: DDP around the model. One, in bf16: a bf16 copy whose
        # gradients go to the model's fp32 master weights (graft.train.precision). Head-only training on cached
        # features never runs the backbone, so it keeps autocast.
        self.compute = None
        if world.size == 1 and hw.precision == "bf16" and t.mode != "feature_extraction":
            self.compute = precision.Compute(model)
        self.net = self.compute.net if self.compute else distributed.wrap(model, hw, world)
        self.rows = embedding_grads.RowGrads(self.net) if world.size == 1 else None
        self.world = world
        self.opt = optim.optimizer(model, t)
        self.sched = optim.scheduler(self.opt, t, steps_per_epoch * t.epochs)
        self.loss_fns = {k: optim.loss_fn(t, ys[k], len(v)) for k, v in tasks.items()}
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
                "history": self.history, "best": best, "stale": self.stale, "adapt": self.method.state_dict()}

    def restore(self, state: dict, gen: torch.Generator) -> None:
        """Continue from a saved state."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        checkpoint.set_rng_state(state["rng"], gen)
        for key in ("epoch", "position", "step", "batches", "running", "history", "best", "stale"):
            setattr(self, key, state[key])
        self.method.load_state_dict(state["adapt"])
        if self.compute:
            self.compute.from_master(everything=True)
        if self.best and self.best["weights"] is None:
            self.best["weights"] = copy.deepcopy(self.model.state_dict())

    def train_batches(self, data: Inputs, ys: dict[str, torch.Tensor], save) -> None:
        """Run the rest of the current epoch's batches (from `position`), stepping every grad_accum batches."""
        t, run = self.t, self.running
        self.net.train()
        bar = progress.bar(total=len(self.batches), initial=self.position, unit="batch", show=self.world.main,
                           desc=f"{self.label}epoch {self.epoch}/{t.epochs}")
        start = time.perf_counter() - run["seconds"]
        while self.position < len(self.batches):
            idx = distributed.shard(self.batches[self.position], self.world)
            extra = 0.0  # a domain loss adds to the step's gradient; the running loss stays the task's
            if isinstance(self.method, adapt.StepMethod):
                logits, feats, theirs = data.logits_and_features(self.net, idx, self.tasks,
                                                                 self.method.batch(self.ctx, len(idx)))
                extra = self.method.loss(self.ctx, feats, theirs, self.step / max(self.total, 1))
            else:
                logits = data.logits(self.net, idx, self.tasks)
            targets = {k: ys[k][idx].to(self.hw.device) for k in self.tasks}
            loss = sum(self.weights[k] * self.loss_fns[k].to(self.hw.device)(logits[k], targets[k]) for k in self.tasks)
            ((loss + extra) / t.grad_accum_steps).backward()
            if self.compute:
                self.compute.to_master()
            run["loss"] += loss.item() * len(idx)
            first = next(iter(self.tasks))  # the running train accuracy is the first task's
            run["correct"] += int((logits[first].argmax(1) == targets[first]).sum())
            run["seen"] += len(idx)
            self.position += 1
            if self.position % t.grad_accum_steps == 0 or self.position == len(self.batches):
                if self.rows:
                    self.rows.densify()
                trainable = [p for p in self.model.parameters() if p.requires_grad]
                optim.step(self.opt, trainable, 1.0, self.rows.touched() if self.rows else None)
                self.sched.step()
                self.opt.zero_grad(set_to_none=True)
                if self.rows:
                    self.rows.clear()
                if self.compute:
                    self.compute.from_master()
                self.method.step()
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
               "train_accuracy": round(run["correct"] / run["seen"], 4), **val, **self.method.epoch_stats(),
               "seconds": round(run["seconds"], 2), "examples_per_second": round(run["seen"] / run["seconds"], 1)}
        self.history.append(row)
        if self.world.main:
            progress.line(f"{self.label}epoch {self.epoch}/{self.t.epochs}: train loss {row['train_loss']:.4f}, "
                          f"val macro-F1 {val['val_macro_f1']:.4f}, val loss {val['val_loss']:.4f} "
                          f"({row['seconds']:.1f} s)")
        if improves(val, self.best):
            self.best = {"epoch": self.epoch, "val_macro_f1": val["val_macro_f1"], "val_loss": val["val_loss"],
                         "val_accuracy": val["val_accuracy"], "weights": copy.deepcopy(self.model.state_dict())}
            self.stale = 0
        else:
            self.stale += 1
        self.epoch += 1
        self.position, self.batches = 0, []
        self.running = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        patience = self.t.early_stopping_patience
        return patience is not None and self.stale >= patience


def fit(train: pd.DataFrame, validation: pd.DataFrame, candidate: Candidate, cfg: Config,
        init_from: str, out: str | Path, ckpt: str | Path | None = None, tasks: Tasks | None = None,
        weights: dict[str, float] | None = None, target: pd.DataFrame | None = None) -> dict:
    """Train a classifier on `train`, keep the best epoch by validation macro-F1, save it atomically to `out`.

    `target` (unlabeled target-domain inputs) is what `train.adapt` adapts to (graft.train.adapt); the scratch
    baseline and `adapt: none` ignore it.

    `tasks` ({column: labels}, default {"label": data.labels}) with two or more entries trains one shared
    backbone with one head per column, on the `weights`-weighted sum of their losses (default 1 each).
    `ckpt` (default: `<out>.ckpt`) holds the resumable state while training runs; it is removed on success.
    """
    t, out = cfg.train, Path(out)
    ckpt = Path(ckpt) if ckpt else out.with_name(out.name + ".ckpt")
    tasks = tasks or {"label": list(cfg.data.labels)}
    weights = {k: (weights or {}).get(k, 1.0) for k in tasks}
    world, hw = distributed.setup(resolve(t))
    if world.size > 1 and t.mode == "feature_extraction":
        raise GraftError("feature_extraction trains a head on cached features in seconds: run it in one process")
    gen = seed_everything(cfg.seed)
    modality = modalities.get(cfg.data.modality)
    target_items = modality.examples(target) if target is not None else None
    method = adapt.method(cfg, modality, init_from, target_items, len(tasks), world.size)
    processor, model = modality.build(candidate, {k: len(v) for k, v in tasks.items()}, init_from, cfg)
    optim.freeze(model, t)
    if hw.device.type == "cpu":
        dropout.install(model)
    model.to(hw.device)
    items, val_items = modality.examples(train), modality.examples(validation)
    pool = len(target_items or [])
    if method.name != "none":
        target_items = adapt.sample(target_items, len(items), cfg.train.adaptation.max_target_ratio, cfg.seed)
    ctx = adapt.Context(model, processor, modality, cfg, hw, target_items, items, gen,
                        {"labels": next(iter(tasks.values()))})
    ys = {k: label_ids(train[k], v) for k, v in tasks.items()}
    val_ys = {k: label_ids(validation[k], v) for k, v in tasks.items()}
    data, computed = inputs(items, processor, model, modality, candidate, cfg, init_from, hw)
    val_data, val_computed = inputs(val_items, processor, model, modality, candidate, cfg, init_from, hw)
    steps_per_epoch = math.ceil(math.ceil(len(items) / t.batch_size) / t.grad_accum_steps)
    fp = checkpoint.fingerprint(t.model_dump(exclude={"threads"}), cfg.seed, candidate.model_dump(), init_from,
                                tasks, weights, modality.identity(items), {k: v.tolist() for k, v in ys.items()},
                                modality.identity(val_items), {k: v.tolist() for k, v in val_ys.items()},
                                method.name, modality.identity(target_items) if method.name != "none" else [])
    target_items = target_items or []
    state = checkpoint.load(ckpt, fp)
    # tapt changes the encoder before training: a resumed run restores its weights from the checkpoint instead
    adaptation = {"method": method.name, **({"target_pool": pool} if method.name != "none" else {}),
                  **(method.before(ctx) if not state or method.name != "tapt" else {})}
    loop = Loop(model, cfg, ys, tasks, weights, steps_per_epoch, hw, world, method, ctx,
                label=f"{init_from} {candidate.name}: ")
    resumed = None
    if state:
        loop.restore(state, gen)
        resumed = {"epoch": loop.epoch, "batch": loop.position, "step": loop.step}
    writer = checkpoint.Writer(background=hw.device.type != "cpu")  # on CPU the step needs every core
    save = lambda: writer.submit(ckpt, loop.state(gen, fp)) if world.main else None  # noqa: E731
    ys_t, stop = {k: torch.tensor(v) for k, v in ys.items()}, False
    try:
        while loop.epoch <= t.epochs and not stop:
            if not loop.batches:
                loop.batches = bucketed(data.lengths(), t.batch_size, gen)
            loop.train_batches(data, ys_t, save)
            stop = loop.end_epoch(validate(model, val_data, val_ys, loop.loss_fns, weights, tasks))
            if loop.epoch <= t.epochs and not stop:  # after the last epoch the model itself is saved next
                save()
    finally:
        writer.wait()  # before the checkpoint is removed, or the run ends
    model.load_state_dict(loop.best["weights"])
    ctx.extra.update(ys=ys, val_data=val_data, val_ys=val_ys)
    adaptation.update(method.after(ctx, functools.partial(retrain, ctx, loop)))
    result = _finish(loop, model, processor, modality, out, ckpt, candidate, init_from, cfg, hw, len(items),
                     {"resumed_from": resumed, "stopped_early": stop, "features_computed": computed + val_computed,
                      "workers": world.size, "adaptation": adaptation})
    distributed.finish(world)
    return result


def retrain(ctx: adapt.Context, main: Loop, more: list, labels: np.ndarray) -> list[dict]:
    """More training of the model on the source rows plus `more` (pseudo-labeled target): a self-training round.

    The same loop at `round_learning_rate_scale` of the learning rate, decaying linearly over `round_epochs`, the
    round's best epoch by source validation macro-F1 kept; it returns the round's history rows.
    """
    cfg, model, task = ctx.cfg, ctx.model, next(iter(main.tasks))
    a, t = cfg.train.adaptation, cfg.train
    items, y = ctx.source + more, np.concatenate([ctx.extra["ys"][task], labels])
    scale = {"learning_rate": t.learning_rate * a.round_learning_rate_scale, "epochs": a.round_epochs,
             "schedule": "linear", "warmup_ratio": 0.0, "early_stopping_patience": None,
             "checkpoint_every_steps": None}
    if t.head_learning_rate:
        scale["head_learning_rate"] = t.head_learning_rate * a.round_learning_rate_scale
    rcfg = cfg.model_copy(update={"train": t.model_copy(update=scale)})
    data = Inputs(ctx.modality.encode(ctx.processor, items), main.hw)
    loop = Loop(model, rcfg, {task: y}, main.tasks, main.weights, math.ceil(len(items) / t.batch_size), main.hw,
                label=f"{main.label}self-training round, ")
    while loop.epoch <= a.round_epochs:
        loop.batches = bucketed(data.lengths(), t.batch_size, ctx.gen)
        loop.train_batches(data, {task: torch.tensor(y)}, lambda: None)
        loop.end_epoch(validate(model, ctx.extra["val_data"], ctx.extra["val_ys"], loop.loss_fns, main.weights,
                                main.tasks))
    model.load_state_dict(loop.best["weights"])
    return loop.history


def _finish(loop: Loop, model: Classifier, processor, modality: Modality, out: Path, ckpt: Path,
            candidate: Candidate, init_from: str, cfg: Config, hw: Hardware, rows: int, extra: dict) -> dict:
    """Load the best epoch's weights, save the model atomically, drop the checkpoint, summarise the run."""
    t = cfg.train
    meta = {"labels": next(iter(loop.tasks.values())), "max_length": t.max_length, "dropout": t.dropout,
            "init_from": init_from, "mode": t.mode, "backbone": candidate.model_dump(), "train_rows": rows,
            "seed": cfg.seed, "best_epoch": loop.best["epoch"], "adapt": extra["adaptation"]["method"],
            "history": loop.history}
    if len(loop.tasks) > 1:
        meta.update(tasks=loop.tasks, task_weights=loop.weights)
    if loop.world.main:  # one writer among data-parallel workers
        with atomic_dir(out) as tmp:
            modalities.save_model(model.cpu(), processor, tmp, meta, modality)
        shutil.rmtree(ckpt, ignore_errors=True)
    seconds = sum(h["seconds"] for h in loop.history)
    return {"init_from": init_from, "mode": t.mode, "backbone": candidate.name, "train_rows": rows,
            "seconds": round(seconds, 2),
            "examples_per_second": round(rows * len(loop.history) / max(seconds, 1e-9), 1),
            "device": hw.device.type, "precision": hw.precision, "threads": hw.threads,
            "optimizer_steps": loop.step, "best_epoch": loop.best["epoch"], "val_accuracy": loop.best["val_accuracy"],
            "val_macro_f1": loop.best["val_macro_f1"], **extra, "history": loop.history}
