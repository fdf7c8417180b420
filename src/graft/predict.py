"""Serving from an exported package with ONNX Runtime, numpy and tokenizers only: this module never imports torch.

A package (written by `graft export`) holds `model.onnx` (fp32), `model.int8.onnx` (dynamic int8), `tokenizer.json`,
`labels.json` and `graft_model.json` (backbone, max_length, data md5, metrics). `graft predict` reads texts, one
per line, and writes one JSON line per text: the label and every class's probability.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from graft.errors import GraftError

MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session tuned for serving.

    Every graph optimisation (operator fusion, constant folding), one intra-op thread per available core, and
    sequential execution: a transformer is one chain of operators, so parallel execution only adds scheduling.
    """
    import onnxruntime as ort

    from graft.hardware import available_cores

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or available_cores()
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class Package:
    """A loaded model package: tokenizer, labels, metadata and an ONNX Runtime session."""

    def __init__(self, folder: str | Path, precision: str = "fp32"):
        from tokenizers import Tokenizer

        folder = Path(folder)
        needed = [MODEL_FILES[precision], "tokenizer.json", "labels.json", "graft_model.json"]
        missing = [n for n in needed if not (folder / n).is_file()]
        if missing:
            raise GraftError(f"{folder}: not a graft {precision} model package (missing {', '.join(missing)})")
        self.labels = json.loads((folder / "labels.json").read_text())
        self.meta = json.loads((folder / "graft_model.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(self.meta["max_length"]))
        pad = self.tokenizer.token_to_id(self.meta.get("pad_token", "[PAD]")) or 0
        self.tokenizer.enable_padding(pad_id=pad, pad_token=self.meta.get("pad_token", "[PAD]"))
        self.session = session(folder / MODEL_FILES[precision])

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits for a batch of texts."""
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]

    def predict(self, texts: list[str]) -> list[dict]:
        """Label and class probabilities for each text."""
        z = self.logits(texts)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return [{"label": self.labels[int(row.argmax())],
                 "probabilities": {lab: round(float(v), 6) for lab, v in zip(self.labels, row)}} for row in p]


def batched(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    """Non-empty lines (newline stripped) in lists of `size`."""
    chunk: list[str] = []
    for line in lines:
        text = line.rstrip("\n")
        if text.strip():
            chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
