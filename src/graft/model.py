"""Backbones and the classifier built on them: resolve a source, load (pretrained or scratch), save, reload.

Text: a transformer encoder (MiniLM), mean pooling, a linear head. Images: EfficientNet-Lite's convolutional
trunk, global average pooling, a linear head (the seed's frozen-ImageNet-backbone recipe). Saved models are
safetensors; text weights load only from safetensors, image weights from the packaged .pth with
`weights_only=True` (tensors, never pickled code), and `trust_remote_code` is never enabled.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from graft.artifacts import read_json, write_json
from graft.config import Candidate
from graft.errors import GraftError

InitFrom = Literal["pretrained", "scratch"]
MODEL_META = "graft_model.json"
WEIGHTS = "model.safetensors"


def resolve_source(source: str) -> str:
    """Turn a catalog `source` into something `from_pretrained` accepts: a local folder or a hub id."""
    if source.startswith("pkg:"):
        module = source.removeprefix("pkg:")
        try:
            return str(importlib.import_module(module).get_model_path())
        except ImportError:
            raise GraftError(f"backbone source {source!r}: package {module} is not installed") from None
        except AttributeError:
            raise GraftError(f"backbone source {source!r}: {module} has no get_model_path()") from None
    if Path(source).exists():
        if not (Path(source) / "config.json").is_file():
            raise GraftError(f"backbone source {source!r}: folder has no config.json")
        return source
    return source  # a hub id; only loads where a hub is reachable (HF_HUB_OFFLINE=1 makes it fail fast)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors that the attention mask keeps (sentence-transformers pooling)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class Classifier(nn.Module):
    """A transformer encoder, mean pooling and a new linear head: (input_ids, attention_mask) -> logits."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self.from_features(self.features(input_ids, attention_mask))

    def from_features(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from pooled sentence vectors (feature extraction trains on cached ones)."""
        return self.head(self.dropout(pooled))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return the mean-pooled sentence vector."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)


class MultiTaskClassifier(Classifier):
    """One shared encoder and one linear head per task: (input_ids, attention_mask) -> {task: logits}.

    `head` is the first task's head, so code that trains or freezes "the head" treats all heads alike via `heads`.
    """

    def __init__(self, encoder: nn.Module, num_labels: dict[str, int], dropout: float = 0.1):
        first = next(iter(num_labels))
        super().__init__(encoder, num_labels[first], dropout)
        self.heads = nn.ModuleDict({t: self.head if t == first else nn.Linear(encoder.config.hidden_size, n)
                                    for t, n in num_labels.items()})

    def from_features(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task from pooled sentence vectors."""
        shared = self.dropout(pooled)
        return {t: head(shared) for t, head in self.heads.items()}


class ImageClassifier(nn.Module):
    """EfficientNet-Lite's trunk, global average pooling and a new linear head: pixels (N, 3, S, S) -> logits."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float, image_size: int):
        super().__init__()
        self.encoder, self.image_size = encoder, image_size
        self.encoder._fc = nn.Identity()  # ImageNet's 1000-way layer is replaced by `head`
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder._conv_head.out_channels, num_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self.from_features(self.features(pixels))

    def from_features(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from pooled image vectors (feature extraction trains on precomputed ones)."""
        return self.head(self.dropout(pooled))

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled feature map of the last convolution."""
        return self.encoder.extract_features(pixels).mean((2, 3))


class ImageProcessor:
    """The image counterpart of a tokenizer: encoded image bytes -> the backbone's input tensor."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, blobs: list[bytes]) -> torch.Tensor:
        """Pixels for a batch of encoded images (graft.vision.pixels: the same code serving uses)."""
        from graft.vision import pixels

        return torch.from_numpy(pixels(blobs, self.image_size))


def image_weights(candidate: Candidate) -> tuple[str, str]:
    """(architecture, weights file) of an image candidate: a `pkg:` weights package or a local .pth file."""
    source = candidate.source
    if source.startswith("pkg:"):
        module = source.removeprefix("pkg:")
        try:
            pkg = importlib.import_module(module)
        except ImportError:
            raise GraftError(f"backbone source {source!r}: package {module} is not installed") from None
        files = [v for v in vars(pkg).values() if hasattr(v, "get_model_file_path")]
        if not files:
            raise GraftError(f"backbone source {source!r}: {module} exposes no get_model_file_path()")
        path, arch = str(files[0].get_model_file_path()), module.split("_pytorch")[0].replace("_", "-")
    else:
        path, arch = str(Path(source).expanduser()), None
        if not Path(path).is_file():
            raise GraftError(f"backbone source {source!r}: an image backbone is a weights file or pkg:<module>")
    arch = candidate.arch or arch
    if not arch:
        raise GraftError(f"backbone {candidate.name}: give `arch` (e.g. efficientnet-lite0) for {source!r}")
    return arch, path


def efficientnet(arch: str, num_labels: int, image_size: int):
    """An EfficientNet-Lite of `arch` with random weights, for `image_size` inputs.

    Batch-norm momentum 0.9 (PyTorch's 0.1): the package's TF-style 0.99 leaves a freshly trained model's running
    statistics near their initial values, and a from-scratch model scored ~10% in eval mode with it.
    """
    from efficientnet_lite_pytorch import EfficientNet

    try:
        return EfficientNet.from_name(arch, num_classes=num_labels, image_size=image_size, batch_norm_momentum=0.9)
    except (ValueError, AssertionError) as exc:
        raise GraftError(f"image backbone {arch!r}: {str(exc).splitlines()[0]}") from None


def build_image(candidate: Candidate, num_labels: int, init_from: InitFrom, dropout: float, image_size: int):
    """Processor and a fresh image classifier on the candidate's trunk (pretrained weights or random)."""
    arch, path = image_weights(candidate)
    encoder = efficientnet(arch, 1000, image_size)
    if init_from == "pretrained":
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = encoder.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GraftError(f"backbone {candidate.name}: {path} does not fit {arch} "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return ImageProcessor(image_size), ImageClassifier(encoder, num_labels, dropout, image_size)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def load_encoder(candidate: Candidate, init_from: InitFrom = "pretrained"):
    """Load a candidate's tokenizer and encoder; `scratch` builds the same architecture with random weights."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    _quiet_transformers()
    path = resolve_source(candidate.source)
    overrides = {"num_hidden_layers": candidate.num_layers} if candidate.num_layers else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(path, **overrides)
        if candidate.num_layers and candidate.num_layers > _full_depth(path):
            raise GraftError(f"backbone {candidate.name}: num_layers={candidate.num_layers} exceeds the model's "
                             f"{_full_depth(path)} layers")
        if init_from == "scratch":
            encoder = AutoModel.from_config(config, add_pooling_layer=False)
        else:
            encoder = AutoModel.from_pretrained(path, config=config, add_pooling_layer=False, use_safetensors=True)
    except GraftError:
        raise
    except (OSError, ValueError) as exc:
        raise GraftError(f"backbone {candidate.name}: cannot load {candidate.source!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    return tokenizer, encoder


def layer_list(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's stack of transformer blocks, or None when the architecture keeps them elsewhere.

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


def _full_depth(path: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(path).num_hidden_layers)


def build(candidate: Candidate, labels: list[str] | dict[str, list[str]], init_from: InitFrom, dropout: float,
          image_size: int = 128):
    """Tokenizer (or image processor) and a fresh classifier on top of the candidate backbone.

    One head for a label list; one head per task for a {task: labels} mapping of two or more tasks (text).
    """
    if candidate.modality == "image":
        classes = next(iter(labels.values())) if isinstance(labels, dict) else labels
        return build_image(candidate, len(classes), init_from, dropout, image_size)
    tokenizer, encoder = load_encoder(candidate, init_from)
    if isinstance(labels, dict) and len(labels) > 1:
        return tokenizer, MultiTaskClassifier(encoder, {t: len(v) for t, v in labels.items()}, dropout)
    classes = next(iter(labels.values())) if isinstance(labels, dict) else labels
    return tokenizer, Classifier(encoder, len(classes), dropout)


def save(model: Classifier, tokenizer, out: Path, meta: dict) -> None:
    """Write weights (safetensors), encoder config, tokenizer and graft metadata into folder `out`."""
    from safetensors.torch import save_model

    save_model(model, str(out / WEIGHTS))
    if isinstance(model, ImageClassifier):
        write_json(out / MODEL_META, {**meta, "modality": "image", "image_size": model.image_size})
        return
    model.encoder.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_json(out / MODEL_META, meta)


def load(folder: str | Path) -> tuple:
    """Reload a saved classifier: (tokenizer, model in eval mode, metadata)."""
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    _quiet_transformers()
    folder = Path(folder)
    if not (folder / MODEL_META).is_file():
        raise GraftError(f"{folder}: not a graft model folder (no {MODEL_META})")
    meta = read_json(folder / MODEL_META)
    if meta.get("modality") == "image":
        arch = image_weights(Candidate.model_validate(meta["backbone"]))[0]
        model = ImageClassifier(efficientnet(arch, 1000, meta["image_size"]), len(meta["labels"]),
                                meta.get("dropout", 0.1), meta["image_size"])
        load_model(model, str(folder / WEIGHTS))
        return ImageProcessor(meta["image_size"]), model.eval(), meta
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder), add_pooling_layer=False)
    model = MultiTaskClassifier(encoder, {t: len(v) for t, v in meta["tasks"].items()}, meta.get("dropout", 0.1)) \
        if "tasks" in meta else Classifier(encoder, len(meta["labels"]), meta.get("dropout", 0.1))
    load_model(model, str(folder / WEIGHTS))
    return AutoTokenizer.from_pretrained(folder), model.eval(), meta


def batches(texts: list[str], size: int):
    """Consecutive slices of `texts`."""
    for i in range(0, len(texts), size):
        yield texts[i:i + size]


@torch.inference_mode()
def predict_logits(model: Classifier, tokenizer, texts: list, max_length: int, batch_size: int) -> np.ndarray:
    """fp32 logits for `texts` (or encoded images, with an ImageProcessor as `tokenizer`), batch by batch."""
    model.eval()
    device, out = next(model.parameters()).device, []  # the model's device: CPU, or a GPU it was moved to
    for chunk in batches(texts, batch_size):
        if isinstance(tokenizer, ImageProcessor):
            out.append(model(tokenizer(chunk).to(device)).float().cpu().numpy())
            continue
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        out.append(model(enc["input_ids"], enc["attention_mask"]).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.head.out_features), dtype=np.float32)
