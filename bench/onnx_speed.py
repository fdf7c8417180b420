"""Side-by-side: PyTorch fp32 eager vs ONNX Runtime fp32 vs ONNX Runtime int8, on the real test tweets.

For each: p50 / p95 latency of one text at a time (batch 1, 200 texts), throughput at batch 32 over the whole test
split, test accuracy, and the file size. Then the peak resident memory of `graft predict --int8` (a separate
process that never imports torch) serving the whole test split. All in one run, on this machine.
Targets: int8 >= 3x PyTorch at batch 1, accuracy within 0.5 pt, file <= 1/3 of fp32, predict peak RSS <= 500 MB.

Run after `make run` (it reads models/finetune, models/onnx and data/prepared):
    .venv/bin/python bench/onnx_speed.py
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, chunks) -> list[float]:
    """Wall time (ms) of fn on each chunk, after one warm-up call."""
    fn(chunks[0])
    out = []
    for chunk in chunks:
        start = time.perf_counter()
        fn(chunk)
        out.append(1000 * (time.perf_counter() - start))
    return out


def main() -> None:
    """Measure the three runtimes and graft predict, print the table and the ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/finetune")
    ap.add_argument("--package", default="models/onnx")
    ap.add_argument("--splits", default="data/prepared")
    args = ap.parse_args()

    from graft import modalities as gm
    from graft.data.tables import read_splits
    from graft.models.classifier import predict_logits
    from graft.serve.predict import MODEL_FILES, Package

    test = read_splits(args.splits)["test"]
    texts = test["text"].astype(str).tolist()
    tokenizer, net, meta = gm.load_model(args.model)
    y = np.array([meta["labels"].index(v) for v in test["label"].astype(str)])

    # The child reports its own peak (VmHWM of its address space): getrusage's maxrss would also count the parent's
    # memory, which a forked child inherits until it execs.
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text("\n".join(texts) + "\n")
        src = str(Path(tmp) / "in.txt")
        code = ("import sys, re; from graft.cli import main; "
                f"rc = main(['predict', '--model', {args.package!r}, '--int8', '--input', {src!r}]);"
                " print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), file=sys.stderr);"
                " sys.exit(rc)")
        res = subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    predict_rss = int(res.stderr.strip().splitlines()[-1]) / 1024

    def torch_fn(chunk):
        return predict_logits(net, tokenizer, chunk, len(chunk))

    runtimes = {"pytorch fp32": torch_fn, **{f"onnx {k}": Package(args.package, k).logits for k in MODEL_FILES}}
    sizes = {"pytorch fp32": (Path(args.model) / gm.WEIGHTS).stat().st_size / 2**20,
             **{f"onnx {k}": (Path(args.package) / f).stat().st_size / 2**20 for k, f in MODEL_FILES.items()}}
    rows = {}
    for name, fn in runtimes.items():
        b1 = timed(fn, [[t] for t in texts[:200]])
        batches = [texts[i:i + 32] for i in range(0, len(texts), 32)]
        start = time.perf_counter()
        logits = np.concatenate([fn(b) for b in batches])
        seconds = time.perf_counter() - start
        rows[name] = {"p50": np.percentile(b1, 50), "p95": np.percentile(b1, 95), "tput": len(texts) / seconds,
                      "acc": float((logits.argmax(1) == y).mean()), "mb": sizes[name]}
    print(f"{len(texts)} test texts, max_length {meta['max_length']}, backbone {meta['backbone']['name']}")
    print(f"{'':14} {'b1 p50 ms':>9} {'b1 p95 ms':>9} {'b32 texts/s':>11} {'accuracy':>8} {'size MB':>8}")
    for name, r in rows.items():
        print(f"{name:14} {r['p50']:9.2f} {r['p95']:9.2f} {r['tput']:11.0f} {r['acc']:8.4f} {r['mb']:8.1f}")
    t, f, i = rows["pytorch fp32"], rows["onnx fp32"], rows["onnx int8"]
    print(f"batch 1 p50 speed-up over PyTorch: onnx fp32 {t['p50'] / f['p50']:.2f}x, onnx int8 "
          f"{t['p50'] / i['p50']:.2f}x (target int8 >= 3x)")
    print(f"batch 32 throughput over PyTorch: onnx fp32 {f['tput'] / t['tput']:.2f}x, onnx int8 "
          f"{i['tput'] / t['tput']:.2f}x")
    print(f"int8 accuracy {100 * (i['acc'] - f['acc']):+.1f} pt vs onnx fp32 (target within 0.5 pt); int8 file "
          f"{i['mb'] / f['mb']:.2f} of fp32 (target <= 0.33)")
    print(f"graft predict --int8 over the test split: peak RSS {predict_rss:.0f} MB (target <= 500 MB)")


if __name__ == "__main__":
    main()
