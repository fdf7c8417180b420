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
    """A loaded model package: tokenizer (text), labels, metadata and an ONNX Runtime session.

    Image packages take encoded image bytes; their pixels are prepared by graft.vision, as in training.
    """

    def __init__(self, folder: str | Path, precision: str = "fp32"):
        folder = Path(folder)
        needed = [MODEL_FILES[precision], "labels.json", "graft_model.json"]
        meta_file = folder / "graft_model.json"
        self.image = meta_file.is_file() and json.loads(meta_file.read_text()).get("modality") == "image"
        missing = [n for n in needed + ([] if self.image else ["tokenizer.json"]) if not (folder / n).is_file()]
        if missing:
            raise GraftError(f"{folder}: not a graft {precision} model package (missing {', '.join(missing)})")
        self.labels = json.loads((folder / "labels.json").read_text())
        self.meta = json.loads(meta_file.read_text())
        self.session = session(folder / MODEL_FILES[precision])
        if not self.image:
            self._text_tokenizer(folder)

    def _text_tokenizer(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(self.meta["max_length"]))
        pad = self.tokenizer.token_to_id(self.meta.get("pad_token", "[PAD]")) or 0
        self.tokenizer.enable_padding(pad_id=pad, pad_token=self.meta.get("pad_token", "[PAD]"))

    def logits(self, texts: list) -> np.ndarray:
        """Raw logits for a batch of texts (or of encoded images, for an image package)."""
        if self.image:
            from graft.vision import pixels

            return self.session.run(["logits"], {"pixel_values": pixels(texts, int(self.meta["image_size"]))})[0]
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]

    def predict(self, texts: list) -> list[dict]:
        """Label and class probabilities for each text (or encoded image)."""
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
