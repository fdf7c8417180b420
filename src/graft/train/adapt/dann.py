"""DANN (Ganin et al. 2016): a domain discriminator on the pooled features, trained through gradient reversal.

Every step draws a target batch as large as the source batch. The discriminator learns to tell source from
target features; the reversed gradient, scaled by lambda, teaches the backbone to make them indistinguishable.
lambda warms up from 0 to `dann_weight` as 2 / (1 + exp(-10 p)) - 1 over the run (p: share of steps done), so
the noisy early discriminator cannot wreck the pretrained features. Its accuracy is logged per epoch: it falls
toward 0.5 as the domains align.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from graft.train.adapt.base import Context, StepMethod


class _Reverse(torch.autograd.Function):
    """Identity forward; the gradient times -lambda backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Gradient reversal with coefficient `lam`."""
    return _Reverse.apply(x, lam)


def coefficient(progress: float, weight: float) -> float:
    """The warm-started reversal coefficient at `progress` in [0, 1]."""
    return weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def discriminator(width: int, hidden: int) -> nn.Sequential:
    """Pooled features -> one domain logit (target = 1)."""
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1))


class DANN(StepMethod):
    """Domain-adversarial training."""

    name = "dann"

    def __init__(self, cfg):
        self.cfg, self.a = cfg, cfg.train.adaptation
        self.disc = self.opt = self.encoded = None
        self.sampler = torch.Generator().manual_seed(cfg.seed + 1)
        self.correct = self.seen = 0
        self.lam = 0.0

    def before(self, ctx: Context) -> dict:
        """Build the discriminator and encode the target pool once."""
        width = ctx.model.head.in_features
        torch.manual_seed(self.cfg.seed + 2)
        self.disc = discriminator(width, self.a.discriminator_hidden).to(ctx.hw.device)
        self.opt = torch.optim.AdamW(self.disc.parameters(), lr=self.a.discriminator_learning_rate)
        self.encoded = ctx.modality.encode(ctx.processor, ctx.target)
        return {"target_inputs": len(ctx.target)}

    def batch(self, ctx: Context, n: int) -> dict[str, torch.Tensor]:
        """`n` target inputs drawn at random (with replacement) from the pool."""
        idx = torch.randint(len(self.encoded), (n,), generator=self.sampler).tolist()
        return self.encoded.batch(idx, ctx.hw.device)

    def loss(self, ctx: Context, features: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        """Domain loss of this step's source and target features, through the reversal."""
        self.disc.train()
        both = torch.cat([features.float(), target.float()])
        domain = torch.cat([torch.zeros(len(features)), torch.ones(len(target))]).to(both.device)
        self.lam = coefficient(progress, self.a.dann_weight)
        logits = self.disc(reverse(both, self.lam)).squeeze(1)
        self.correct += int(((logits > 0).float() == domain).sum())
        self.seen += len(domain)
        return nn.functional.binary_cross_entropy_with_logits(logits, domain)

    def step(self) -> None:
        """One discriminator update per optimizer step."""
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def epoch_stats(self) -> dict:
        """The discriminator's training accuracy this epoch (0.5: the domains look alike) and lambda."""
        row = {"domain_accuracy": round(self.correct / max(self.seen, 1), 4), "dann_lambda": round(self.lam, 4)}
        self.correct = self.seen = 0
        return row

    def state_dict(self) -> dict:
        """Discriminator, its optimizer and the target sampler: a resumed run continues the same sequence."""
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict(), "sampler": self.sampler.get_state(),
                "correct": self.correct, "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint."""
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
        self.sampler.set_state(state["sampler"])
        self.correct, self.seen = state["correct"], state["seen"]
