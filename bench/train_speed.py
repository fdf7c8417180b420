"""Side-by-side: graft's training loop vs transformers.Trainer on the same data, model, epochs, seed and recipe.

Each contender trains the full MiniLM-L6 classifier (graft.model.Classifier: encoder, mean pooling, linear head)
on the prepared default training split, in its own fresh process (so peak resident memory is its own), with
AdamW, lr 5e-5, warmup 10% then linear decay, weight decay 0.01, batch 32, gradient clipping at 1.0, seed 42.
Two comparisons, each measured the same way for both sides:
- the training loop alone (samples/s): graft's epochs without their validation passes and checkpoints, against
  `Trainer.train()` with no evaluation and no saving;
- the whole job, from building the model to a validated model of the best epoch: graft's `train.fit` as the
  `train` stage runs it (a validation pass, a resumable checkpoint and best-epoch bookkeeping every epoch), against
  Trainer doing the same duties (`eval_strategy` and `save_strategy` "epoch", `load_best_model_at_end` on
  validation macro-F1).
Trainer runs with DataCollatorWithPadding and length-grouped batches (`train_sampling_strategy="group_by_length"`,
formerly `group_by_length=True`), at its CPU default (fp32) and with bf16=True (CPU autocast, its strongest
setting here). graft uses length-bucketed dynamic padding and bf16 autocast where the CPU has it natively.
`graft-fe` is graft's `feature_extraction` mode (frozen backbone, features from the content-addressed cache that
selection fills, head lr 1e-3): its head-training time against the full fine-tune's (target < 10%).
Then each model is scored on the test split. The parent also measures the machine's matmul peak (fp32 and bf16,
2048^3) and reports graft's effective GFLOP/s: 6 x non-embedding parameters x real (unpadded) tokens, plus the
attention score and value products, over the training loop's time.
Targets: graft >= 2x Trainer at equal accuracy (within 0.5 pt); graft peak RSS <= 3 GB.

Run after `make run` (it reads data/prepared): .venv/bin/python bench/train_speed.py [--epochs 4]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = ("graft", "trainer-fp32", "trainer-bf16", "trainer-fp32-duties", "trainer-bf16-duties", "graft-fe")


def setup(args):
    """Config, splits and the full-depth candidate."""
    from graft.core import config
    from graft.data.tables import read_splits

    base = config.load(args.params).to_dict()
    base["train"].update(epochs=args.epochs, mode="finetune", early_stopping_patience=None)
    cfg = config.from_dict(base)
    cand = next(c for c in cfg.select.candidates if c.num_layers is None)
    return cfg, read_splits(args.splits), cand


def test_accuracy(net, tok, cfg, test) -> float:
    """Accuracy of a trained classifier on the test split."""
    from graft.metrics.scores import label_ids
    from graft.models.classifier import predict_logits

    logits = predict_logits(net.cpu().eval(), tok, test["text"].tolist(), 64)
    return float((logits.argmax(1) == label_ids(test["label"], list(cfg.data.labels))).mean())


def run_graft(cfg, splits, cand, out: Path, mode: str = "finetune") -> dict:
    """The graft loop, exactly as the `train` stage calls it."""
    from graft import modalities as gm
    from graft import train
    from graft.core import config

    if mode == "feature_extraction":
        raw = cfg.to_dict()
        raw["train"].update(mode=mode, head_learning_rate=1e-3)
        cfg = config.from_dict(raw)
    start = time.perf_counter()
    result = train.fit(splits["train"], splits["validation"], cand, cfg, "pretrained", out)
    seconds = time.perf_counter() - start
    tok, net, _ = gm.load_model(out)
    return {"seconds": seconds, "train_seconds": result["seconds"], "precision": result["precision"],
            "accuracy": test_accuracy(net, tok, cfg, splits["test"])}


def run_trainer(cfg, splits, cand, out: Path, bf16: bool, duties: bool) -> dict:
    """transformers.Trainer on the same classifier, data and recipe; `duties`: graft's per-epoch duties too."""
    import torch
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from graft import modalities as gm
    from graft.metrics.scores import label_ids

    t = cfg.train
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    proc, net = gm.get("text").build(cand, {"label": len(cfg.data.labels)}, "pretrained", cfg)
    tok = proc.tokenizer

    class WithLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask, labels=None):
            logits = self.net(input_ids=input_ids, attention_mask=attention_mask)
            return {"loss": torch.nn.functional.cross_entropy(logits.float(), labels), "logits": logits}

    def rows(split):
        enc = tok(splits[split]["text"].tolist(), truncation=True, max_length=t.max_length)
        y = label_ids(splits[split]["label"], list(cfg.data.labels))
        return [{"input_ids": i, "attention_mask": m, "labels": int(lab)}
                for i, m, lab in zip(enc["input_ids"], enc["attention_mask"], y)]

    train_rows = rows("train")
    steps = t.epochs * -(-len(train_rows) // t.batch_size)
    each_epoch = "epoch" if duties else "no"
    targs = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=t.batch_size, num_train_epochs=t.epochs,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, warmup_steps=int(t.warmup_ratio * steps),
        lr_scheduler_type="linear", max_grad_norm=1.0, seed=cfg.seed, train_sampling_strategy="group_by_length",
        use_cpu=True, bf16=bf16, report_to=[], eval_strategy=each_epoch, save_strategy=each_epoch,
        load_best_model_at_end=duties, metric_for_best_model="macro_f1", per_device_eval_batch_size=64,
        logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=WithLoss(), args=targs, train_dataset=train_rows,
                      data_collator=DataCollatorWithPadding(tok), eval_dataset=rows("validation") if duties else None,
                      compute_metrics=lambda p: {"macro_f1": f1_score(p.label_ids, p.predictions.argmax(1),
                                                                      average="macro")})
    loop_start = time.perf_counter()
    trainer.train()
    end = time.perf_counter()
    return {"seconds": end - start, "train_seconds": end - loop_start, "precision": "bf16" if bf16 else "fp32",
            "accuracy": test_accuracy(net, proc, cfg, splits["test"])}


