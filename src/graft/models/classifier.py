"""The classifier every modality builds: a backbone, pooling, dropout and one linear head per task.

A modality's subclass says how the backbone turns its inputs into one pooled vector (`features`); the rest is
shared: the head(s), feature-extraction training on cached vectors (`from_features`), and inference through the
processor contract `model(**processor(batch))`. Saved weights are safetensors, never pickles.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn


class Classifier(nn.Module):
    """`encoder`, a pooled vector of `width`, dropout and a new linear head: (**inputs) -> logits.

    With two or more tasks ({task: classes}), one head per task on the shared vector: (**inputs) -> {task: logits};
    `head` is then the first task's head, so code that trains or freezes "the head" treats all heads alike.
    """

    def __init__(self, encoder: nn.Module, width: int, num_labels: int | dict[str, int], dropout: float = 0.1):
        super().__init__()
        tasks = num_labels if isinstance(num_labels, dict) else {"label": num_labels}
        first = next(iter(tasks))
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, tasks[first])
        if len(tasks) > 1:
            self.heads = nn.ModuleDict({t: self.head if t == first else nn.Linear(width, n) for t, n in tasks.items()})

    def forward(self, *args: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Return class logits (per task for a multi-task model); inputs by name, or in `features`' order (ONNX)."""
        return self.from_features(self.features(*args, **inputs))

    def features(self, *args: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
        """The pooled vector of a batch: each modality's subclass (TextClassifier, ImageClassifier) defines it."""
        raise TypeError(f"{type(self).__name__} must define features(): use a modality's classifier")

    def from_features(self, pooled: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Logits from pooled vectors (feature extraction trains on cached ones)."""
        shared = self.dropout(pooled)
        if hasattr(self, "heads"):
            return {t: head(shared) for t, head in self.heads.items()}
        return self.head(shared)


def layer_list(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's stack of blocks, bottom to top, or None when the architecture keeps them elsewhere.

    BERT/RoBERTa/MiniLM: `encoder.layer`; DistilBERT: `transformer.layer`; many others: `layers`; EfficientNet's
    MBConv blocks: `_blocks`.
    """
    for path in ("encoder.layer", "transformer.layer", "layers", "_blocks"):
        node = encoder
        for part in path.split("."):
            node = getattr(node, part, None)
        if isinstance(node, nn.ModuleList):
            return node
    return None


def batches(items: list, size: int) -> Iterator[list]:
    """Consecutive slices of `items`."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


@torch.inference_mode()
def predict_logits(model: Classifier, processor, items: list, batch_size: int) -> np.ndarray:
    """fp32 logits for `items`, batch by batch, on the model's device (CPU, or a GPU it was moved to)."""
    model.eval()
    device, out = next(model.parameters()).device, []
    for chunk in batches(items, batch_size):
        inputs = {k: v.to(device) for k, v in processor(chunk).items()}
        out.append(model(**inputs).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.head.out_features), dtype=np.float32)


class Tensors:
    """A split as one fixed-size tensor per example under the model's input `name` (pixels, pooled features)."""

    def __init__(self, name: str, values: torch.Tensor):
        self.name, self.values = name, values

    def __len__(self) -> int:
        return len(self.values)

    def lengths(self) -> list[int]:
        """All examples are the same size."""
        return [1] * len(self.values)

    def batch(self, idx: list[int], device: torch.device) -> dict[str, torch.Tensor]:
        """The model's inputs for examples `idx`."""
        return {self.name: self.values[idx].to(device)}


@torch.inference_mode()
def pooled(model: Classifier, inputs, device: torch.device, autocast, batch: int = 64) -> torch.Tensor:
    """Pooled features of a frozen backbone for every example of `inputs` (eval mode), in order, as fp32."""
    model.encoder.eval()
    parts = []
    for start in range(0, len(inputs), batch):
        with autocast():
            parts.append(model.features(**inputs.batch(list(range(start, min(start + batch, len(inputs)))),
                                                       device)).float().cpu())
    return torch.cat(parts) if parts else torch.zeros((0, model.head.in_features))
