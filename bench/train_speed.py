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
setting here). graft uses length-bucketed dynamic padding and, where the CPU has native bf16, a bf16 copy of the model
with fp32 master weights (graft.train.precision).
`graft-fe` is graft's `feature_extraction` mode (frozen backbone, features from the content-addressed cache that
selection fills, head lr 1e-3): its head-training time against the full fine-tune's (target < 10%).
Every child imports transformers (AutoModel, Trainer) before any clock starts, so neither side's whole job
includes importing libraries. Then each model is scored on the test split.
The parent also measures the machine's matmul peak (fp32 and bf16,
2048^3) and reports graft's effective GFLOP/s: 6 x non-embedding parameters x real (unpadded) tokens, plus the
attention score and value products, over the training loop's time.
Each contender runs --repeats times (default 3), interleaved (A B C ... A B C ...), each run a fresh process; the
table prints median (min..max) and max/min per contender, the comparisons are ratios of medians, and the CPU
time stolen by other guests during the runs is printed, and so is the machine's own speed just before each run (a
1024^3 bf16 matmul): on a shared machine it moves, and every figure with it. Each run's minor page faults are
printed too: on a VM that hands freed memory back to its host (virtio-balloon free page reporting), every page a
process touches for the first time faults in from the host, at ~10 us a page on the Intel machine of the README's
figures, so a contender's memory traffic is part of its time. As each run ends, a line says what went on around it:
graft's epoch times, the run's page faults, how often the kernel preempted it, the machine's speed just before and
after it, and the share of the CPU that other processes of this machine and other guests took meanwhile. A slow
run with neither share up and every epoch slower was slowed by something the guest cannot see (a neighbour on
the host using the same physical core or its memory bandwidth); one whose first epoch alone is slower, by fresh
memory.
Targets: graft's loop >= 1.5x trainer-bf16's and its whole job >= 1.4x trainer-bf16-duties', within 0.5 pt of
accuracy; graft's spread <= 1.15; >= 50% of the bf16 matmul peak; peak RSS <= 2 GB.

Run after `make run` (it reads data/prepared):
  .venv/bin/python bench/train_speed.py [--epochs 4] [--repeats 3] [--only graft,trainer-bf16]
"""

import argparse
import json
import os
import resource
import statistics
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
            "epochs": [h["seconds"] for h in result["history"]],
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
    # every contender starts its clock with the same libraries imported (Trainer's run imports its own up front)
    from transformers import AutoModel, Trainer  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if args.child.startswith("graft"):
            result = run_graft(cfg, splits, cand, out, "feature_extraction" if args.child == "graft-fe" else "finetune")
        else:
            result = run_trainer(cfg, splits, cand, out, bf16="bf16" in args.child, duties="duties" in args.child)
        result["faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults  # scoring included
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["preempted"] = usage.ru_nivcsw  # times the kernel took a core from this process for another task
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
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


def cpu_ticks() -> tuple[int, int, int]:
    """(all, steal, busy) CPU ticks from /proc/stat.

    Steal is the time other guests took on a shared machine; busy is what this machine's own processes ran (all
    but idle, iowait and steal).
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return sum(fields), steal, sum(fields) - fields[3] - fields[4] - steal


def run_child(cmd: list[str]) -> tuple[dict, dict]:
    """Run one contender's process; its result, and what else the machine did meanwhile.

    `others`: the share of the machine's CPU time that went to other processes in this machine (its busy ticks less
    the child's own CPU time) and to other guests (steal) while the child ran. When a run is slow and neither
    moved, the cause is not CPU time taken from it (memory, frequency, the host).
    """
    tick = os.sysconf("SC_CLK_TCK")
    before, own = cpu_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after, done = cpu_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
    child_ticks = (done.ru_utime + done.ru_stime - own.ru_utime - own.ru_stime) * tick
    total = max(after[0] - before[0], 1)
    others = {"other_processes": max(after[2] - before[2] - child_ticks, 0) / total,
              "stolen": (after[1] - before[1]) / total}
    return json.loads(out.split("RESULT ", 1)[1]), others


def spread(values: list[float]) -> str:
    """The median, (min..max) and max/min of the values."""
    return f"{statistics.median(values):7.1f} ({min(values):5.1f}..{max(values):5.1f}) x{max(values) / min(values):.2f}"


