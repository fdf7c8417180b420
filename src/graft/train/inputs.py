"""What the loop trains and validates on: a split as the modality's encoding, or as a frozen backbone's features.

Also the loop's eval-mode passes: all logits of a split (`predict`) and the validation row of an epoch (`validate`).
"""

from __future__ import annotations

import numpy as np
import torch

from graft.core.config import Candidate, Config
from graft.core.hardware import Hardware
from graft.metrics.scores import scores
from graft.modalities.base import Modality
from graft.models.classifier import Classifier, Tensors

Tasks = dict[str, list[str]]  # label column -> its classes; one entry for the usual single-task model

__all__ = ["Inputs", "inputs", "predict", "validate"]


class Inputs:
    """A split ready for the loop: the modality's encoding of its examples, or pooled features of a frozen backbone.

    `encoded` has `lengths()` (for length-grouped batches) and `batch(idx, device)` -> the model's inputs.
    """

    def __init__(self, encoded, hw: Hardware, features: bool = False):
        self.encoded, self.hw, self.features = encoded, hw, features

    def lengths(self) -> list[int]:
        """Size of each example (tokens for text; all equal for images and features)."""
        return self.encoded.lengths()

    def logits(self, model: Classifier, idx: list[int], tasks: Tasks) -> dict[str, torch.Tensor]:
        """The model's fp32 logits per task for examples `idx` (computed under autocast)."""
        batch = self.encoded.batch(idx, self.hw.device)
        with self.hw.autocast():
            out = model.from_features(batch["features"]) if self.features else model(**batch)
        out = out if isinstance(out, dict) else {next(iter(tasks)): out}
        return {t: v.float() for t, v in out.items()}

    def logits_and_features(self, model: Classifier, idx: list[int], tasks: Tasks, other: dict[str, torch.Tensor]
                            ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Logits and pooled features of examples `idx`, and the pooled features of `other` (a target batch).

        Batches of the same shape go through the backbone as ONE batch: batch norm in training mode normalizes
        each batch by its own statistics, which would make two separately normalized domains look alike.
        """
        batch = self.encoded.batch(idx, self.hw.device)
        with self.hw.autocast():
            if batch.keys() == other.keys() and all(batch[k].shape[1:] == other[k].shape[1:] for k in batch):
                both = model.features(**{k: torch.cat([batch[k], other[k]]) for k in batch})
                feats, theirs = both[:len(idx)], both[len(idx):]
            else:
                feats, theirs = model.features(**batch), model.features(**other)
            out = model.from_features(feats)
        out = out if isinstance(out, dict) else {next(iter(tasks)): out}
        return {t: v.float() for t, v in out.items()}, feats, theirs


def inputs(items: list, processor, model: Classifier, modality: Modality, candidate: Candidate, cfg: Config,
           init_from: str, hw: Hardware) -> tuple[Inputs, int]:
    """The modality's encoding of `items`; for feature extraction the frozen backbone's pooled features instead."""
    if cfg.train.mode != "feature_extraction":
        return Inputs(modality.encode(processor, items), hw), 0
    feats, computed = modality.frozen_features(model, processor, items, candidate, cfg, init_from == "pretrained",
                                               hw)
    return Inputs(Tensors("features", feats), hw, features=True), computed


@torch.inference_mode()
def predict(model: Classifier, data: Inputs, tasks: Tasks, n: int, batch: int = 64) -> dict[str, torch.Tensor]:
    """fp32 logits per task for all `n` examples of `data`, in eval mode (length-sorted batches, original order)."""
    model.eval()
    order = sorted(range(n), key=data.lengths().__getitem__)
    parts = [data.logits(model, order[i:i + batch], tasks) for i in range(0, n, batch)]
    out = {}
    for t, classes in tasks.items():
        out[t] = torch.empty((n, len(classes)))
        out[t][order] = torch.cat([p[t] for p in parts]).cpu()
    return out


@torch.inference_mode()
def validate(model: Classifier, data: Inputs, ys: dict[str, np.ndarray], loss_fns: dict, weights: dict,
             tasks: Tasks, batch: int = 64) -> dict:
    """Validation loss (weighted over tasks), accuracy and macro-F1 (averaged over tasks) in eval mode."""
    n = len(next(iter(ys.values())))
    all_logits = predict(model, data, tasks, n, batch)
    per_task = {}
    for t, classes in tasks.items():
        logits = all_logits[t]
        s = scores(ys[t], logits.argmax(1).numpy(), classes)
        per_task[t] = {"loss": float(loss_fns[t].cpu()(logits, torch.tensor(ys[t]))), "accuracy": s["accuracy"],
                       "macro_f1": s["macro_f1"]}
    row = {"val_loss": round(sum(weights[t] * r["loss"] for t, r in per_task.items()), 4),
           "val_accuracy": round(float(np.mean([r["accuracy"] for r in per_task.values()])), 4),
           "val_macro_f1": round(float(np.mean([r["macro_f1"] for r in per_task.values()])), 4)}
    if len(tasks) > 1:
        row["tasks"] = {t: {k: round(v, 4) for k, v in r.items()} for t, r in per_task.items()}
    return row
