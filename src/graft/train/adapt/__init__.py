"""Domain adaptation in the one training loop (`train.adapt`): each method a small module behind one interface.

A method sees the unlabeled target-domain inputs (data.target) and hooks into the loop at three points: `before`
the optimizer exists (tapt: masked-LM on the encoder), `loss` in every training step (dann: the domain
discriminator through gradient reversal), and `after` the best epoch is loaded (adabn: batch-norm statistics;
self_training: pseudo-label rounds). `none` is the source-only model: the same loop, the same budget, no target.
Which methods apply is the modality's to say (`Modality.adaptations`); anything else is a one-line config error.
"""

from __future__ import annotations

import math

import numpy as np

from graft.core.config import Config
from graft.core.errors import GraftError
from graft.train.adapt.base import Context, Method, StepMethod

__all__ = ["METHODS", "Context", "Method", "StepMethod", "check", "method", "sample"]

METHODS = ("none", "adabn", "dann", "self_training", "tapt")


def method(cfg: Config, modality, init_from: str, target: list | None, tasks: int, workers: int) -> Method:
    """The configured method, checked against the modality, the recipe and the data; `none` for the baseline.

    The scratch baseline is the no-transfer model: it never adapts (nothing pretrained to transfer from). Without
    target inputs (`target` None: train, selfcheck, curve) the run is the source-only one; an empty list is an error.
    """
    name = cfg.train.adapt
    if name == "none" or init_from == "scratch" or target is None:
        return Method()
    check(cfg, modality)
    if not target:
        raise GraftError(f"train.adapt={name} needs unlabeled target inputs: set data.target.raw in params.yaml")
    if tasks > 1 or workers > 1:
        raise GraftError(f"train.adapt={name} trains a single-task model in one process")
    from graft.train.adapt import adabn, dann, self_training, tapt

    return {"adabn": adabn.AdaBN, "dann": dann.DANN, "self_training": self_training.SelfTraining,
            "tapt": tapt.TAPT}[name](cfg)


def sample(target: list, source_rows: int, ratio: float, seed: int) -> list:
    """At most `ratio` target inputs per source training row: a seeded sample in pool order, or all of them.

    Every method's cost grows with the pool (tapt trains on it, self_training and adabn predict it): this bounds it.
    """
    limit = math.ceil(ratio * source_rows)
    if len(target) <= limit:
        return target
    keep = np.sort(np.random.default_rng(seed).choice(len(target), limit, replace=False))
    return [target[i] for i in keep]


def check(cfg: Config, modality) -> None:
    """Raise the one-line config error when train.adapt does not apply to this modality or transfer mode."""
    name = cfg.train.adapt
    if name == "none":
        return
    if name not in modality.adaptations:
        usable = ", ".join(m for m in modality.adaptations)
        raise GraftError(f"train.adapt: {name} does not apply to {modality.noun} ({modality.adaptation_note}); "
                         f"use one of {usable}")
    if cfg.train.mode == "feature_extraction":
        raise GraftError(f"train.adapt={name} changes the backbone: set train.mode to finetune or partial")