def main() -> None:
    """Run every contender in its own process, the repeats interleaved, and print medians, spread and ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--splits", default="data/prepared")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="runs per contender, interleaved (A B C A B C ...)")
    ap.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders (default: all)")
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        ap.error(f"--only: unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    peaks = {d: matmul_peak(d) for d in ("float32", "bfloat16")}
    results: dict[str, list[dict]] = {n: [] for n in names}
    ticks = cpu_ticks()
    total = args.repeats * len(names)
    machine_after = matmul_peak("bfloat16", 1024, 10)  # how fast the machine is right now, before the first run
    for r in range(args.repeats):
        for name in names:
            cmd = [sys.executable, __file__, "--params", args.params, "--splits", args.splits, "--epochs",
                   str(args.epochs), "--child", name]
            machine = machine_after  # measured as the run before ended: nothing runs in between
            result, others = run_child(cmd)
            machine_after = matmul_peak("bfloat16", 1024, 10)
            results[name].append({**result, "machine_gflops": machine})
            done = r * len(names) + names.index(name) + 1
            epochs = " ".join(f"{e:.1f}" for e in result.get("epochs", []))
            print(f"[{done}/{total}] {name}: loop {result['train_seconds']:.1f} s"
                  f"{f' (epochs {epochs})' if epochs else ''}, {result['faults'] / 1000:.0f}k faults, preempted "
                  f"{result['preempted']} times; machine {machine:.0f} GFLOP/s before, {machine_after:.0f} after; "
                  f"meanwhile other processes {others['other_processes']:.1%} and other guests "
                  f"{others['stolen']:.1%} of the CPU",
                  file=sys.stderr)
    after = cpu_ticks()
    stolen = (after[1] - ticks[1]) / max(after[0] - ticks[0], 1)
    peak_after = matmul_peak("bfloat16")
    from graft.data.tables import read_splits

    n = len(read_splits(args.splits)["train"]) * args.epochs
    fields = ("train_seconds", "seconds", "accuracy", "peak_rss_mb", "faults")
    med = {k: {f: statistics.median(x[f] for x in v) for f in fields} for k, v in results.items()}
    print(f"matmul peak here: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s "
          f"(bf16 {peak_after:.0f} after the runs); CPU time stolen by other guests during the runs: {stolen:.1%}")
    print(f"{args.repeats} interleaved repeats, fresh processes; median (min..max) x max/min")
    print(f"{'':20} {'precision':>9} {'loop s':>30} {'loop ex/s':>9} {'whole s':>30} {'test acc':>8} {'RSS MB':>6} "
          f"{'faults':>7} {'machine':>11}")
    for name, rs in results.items():
        m = med[name]
        accs = sorted({round(x["accuracy"], 4) for x in rs})
        print(f"{name:20} {rs[0]['precision']:>9} {spread([x['train_seconds'] for x in rs]):>30} "
              f"{n / m['train_seconds']:9.1f} {spread([x['seconds'] for x in rs]):>30} {m['accuracy']:8.4f}"
              f"{'' if len(accs) == 1 else '*'} {max(x['peak_rss_mb'] for x in rs):6.0f} "
              f"{m['faults'] / 1000:6.0f}k "
              f"{min(x['machine_gflops'] for x in rs):5.0f}..{max(x['machine_gflops'] for x in rs):<5.0f}")
    print("(loop: the training epochs alone; whole: from building the model to the trained model; graft's whole job\n"
          " and the -duties Trainers' include a validation pass and a checkpoint every epoch and keep the best epoch;\n"
          " * : test accuracy differed between repeats; faults: median minor page faults from building the model\n"
          " to the end of scoring, 4 KB each, every one a page the process touched for the first time; machine: the\n"
          " bf16 GFLOP/s of a 1024^3 matmul measured just before each of its runs, min..max: when it moves, the\n"
          " machine's speed moved, not the contender's)")
    if "graft" not in med:
        return
    g = med["graft"]
    for what, key, pairs, target in (("training loop", "train_seconds", ("trainer-fp32", "trainer-bf16"), 1.5),
                                     ("whole job, same duties", "seconds",
                                      ("trainer-fp32-duties", "trainer-bf16-duties"), 1.4)):
        for other in (p for p in pairs if p in med):
            r = med[other]
            goal = f"target >= {target}x within 0.5 pt" if "bf16" in other else "no target"
            print(f"{what}: graft vs {other}: {r[key] / g[key]:.2f}x the speed (ratio of medians), accuracy "
                  f"{100 * (g['accuracy'] - r['accuracy']):+.1f} pt ({goal})")
    if "graft-fe" in med:
        fe = med["graft-fe"]
        print(f"feature_extraction: head trained in {fe['train_seconds']:.2f} s = "
              f"{fe['train_seconds'] / g['train_seconds']:.1%} of the fine-tune's {g['train_seconds']:.1f} s "
              f"(target < 10%); whole call {fe['seconds']:.1f} s, test accuracy {fe['accuracy']:.4f}")
    loops = [x["train_seconds"] for x in results["graft"]]
    epochs = [statistics.median(e) for e in zip(*(x["epochs"] for x in results["graft"]))]
    print("graft's epochs, median seconds over the repeats: " + " ".join(f"{e:.2f}" for e in epochs) +
          " (the first also faults in the working set, most of its extra time, and builds oneDNN kernels for each new\n"
          " batch shape)")
    gflops = training_flops(args) / g["train_seconds"] / 1e9
    print(f"graft: spread max/min {max(loops) / min(loops):.2f} (target <= 1.15); effective {gflops:.0f} GFLOP/s in "
          f"training = {gflops / peaks['bfloat16']:.0%} of the bf16 matmul peak (target >= 50%); peak RSS "
          f"{max(x['peak_rss_mb'] for x in results['graft']):.0f} MB (target <= 2000)")


if __name__ == "__main__":
    main()
