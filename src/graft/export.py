"""The `export` stage: ONNX export of the fine-tuned classifier, checked, then proven on the real test split."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graft import model as gm
from graft.artifacts import atomic_dir, write_json
from graft.config import Config
from graft.evaluate import label_ids

INPUTS = ("input_ids", "attention_mask")


def session(path: str | Path):
    """An ONNX Runtime CPU session with full graph optimisation."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = os.cpu_count() or 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_logits(sess, tokenizer, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    """Logits from an ONNX Runtime session, tokenised exactly as for PyTorch."""
    out = []
    for chunk in gm.batches(texts, batch_size):
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        out.append(sess.run(["logits"], {k: enc[k].astype(np.int64) for k in INPUTS})[0])
    return np.concatenate(out)


def to_onnx(model: gm.Classifier, tokenizer, path: Path, opset: int) -> None:
    """Trace the classifier to ONNX with dynamic batch and sequence axes, then run the full checker."""
    import onnx

    sample = tokenizer(["a short sample", "a somewhat longer second sample text"], padding=True,
                       return_tensors="pt")
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}
    # The tracer warns about shape-dependent Python branches in transformers' masking code; the parity run on
    # the real test split (many batch sizes and lengths) is what proves the dynamic axes hold.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (sample["input_ids"], sample["attention_mask"]), str(path),
                          input_names=list(INPUTS), output_names=["logits"], dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    onnx.checker.check_model(str(path), full_check=True)


def export(model_dir: str | Path, test: pd.DataFrame, cfg: Config, out: str | Path) -> dict:
    """Write a self-contained package (model.onnx, tokenizer, labels) to `out`; return parity on `test`."""
    tokenizer, model, meta = gm.load(model_dir)
    texts = test["text"].astype(str).tolist()
    y = label_ids(test["label"], meta["labels"])
    with atomic_dir(out) as tmp:
        to_onnx(model, tokenizer, tmp / "model.onnx", cfg.export.opset)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "labels.json", meta["labels"])
        write_json(tmp / gm.MODEL_META, {**meta, "opset": cfg.export.opset, "format": "onnx"})
        ref = gm.predict_logits(model, tokenizer, texts, meta["max_length"], cfg.export.batch_size)
        got = onnx_logits(session(tmp / "model.onnx"), tokenizer, texts, meta["max_length"], cfg.export.batch_size)
        size_mb = (tmp / "model.onnx").stat().st_size / 2**20
    return {
        "max_abs_diff": float(np.abs(ref - got).max()),
        "agreement": round(float((ref.argmax(1) == got.argmax(1)).mean()), 6),
        "onnx_accuracy": round(float((got.argmax(1) == y).mean()), 4),
        "torch_accuracy": round(float((ref.argmax(1) == y).mean()), 4),
        "rows": len(texts),
        "opset": cfg.export.opset,
        "size_mb": round(size_mb, 2),
    }


def run(model_dir: str | Path, split_dir: str | Path, cfg: Config, out: str | Path, metrics: str | Path) -> dict:
    """The stage as the orchestrators call it: export, prove parity on the test split, write the metrics JSON."""
    from graft.data import read_splits

    result = export(model_dir, read_splits(split_dir)["test"], cfg, out)
    write_json(metrics, result)
    return result
