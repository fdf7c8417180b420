"""What an explanation is, for every modality: attribution scores over an input's units, and deleting units.

A unit is what a person reads an attribution on: a word (word pieces merged) for texts, a pixel for images. Each
modality implements `Explainer` with integrated gradients (Captum) against its own baseline — the input with every
unit deleted — so that the deletion test (graft.explain.faithfulness) removes units the same way the attributions
were measured. The explained output is the softmax probability of the target class: scores and the convergence
delta are in probability units, and the completeness bound (|delta| <= 0.05) means 5% of the probability range.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Attribution:
    """One input's explanation: a score per unit (its contribution to the target probability) and IG's delta."""

    target: int  # the explained class id (the model's prediction)
    probability: float  # the model's probability of `target`
    scores: np.ndarray  # text: one per word; image: H x W (channels summed), at the model's input size
    delta: float  # sum(scores) - (p(input) - p(baseline)): 0 when the integral is exact
    units: list[str] | None = None  # the words (text); None for a pixel grid


class Explainer(ABC):
    """A modality's attributions and deletions for one classifier (eval mode, on its device)."""

    method: str  # what it computes, in words (the reports say it)

    def __init__(self, model, processor, batch_size: int = 8):
        # gradients flow to the inputs only: no weight gradients, about a third less work per step
        self.model, self.processor, self.batch_size = model.eval().requires_grad_(False), processor, batch_size

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def probabilities_of(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Softmax probabilities for a batch of model inputs."""
        return torch.softmax(self.model(**inputs).float(), -1)

    def order(self, items: list) -> list[int]:
        """The order to attribute `items` in, so that a batch's inputs cost alike (texts: by length)."""
        return list(range(len(items)))

    @abstractmethod
    def attribute(self, items: list, steps: int, targets: list[int] | None = None) -> list[Attribution]:
        """Integrated-gradients attributions of each item's target (default: predicted) class, `steps` steps."""

    @abstractmethod
    def delete(self, items: list, masks: list[np.ndarray]) -> np.ndarray:
        """Class probabilities (N x C) of the items with the units where `masks` is True replaced by the baseline."""


def unit_count(attribution: Attribution) -> int:
    """How many units an attribution scores."""
    return int(attribution.scores.size)
