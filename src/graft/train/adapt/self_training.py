"""Self-training: confident, class-balanced pseudo-labels on the target pool, then more training, a few rounds.

Each round predicts the whole target pool with the current model and keeps an input only if its top class
probability reaches `pseudo_threshold` AND it is among the most confident `share` of the inputs predicted as that
class, share = round / rounds (class-balanced, after Zou et al. 2018: an easy class cannot crowd out the rest),
and at most `max_pseudo_ratio` times as many as the source rows (so a large pool neither drowns the labeled
data nor multiplies the cost).
The model then trains `round_epochs` more on source + pseudo-labeled target at `round_learning_rate_scale` of the
learning rate; the next round labels again with the improved model.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from graft.models.classifier import predict_logits
from graft.train.adapt.base import Context, Method


def pseudo_labels(probs: np.ndarray, threshold: float, share: float, limit: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(positions, classes) of the target inputs that get a pseudo-label this round.

    `limit` caps the total; each class then keeps at most its predicted share of it, most confident first.
    """
    predicted, confidence = probs.argmax(1), probs.max(1)
    keep = []
    for c in np.unique(predicted):
        members = np.flatnonzero(predicted == c)
        take = math.ceil(share * len(members))
        if limit is not None:
            take = min(take, math.ceil(limit * len(members) / len(predicted)))
        ranked = members[np.argsort(-confidence[members], kind="stable")][:take]
        keep.append(ranked[confidence[ranked] >= threshold])
    keep = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int)
    return keep, predicted[keep]


class SelfTraining(Method):
    """Pseudo-label rounds after the source-only training."""

    name = "self_training"

    def __init__(self, cfg):
        self.cfg, self.a = cfg, cfg.train.adaptation

    def after(self, ctx: Context, retrain) -> dict:
        """Run the rounds; report each one's pseudo-label count, per-class counts and lowest confidence."""
        rounds = []
        labels = ctx.extra["labels"]
        for r in range(1, self.a.rounds + 1):
            logits = predict_logits(ctx.model, ctx.processor, ctx.target, self.cfg.evaluate.batch_size)
            probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
            limit = math.ceil(self.a.max_pseudo_ratio * len(ctx.source))
            keep, classes = pseudo_labels(probs, self.a.pseudo_threshold, r / self.a.rounds, limit)
            counts = np.bincount(classes, minlength=len(labels))
            rounds.append({"round": r, "pseudo_labels": int(len(keep)),
                           "per_class": {lab: int(n) for lab, n in zip(labels, counts)},
                           "min_confidence": round(float(probs[keep].max(1).min()), 4) if len(keep) else None})
            if len(keep):
                rounds[-1]["history"] = retrain([ctx.target[i] for i in keep], classes)
        return {"threshold": self.a.pseudo_threshold, "target_inputs": len(ctx.target), "rounds": rounds}
