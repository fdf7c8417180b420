"""The peer `bench/serve_speed.py` measures graft serve against: a KServe custom model over the same ONNX package.

This is the server a KServe user writes for a text classifier exported to ONNX (`kserve.Model` + `ModelServer`, as
in KServe's custom-predictor guide): it loads the package's tokenizer.json with `tokenizers` (truncation at the
package's max_length, padding to the longest text of a call), opens model.onnx with ONNX Runtime under the same
session options graft serve uses (every graph optimisation, sequential execution, one intra-op thread per core),
and answers V2 infer requests with `logits`, `probabilities` and `label`. It imports nothing from graft: it runs in
its own virtualenv (`.venv-kserve`, requirements-kserve.lock), because kserve 0.21 needs pandas < 3.

    .venv-kserve/bin/python bench/kserve_peer.py --package models/onnx --model_name graft --http_port 8080
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server
from tokenizers import Tokenizer


class OnnxTextClassifier(Model):
    """A V2 model: texts in (BYTES), logits, probabilities and labels out."""

    def __init__(self, name: str, folder: Path):
        super().__init__(name)
        meta = json.loads((folder / "graft_model.json").read_text())
        self.labels = json.loads((folder / "labels.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(meta["max_length"]))
        pad = meta.get("pad_token", "[PAD]")
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad) or 0, pad_token=pad)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = len(os.sched_getaffinity(0))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.ready = True

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        """One ONNX Runtime call for the request's texts."""
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in payload.inputs[0].data]
        enc = self.tokenizer.encode_batch(texts)
        feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
        logits = self.session.run(["logits"], feeds)[0].astype(np.float32)
        z = np.exp(logits - logits.max(1, keepdims=True))
        probs = (z / z.sum(1, keepdims=True)).astype(np.float32)
        labels = [self.labels[int(i)] for i in logits.argmax(1)]
        outputs = [InferOutput("logits", list(logits.shape), "FP32", logits.ravel().tolist()),
                   InferOutput("probabilities", list(probs.shape), "FP32", probs.ravel().tolist()),
                   InferOutput("label", [len(labels)], "BYTES", labels)]
        wanted = {o.name for o in payload.request_outputs or []}  # only the outputs asked for, as graft serve does
        outputs = [o for o in outputs if not wanted or o.name in wanted]
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id or "")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--package", required=True, type=Path, help="a graft export package (models/onnx)")
    args, _ = parser.parse_known_args()
    model = OnnxTextClassifier(args.model_name, args.package)
    ModelServer().start([model])
