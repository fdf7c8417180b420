"""What trains and how: the transfer mode's frozen parts, layer-wise learning rates, optimizer, schedule, loss.

Modes (the seed's transfer recipes): `finetune` trains everything; `partial` freezes the embeddings and all but the
top `unfreeze_top` blocks; `feature_extraction` freezes the whole backbone and trains only the head.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from graft.core.config import TrainConfig
from graft.core.errors import GraftError
from graft.models.classifier import Classifier, layer_list


def blocks(model: Classifier) -> list[nn.Module]:
    """The backbone's transformer blocks, bottom to top."""
    layers = layer_list(model.encoder)
    if layers is None:
        raise GraftError(f"{type(model.encoder).__name__}: cannot find its transformer blocks, so partial "
                         "training and layer-wise learning rates are not available for it")
    return list(layers)


def freeze(model: Classifier, cfg: TrainConfig) -> None:
    """Set requires_grad by the transfer mode."""
    if cfg.mode == "finetune":
        return
    model.encoder.requires_grad_(False)
    if cfg.mode == "partial":
        stack = blocks(model)
        if cfg.unfreeze_top > len(stack):
            raise GraftError(f"train.unfreeze_top={cfg.unfreeze_top} exceeds the backbone's {len(stack)} blocks")
        for block in stack[len(stack) - cfg.unfreeze_top:]:
            block.requires_grad_(True)


def _depth_of(model: Classifier, cfg: TrainConfig) -> dict[int, int]:
    """Parameter id -> layer-wise decay exponent: 0 for the head, L - i for block i, L for everything else."""
    if cfg.layer_lr_decay == 1.0:
        return {}
    stack = blocks(model)
    exponent = {id(p): len(stack) for p in model.encoder.parameters()}
    for i, block in enumerate(stack):
        exponent.update({id(p): len(stack) - 1 - i for p in block.parameters()})
    return exponent


def param_groups(model: Classifier, cfg: TrainConfig) -> list[dict]:
    """Trainable parameters grouped by learning rate and weight decay (none on biases and LayerNorm weights)."""
    exponent = _depth_of(model, cfg)
    head_ids = {id(p) for p in model.head.parameters()} | {id(p) for p in getattr(model, "heads", nn.Module())
                                                           .parameters()}
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in head_ids:
            lr = cfg.head_learning_rate or cfg.learning_rate
        else:
            lr = cfg.learning_rate * cfg.layer_lr_decay ** (exponent.get(id(p), 0) + (1 if exponent else 0))
        wd = 0.0 if p.ndim < 2 or "LayerNorm" in name else cfg.weight_decay
        groups.setdefault((lr, wd), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def optimizer(model: Classifier, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, Adam (weight decay as L2) or SGD with momentum over the trainable parameter groups.

    The fused implementations: on CPU torch otherwise updates one tensor at a time in Python, and a fused AdamW
    step over MiniLM's 22M parameters took 11 ms here instead of 55 ms.
    """
    groups = param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum, fused=True)
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(groups, lr=cfg.learning_rate, fused=True)


def clip_scale(params: list[nn.Parameter], max_norm: float,
               rows: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    """The factor to divide the gradients by so that their joint L2 norm is at most `max_norm` (>= 1, fp32).

    torch's clip_grad_norm_ multiplies every gradient by max_norm / (norm + 1e-6) when that is below 1, a pass over
    all of them (read and write, 90 MB for MiniLM) before the optimizer reads them again; here the fused optimizer
    divides by this factor as it reads each gradient (its `grad_scale`, see `step`). `rows` ({id(gradient): row
    indices}) names gradients that are zero outside those rows (the word-embedding buffer of
    graft.train.embedding_grads): their norm reads only those rows, not the 47 MB table.
    """
    grads = [p.grad for p in params if p.grad is not None]
    rows = rows or {}
    dense = [g for g in grads if id(g) not in rows]
    norms = list(torch._foreach_norm(dense)) if dense else []  # torch refuses an empty list
    norms += [g.index_select(0, rows[id(g)]).norm() for g in grads if id(g) in rows]
    if not norms:
        return torch.ones((), dtype=torch.float32)
    total = torch.linalg.vector_norm(torch.stack(norms).float())
    return ((total + 1e-6) / max_norm).clamp(min=1.0)


def step(opt: torch.optim.Optimizer, params: list[nn.Parameter], max_norm: float,
         rows: dict[int, torch.Tensor] | None = None) -> None:
    """One optimizer step on gradients clipped to a joint L2 norm of `max_norm`, the clipping inside the fused step.

    For MiniLM on CPU: clip_grad_norm_ and then AdamW took ~19 ms a step here, this ~12 ms. The update differs from
    clip-then-step only in rounding (a division by the factor instead of a multiplication by its inverse).
    """
    opt.grad_scale = clip_scale(params, max_norm, rows)
    try:
        opt.step()
    finally:
        del opt.grad_scale


def scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over warmup_ratio of the steps, then linear or cosine decay to zero, or constant."""
    warmup = int(cfg.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 if cfg.schedule == "constant" else 1.0 - progress

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def loss_fn(cfg: TrainConfig, y: np.ndarray, num_classes: int) -> nn.CrossEntropyLoss:
    """Cross-entropy with optional label smoothing and balanced class weights (n / (k * count))."""
    weight = None
    if cfg.class_weights == "balanced":
        counts = np.bincount(y, minlength=num_classes).astype(np.float64)
        weight = torch.tensor(len(y) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
