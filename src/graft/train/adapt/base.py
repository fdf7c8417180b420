"""The interface every adaptation method implements, and the context the loop hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from graft.core.config import Config


@dataclass
class Context:
    """What a method may touch: the model and its processor, the recipe, the target inputs, the loop's pieces."""

    model: Any
    processor: Any
    modality: Any
    cfg: Config
    hw: Any
    target: list  # the unlabeled target-domain inputs (the modality's items)
    source: list  # the training split's inputs
    gen: torch.Generator
    extra: dict = field(default_factory=dict)


class Method:
    """No adaptation (`none`): the source-only model. Subclasses override the hooks they need."""

    name = "none"

    def before(self, ctx: Context) -> dict:
        """Change the backbone before training starts; return what to report."""
        return {}

    def step(self) -> None:
        """After each optimizer step: step the method's own parameters."""

    def epoch_stats(self) -> dict:
        """Numbers for the epoch's history row; resets them."""
        return {}

    def after(self, ctx: Context, retrain) -> dict:
        """Change the trained model (its best epoch loaded); `retrain(items, labels)` trains it on source + those."""
        return {}

    def state_dict(self) -> dict:
        """The method's resumable state (the loop's checkpoint holds it)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint's state."""


class StepMethod(Method, ABC):
    """A method inside every training step (dann): a target batch, and a loss on both domains' pooled features."""

    @abstractmethod
    def batch(self, ctx: Context, n: int) -> dict[str, torch.Tensor]:
        """`n` target inputs for this step: the model's inputs, on its device."""

    @abstractmethod
    def loss(self, ctx: Context, features: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        """An extra loss for this step from the pooled source and target features.

        `progress` is the share of the run's optimizer steps done.
        """
