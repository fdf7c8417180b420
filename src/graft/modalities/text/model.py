"""Text on the model side: a transformer encoder (MiniLM), mean pooling, and how texts become its inputs.

Weights load only from safetensors and `trust_remote_code` is never enabled. The processor wraps the backbone's
tokenizer so that `model(**processor(texts))` holds, as it does for images.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from graft.core.config import Candidate
from graft.core.errors import GraftError
from graft.models import features
from graft.models.classifier import Classifier

INPUTS = ("input_ids", "attention_mask")


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


class TextClassifier(Classifier):
    """A transformer encoder, mean pooling and the head(s): (input_ids, attention_mask) -> logits."""

    def __init__(self, encoder: nn.Module, num_labels: int | dict[str, int], dropout: float = 0.1):
        super().__init__(encoder, encoder.config.hidden_size, num_labels, dropout)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return the mean-pooled sentence vector."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)


class TextProcessor:
    """The backbone's tokenizer at a fixed token limit: texts -> {input_ids, attention_mask}, padded per batch."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """The model's inputs for a batch of texts."""
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {k: enc[k] for k in INPUTS}

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, unpadded."""
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]


class TokenIds:
    """A split as token ids, padded per batch to its longest text (to a multiple of 8 on CUDA)."""

    def __init__(self, ids: list[list[int]], pad_id: int):
        self.ids, self.pad_id = ids, pad_id

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        """Tokens per example."""
        return [len(x) for x in self.ids]

    def batch(self, idx: list[int], device: torch.device) -> dict[str, torch.Tensor]:
        """Token ids and attention mask for `idx`."""
        width = max(len(self.ids[i]) for i in idx)
        if device.type == "cuda":  # cuDNN attention builds a plan per shape: 12 s in a first epoch with one
            width = -(-width // 8) * 8  # shape per length, on an H200; multiples of 8 leave a few shapes
        ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :len(self.ids[i])] = torch.tensor(self.ids[i])
            mask[row, :len(self.ids[i])] = 1
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def _full_depth(path: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(path).num_hidden_layers)


def load_encoder(candidate: Candidate, init_from: str = "pretrained"):
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


def reload(folder: Path, meta: dict) -> tuple[TextProcessor, TextClassifier]:
    """The processor and (randomly initialized) classifier of a saved text model."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    _quiet_transformers()
    raw = json.loads((folder / "config.json").read_text())
    config = (AutoConfig.for_model(**raw["encoder"]) if raw.get("model_type") == HF_MODEL_TYPE
              else AutoConfig.from_pretrained(folder))  # folders saved before graft wrote its own config
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    heads = {t: len(v) for t, v in meta["tasks"].items()} if "tasks" in meta else len(meta["labels"])
    # config=: the tokenizer must not read config.json, whose auto_map would make transformers ask about remote code
    return (TextProcessor(AutoTokenizer.from_pretrained(folder, config=config), meta["max_length"]),
            TextClassifier(encoder, heads, meta.get("dropout", 0.1)))


HF_MODEL_TYPE = "graft_text"
HF_CODE = "modeling_graft.py"


def save_hf(model: TextClassifier, processor: TextProcessor, out: Path, meta: dict) -> None:
    """config.json (model_type graft_text, the encoder's config inside), modeling_graft.py and the tokenizer.

    `AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=True)` then builds the same encoder,
    mean pooling and head as graft and gives graft's logits; without trust_remote_code transformers refuses the
    folder instead of loading a BERT classifier with a random head.
    """
    import transformers

    from graft.core.artifacts import write_json

    labels = next(iter(meta["tasks"].values())) if "tasks" in meta else meta["labels"]
    write_json(out / "config.json", {
        "model_type": HF_MODEL_TYPE, "architectures": ["GraftTextClassifier"],
        "auto_map": {"AutoConfig": "modeling_graft.GraftTextConfig",
                     "AutoModelForSequenceClassification": "modeling_graft.GraftTextClassifier"},
        "encoder": model.encoder.config.to_dict(), "pooling": "mean", "classifier_dropout": model.dropout.p,
        "id2label": {str(i): lab for i, lab in enumerate(labels)}, "label2id": {lab: i for i, lab in enumerate(labels)},
        "transformers_version": transformers.__version__})
    shutil.copyfile(Path(__file__).with_name("hf_modeling.py"), out / HF_CODE)
    processor.tokenizer.save_pretrained(out)


def length_order(processor: TextProcessor, texts: list[str]) -> list[int]:
    """Positions of `texts` sorted by token count, so each batch pads to about its own length."""
    lengths = [len(ids) for ids in processor.ids(texts)]
    return sorted(range(len(texts)), key=lengths.__getitem__)


def encode_layers(processor: TextProcessor, encoder, texts: list[str], layers: list[int], hw,
                  batch_size: int = 32) -> dict[int, np.ndarray]:
    """Mean-pooled hidden states after each of `layers` (0 = embeddings), from one pass in length-sorted batches."""
    from graft.models.classifier import batches

    order = length_order(processor, texts)
    out: dict[int, list[np.ndarray]] = {k: [] for k in layers}
    encoder.eval()
    with torch.inference_mode():
        for chunk in batches(order, batch_size):
            enc = {k: v.to(hw.device) for k, v in processor([texts[i] for i in chunk]).items()}
            with hw.autocast():
                hidden = encoder(**enc, output_hidden_states=True).hidden_states
            for k in layers:
                out[k].append(mean_pool(hidden[k].float(), enc["attention_mask"]).cpu().numpy())
    inverse = np.argsort(order)
    return {k: np.concatenate(parts)[inverse] if parts else np.zeros((0, encoder.config.hidden_size), np.float32)
            for k, parts in out.items()}


def cached_features(cache: features.FeatureCache, keys: dict[int, str], processor: TextProcessor, encoder,
                    texts: list[str], hw) -> tuple[dict[int, np.ndarray], int]:
    """Pooled features at each layer of `keys` (layer -> backbone key), through the content-addressed cache."""
    return features.cached(cache, keys, texts, lambda todo, layers: encode_layers(processor, encoder, todo,
                                                                                   layers, hw))


def frozen(model: TextClassifier, processor: TextProcessor, texts: list[str], candidate: Candidate,
           max_length: int, feature_cache: str | None, pretrained: bool, hw) -> tuple[torch.Tensor, int]:
    """Feature extraction's inputs: the frozen backbone's pooled vectors, from selection's cache when pretrained."""
    depth = model.encoder.config.num_hidden_layers
    digest = features.digest(resolve_source(candidate.source), model.encoder.config)
    # a random backbone's features are this run's alone: computed, never cached
    key = features.backbone_key(digest, depth, max_length, hw.precision) if pretrained else "scratch"
    cache = features.FeatureCache(feature_cache if pretrained else None)
    vectors, computed = cached_features(cache, {depth: key}, processor, model.encoder, texts, hw)
    return torch.from_numpy(vectors[depth]), computed
