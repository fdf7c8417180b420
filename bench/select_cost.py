"""Side-by-side: backbone selection over every candidate vs fine-tuning one candidate, on the prepared default data.

Selection is only worth running if it costs a small fraction of what it saves. This runs, in one process and on the
same data and config: `select.rank` over all candidates with an empty feature cache (cold: the forward passes, the
latency measurements and both scores all count), the same again with the cache warm, and `train.fit` of the selected
backbone and of the full-depth backbone, each the best of --repeats runs. Imports and first-call setup (model
classes, bf16 kernels, scikit-learn, the LogME solver) happen first, so neither side pays them.
Target: cold selection <= 10% of fine-tuning one candidate, the full-depth backbone (the model one would fine-tune
without selection); the ratio against the selected, smaller backbone is printed too.

Run after `make run` (it reads data/prepared): .venv/bin/python bench/select_cost.py
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from graft import train
from graft.core import config
from graft.core.hardware import resolve
from graft.data.tables import read_splits
from graft.metrics.logme import logme
from graft.modalities.text.model import load_encoder
from graft.select import ranking as select


def main() -> None:
    """Time selection (cold and warm cache) and fine-tuning in one process and print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--splits", default="data/prepared")
    ap.add_argument("--repeats", type=int, default=3, help="time each side this many times, keep the best")
    args = ap.parse_args()
    base = config.load(args.params)
    splits = read_splits(args.splits)
    # imports and first-call setup (model classes, bf16 kernels, scikit-learn, the LogME solver) before any clock starts
    tok, enc = load_encoder(base.select.candidates[0])
    warm = tok(["a warm-up text"] * 4, return_tensors="pt")
    with torch.inference_mode(), resolve(base.train).autocast():
        enc(input_ids=warm["input_ids"], attention_mask=warm["attention_mask"])
    warm_x, warm_y = np.random.default_rng(0).normal(size=(40, 8)), np.array(["a", "b"] * 20)
    select.probe_accuracy(warm_x, warm_y, 2, 0)
    logme(warm_x, warm_y)
    timed: dict[str, float] = {}

    def clock(what: str, fn):
        start = time.perf_counter()
        out = fn()
        timed[what] = min(timed.get(what, float("inf")), time.perf_counter() - start)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # best of N, like the latency budgets: other work only ever adds time
            raw = base.to_dict()
            raw["select"]["feature_cache"] = str(Path(tmp) / f"cache{i}")  # a fresh, empty cache per repeat
            cfg = config.from_dict(raw)
            chosen = clock("select (cold cache)", lambda: select.rank(splits["train"], cfg))
            clock("select (warm cache)", lambda: select.rank(splits["train"], cfg))
            by_name = {c.name: c for c in cfg.select.candidates}
            full = max(cfg.select.candidates, key=lambda c: c.num_layers or 10**6)
            for label, cand in (("selected", by_name[chosen["selected"]]), ("full depth", full)):
                clock(f"fine-tune {cand.name} ({label})", lambda cand=cand: train.fit(
                    splits["train"], splits["validation"], cand, cfg, "pretrained", Path(tmp) / cand.name))
    print(f"{len(cfg.select.candidates)} candidates, {chosen['sample_rows']} sampled rows, "
          f"{len(splits['train'])} training rows x {cfg.train.epochs} epochs; selected {chosen['selected']}; "
          f"best of {args.repeats}")
    for what, seconds in timed.items():
        print(f"  {what:40} {seconds:7.2f} s")
    cold, warm = timed["select (cold cache)"], timed["select (warm cache)"]
    ft_sel = timed[f"fine-tune {chosen['selected']} (selected)"]
    ft_full = timed[f"fine-tune {full.name} (full depth)"]
    print(f"cold selection / fine-tune of the full backbone     : {cold / ft_full:6.1%}  (target <= 10%)")
    print(f"cold selection / fine-tune of the selected backbone : {cold / ft_sel:6.1%}  (stricter: the smaller model "
          f"selection picked)")
    print(f"warm selection / fine-tune of the selected backbone : {warm / ft_sel:6.1%}")


if __name__ == "__main__":
    main()
