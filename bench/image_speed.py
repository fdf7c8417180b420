"""Side-by-side: graft's image fine-tune vs the plain PyTorch loop a user would write, same model, data and recipe.

Both train the EfficientNet-Lite that selection picks (efficientnet-lite1 by default; the image workspace's
`train` recipe: AdamW, lr 1e-3 with 10% warmup then cosine decay, weight decay 0.01 off biases and norms, batch 32,
gradient clipping at 1.0, dropout 0.2 before a new linear head, seed 42) on the prepared training split of
`image/` (1,000 Fashion-MNIST images at 128 px), for the same epochs:
- `graft`: `train.fit` exactly as the `train` stage calls it (its loop time is the epochs without their validation
  passes and checkpoints);
- `reference`: the same classifier (the package's EfficientNet with the same weights, graft's pooling and head)
  trained by a plain loop: fp32, NCHW, torch's own dropout, `torch.optim.AdamW` at its defaults, the pixels
  decoded once up front, shuffled batches, no validation.
Each contender runs --repeats times (default 3), interleaved, each in a fresh process; printed: the loop's images/s
(median, min..max), test accuracy on the 1,000 test images, peak resident memory, and the ratio of medians.
Target: graft >= 2x the reference's images/s within 1 point of accuracy.

Run after `make run-image` (it reads image/data/prepared):
  .venv/bin/python bench/image_speed.py [--epochs 6] [--repeats 3] [--backbone efficientnet-lite1]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = ("graft", "reference")


def setup(args):
    """Config, splits and the candidate of the image workspace."""
    from graft.core import config
    from graft.data.tables import read_splits

    base = config.load(args.params).to_dict()
    base["train"].update(epochs=args.epochs, mode="finetune", early_stopping_patience=None)
    if args.seed is not None:
        base["seed"] = args.seed
    cfg = config.from_dict(base)
    cand = next((c for c in cfg.select.candidates if c.name == args.backbone), None)
    if cand is None:
        raise SystemExit(f"--backbone {args.backbone}: not among {[c.name for c in cfg.select.candidates]}")
    return cfg, read_splits(args.splits), cand


def test_accuracy(net, processor, cfg, test) -> float:
    """Accuracy of a trained classifier on the test split (fp32, eval mode)."""
    from graft.metrics.scores import label_ids
    from graft.modalities import get
    from graft.models.classifier import predict_logits

    logits = predict_logits(net.cpu().eval(), processor, get("image").examples(test), 64)
    return float((logits.argmax(1) == label_ids(test["label"], list(cfg.data.labels))).mean())


def run_graft(cfg, splits, cand, out: Path) -> dict:
    """The graft loop, exactly as the `train` stage calls it."""
    from graft import modalities as gm
    from graft import train

    start = time.perf_counter()
    result = train.fit(splits["train"], splits["validation"], cand, cfg, "pretrained", out)
    seconds = time.perf_counter() - start
    processor, net, _ = gm.load_model(out)
    return {"seconds": seconds, "train_seconds": result["seconds"], "precision": result["precision"],
            "accuracy": test_accuracy(net, processor, cfg, splits["test"])}


def run_reference(cfg, splits, cand) -> dict:
    """The plain loop: fp32, NCHW, torch's dropout and AdamW, the same model, data order seed and recipe."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from graft import modalities as gm
    from graft.metrics.scores import label_ids
    from graft.modalities.image.model import ImageClassifier, ImageProcessor, image_weights
    from graft.train import optim

    t = cfg.train
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    # the package's model as a user would build it (graft's builder also moves symmetric "same" padding into the
    # convolutions): the same weights, then graft's pooling and head, initialized from the same seed
    arch, path = image_weights(cand)
    encoder = EfficientNet.from_name(arch, image_size=t.image_size, batch_norm_momentum=0.9)
    encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net = ImageClassifier(encoder, len(cfg.data.labels), t.dropout, t.image_size)
    processor = ImageProcessor(t.image_size)
    x = processor(gm.get("image").examples(splits["train"]))["pixel_values"]
    y = torch.tensor(label_ids(splits["train"]["label"], list(cfg.data.labels)))
    opt = torch.optim.AdamW(optim.param_groups(net, t), lr=t.learning_rate)
    steps = t.epochs * -(-len(y) // t.batch_size)
    sched = optim.scheduler(opt, t, steps)
    loss_fn = optim.loss_fn(t, y.numpy(), len(cfg.data.labels))
    gen = torch.Generator().manual_seed(cfg.seed)
    net.train()
    loop_start = time.perf_counter()
    for _ in range(t.epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), t.batch_size):
            idx = order[i:i + t.batch_size]
            loss = loss_fn(net(pixel_values=x[idx]), y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    end = time.perf_counter()
    return {"seconds": end - start, "train_seconds": end - loop_start, "precision": "fp32",
            "accuracy": test_accuracy(net, processor, cfg, splits["test"])}


def child(args) -> None:
    """Run one contender in this process and print its result as JSON."""
    cfg, splits, cand = setup(args)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_graft(cfg, splits, cand, Path(tmp) / "model") if args.child == "graft" else \
            run_reference(cfg, splits, cand)
    result["images"] = len(splits["train"]) * args.epochs
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    """Run the contenders interleaved in fresh processes; print medians, spread and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="image/params.yaml")
    ap.add_argument("--splits", default="image/data/prepared")
    ap.add_argument("--backbone", default="efficientnet-lite1")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3, help="runs per contender, interleaved")
    ap.add_argument("--seeds", choices=("same", "per-repeat"), default="same",
                    help="same: every run uses params' seed; per-repeat: repeat r runs seed + r for both contenders, "
                         "so the accuracy medians are over seeds (one seed moves accuracy by about a point)")
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    from graft.core import config

    first_seed = config.load(args.params).seed
    seeds = [first_seed + r for r in range(args.repeats)] if args.seeds == "per-repeat" else [first_seed]
    runs: dict[str, list[dict]] = {n: [] for n in CONTENDERS}
    for r in range(args.repeats):
        for name in CONTENDERS:
            cmd = [sys.executable, __file__, "--params", args.params, "--splits", args.splits, "--backbone",
                   args.backbone, "--epochs", str(args.epochs), "--child", name]
            if args.seeds == "per-repeat":
                cmd += ["--seed", str(seeds[r])]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.split("RESULT ", 1)[1]))
            print(f"[{r * len(CONTENDERS) + CONTENDERS.index(name) + 1}/{args.repeats * len(CONTENDERS)}] {name}: "
                  f"loop {runs[name][-1]['train_seconds']:.1f} s", file=sys.stderr)
    print(f"{args.backbone}, {runs['graft'][0]['images'] // args.epochs} training images x {args.epochs} epochs, "
          f"{args.repeats} interleaved repeats, fresh processes; median (min..max)")
    print(f"{'':10} {'precision':>9} {'loop images/s':>26} {'loop s':>7} {'whole s':>7} {'test acc':>8} {'RSS MB':>7}")
    med = {}
    for name, rs in runs.items():
        rate = [x["images"] / x["train_seconds"] for x in rs]
        med[name] = {"rate": statistics.median(rate), "accuracy": statistics.median(x["accuracy"] for x in rs)}
        loop, whole = (statistics.median(x[k] for x in rs) for k in ("train_seconds", "seconds"))
        print(f"{name:10} {rs[0]['precision']:>9} {med[name]['rate']:9.1f} ({min(rate):6.1f}..{max(rate):6.1f}) "
              f"{loop:7.1f} {whole:7.1f} {med[name]['accuracy']:8.4f} {max(x['peak_rss_mb'] for x in rs):7.0f}")
    by_repeat = "; ".join(name + " " + " ".join(f"{x['accuracy']:.4f}" for x in rs) for name, rs in runs.items())
    print(f"test accuracy by repeat (seed {', '.join(map(str, seeds))}): {by_repeat}")
    g, r = med["graft"], med["reference"]
    print(f"graft vs reference: {g['rate'] / r['rate']:.2f}x the images/s (ratio of medians), accuracy "
          f"{100 * (g['accuracy'] - r['accuracy']):+.1f} pt (target >= 2x within 1 pt)")


if __name__ == "__main__":
    main()
