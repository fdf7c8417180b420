"""Serving from an exported package with ONNX Runtime, numpy and tokenizers only: this module never imports torch.

A package (written by `graft export`) holds `model.onnx` (fp32), `model.int8.onnx`, `labels.json`,
`graft_model.json` (backbone, modality, data md5, metrics) and what the modality's preprocessing needs (text:
`tokenizer.json`). `graft predict` reads inputs, one per line (texts, or image paths), and writes one JSON line
per input: the label and every class's probability.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from graft import modalities
from graft.core.errors import GraftError
from graft.core.hardware import available_cores
from graft.modalities import MODEL_META

MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session tuned for serving.

    Every graph optimisation (operator fusion, constant folding), one intra-op thread per available core, and
    sequential execution: a transformer is one chain of operators, so parallel execution only adds scheduling.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or available_cores()
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class Package:
    """A loaded model package: its modality's serving preprocessing, labels, metadata and an ONNX Runtime session."""

    def __init__(self, folder: str | Path, precision: str = "fp32"):
        folder = Path(folder)
        meta_file = folder / MODEL_META
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        self.modality = modalities.get(meta.get("modality", "text"))
        needed = [MODEL_FILES[precision], "labels.json", MODEL_META, *self.modality.package_files]
        missing = [n for n in needed if not (folder / n).is_file()]
        if not folder.is_dir():
            raise GraftError(f"{folder}: no such package folder (give the ONNX package `graft export` writes, e.g. "
                             f"models/onnx)")
        if missing and (folder / modalities.WEIGHTS).is_file():
            raise GraftError(f"{folder}: a trained PyTorch model folder; predict and serve take the ONNX package "
                             f"`graft export` writes from it (e.g. models/onnx)")
        if missing:
            raise GraftError(f"{folder}: not a graft {precision} model package (missing {', '.join(missing)})")
        self.labels = json.loads((folder / "labels.json").read_text())
        self.meta = meta
        try:
            self.session = session(folder / MODEL_FILES[precision])
        except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            raise GraftError(f"{folder / MODEL_FILES[precision]}: ONNX Runtime cannot load it "
                             f"({str(exc).splitlines()[0]})") from None
        self.feeds = self.modality.serving(folder, meta)

    def logits(self, items: list) -> np.ndarray:
        """Raw logits for a batch of inputs (texts, or encoded image files): one ONNX call per modality part."""
        out = np.empty((len(items), len(self.labels)), dtype=np.float32)
        for rows, feeds in self.feeds(items):
            out[rows] = self.session.run(["logits"], feeds)[0]
        return out

    def predict(self, items: list) -> list[dict]:
        """Label and class probabilities for each input."""
        p = softmax(self.logits(items))
        return [{"label": self.labels[int(row.argmax())],
                 "probabilities": {lab: round(float(v), 6) for lab, v in zip(self.labels, row)}} for row in p]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (float32 in, float32 out)."""
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


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


def predict_lines(pkg: Package, lines: Iterable[str], batch_size: int) -> Iterator[dict]:
    """One output record per non-empty input line: the modality's echo fields, the label, the probabilities."""
    for chunk in batched(lines, batch_size):
        parsed = [pkg.modality.serving_input(line) for line in chunk]
        for (_, echo), row in zip(parsed, pkg.predict([item for item, _ in parsed])):
            yield {**echo, **row}