def child(args) -> None:
    """Run one contender in this process and print its result as JSON."""
    cfg, splits, cand = setup(args)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        if args.child.startswith("graft"):
            result = run_graft(cfg, splits, cand, out, "feature_extraction" if args.child == "graft-fe" else "finetune")
        else:
            result = run_trainer(cfg, splits, cand, out, bf16="bf16" in args.child, duties="duties" in args.child)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def matmul_peak(dtype_name: str, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n matmul in the given dtype."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def training_flops(args) -> float:
    """Useful training FLOPs: 6 x non-embedding params x real tokens, plus attention products (fwd + bwd)."""
    from graft.modalities.text.model import load_encoder

    cfg, splits, cand = setup(args)
    tok, enc = load_encoder(cand)
    c = enc.config
    params = sum(p.numel() for n, p in enc.named_parameters() if "embeddings" not in n)
    lengths = [len(i) for i in tok(splits["train"]["text"].tolist(), truncation=True,
                                   max_length=cfg.train.max_length)["input_ids"]]
    dense = 6 * params * sum(lengths)
    attention = 3 * 4 * c.num_hidden_layers * c.hidden_size * sum(n * n for n in lengths)
    return (dense + attention) * cfg.train.epochs


def main() -> None:
    """Run every contender in its own process and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--splits", default="data/prepared")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    peaks = {d: matmul_peak(d) for d in ("float32", "bfloat16")}
    results = {}
    for name in CONTENDERS:
        cmd = [sys.executable, __file__, "--params", args.params, "--splits", args.splits, "--epochs",
               str(args.epochs), "--child", name]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(out.split("RESULT ", 1)[1])
    from graft.data.tables import read_splits

    n = len(read_splits(args.splits)["train"]) * args.epochs
    flops = training_flops(args)
    print(f"matmul peak here: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s")
    print(f"{'':20} {'precision':>9} {'loop s':>7} {'loop ex/s':>9} {'whole s':>7} {'test acc':>8} {'peak RSS MB':>11}")
    for name, r in results.items():
        print(f"{name:20} {r['precision']:>9} {r['train_seconds']:7.1f} {n / r['train_seconds']:9.1f} "
              f"{r['seconds']:7.1f} {r['accuracy']:8.4f} {r['peak_rss_mb']:11.0f}")
    print("(loop: the training epochs alone; whole: from building the model to the trained model; graft's whole job\n"
          " and the -duties Trainers' include a validation pass and a checkpoint every epoch and keep the best epoch)")
    g = results["graft"]
    for what, key, pairs in (("training loop", "train_seconds", ("trainer-fp32", "trainer-bf16")),
                             ("whole job, same duties", "seconds", ("trainer-fp32-duties", "trainer-bf16-duties"))):
        for other in pairs:
            r = results[other]
            print(f"{what}: graft vs {other}: {r[key] / g[key]:.2f}x the speed, accuracy "
                  f"{100 * (g['accuracy'] - r['accuracy']):+.1f} pt (target >= 2x within 0.5 pt)")
    fe = results["graft-fe"]
    share = fe["train_seconds"] / g["train_seconds"]
    print(f"feature_extraction: head trained in {fe['train_seconds']:.2f} s = {share:.1%} of the fine-tune's "
          f"{g['train_seconds']:.1f} s (target < 10%); whole call {fe['seconds']:.1f} s, test accuracy "
          f"{fe['accuracy']:.4f}")
    gflops = flops / g["train_seconds"] / 1e9
    print(f"graft effective {gflops:.0f} GFLOP/s in training = {gflops / peaks['bfloat16']:.0%} of the bf16 matmul "
          f"peak; peak RSS {g['peak_rss_mb']:.0f} MB (target <= 3000)")


if __name__ == "__main__":
    main()
