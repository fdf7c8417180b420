"""Side-by-side: backbone selection over every candidate vs fine-tuning one candidate, on the prepared default data.

Selection is only worth running if it costs a small fraction of what it saves. This runs, in one process and on the
same data and config: `select.rank` over all candidates with an empty feature cache (cold: the forward passes, the
latency measurements and both scores all count), the same again with the cache warm, and `train.fit` of the selected
backbone and of the full-depth backbone. Imports and the model classes are loaded first, so neither side pays them.
Target: cold selection <= 10% of fine-tuning the selected backbone.

Run after `make run` (it reads data/prepared): .venv/bin/python bench/select_cost.py
"""

import argparse
import tempfile
import time
from pathlib import Path

from graft import config, select, train
from graft import model as gm
from graft.data import read_splits


def main() -> None:
    """Time selection (cold and warm cache) and fine-tuning in one process and print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--splits", default="data/prepared")
    args = ap.parse_args()
    base = config.load(args.params)
    splits = read_splits(args.splits)
    gm.load_encoder(base.select.candidates[0])  # import the model classes before any clock starts
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.from_dict({**base.to_dict(), "select": {**base.to_dict()["select"],
                                                             "feature_cache": str(Path(tmp) / "cache")}})
        timed = {}
        for run in ("cold", "warm"):
            start = time.perf_counter()
            chosen = select.rank(splits["train"], cfg)
            timed[f"select ({run} cache)"] = time.perf_counter() - start
        by_name = {c.name: c for c in cfg.select.candidates}
        full = max(cfg.select.candidates, key=lambda c: c.num_layers or 10**6)
        for label, cand in (("selected", by_name[chosen["selected"]]), ("full depth", full)):
            start = time.perf_counter()
            train.fit(splits["train"], splits["validation"], cand, cfg, "pretrained", Path(tmp) / cand.name)
            timed[f"fine-tune {cand.name} ({label})"] = time.perf_counter() - start
    print(f"{len(cfg.select.candidates)} candidates, {chosen['sample_rows']} sampled rows, "
          f"{len(splits['train'])} training rows x {cfg.train.epochs} epochs; selected {chosen['selected']}")
    for what, seconds in timed.items():
        print(f"  {what:40} {seconds:7.2f} s")
    cold, warm = timed["select (cold cache)"], timed["select (warm cache)"]
    ft_sel = timed[f"fine-tune {chosen['selected']} (selected)"]
    ft_full = timed[f"fine-tune {full.name} (full depth)"]
    print(f"cold selection / fine-tune of the selected backbone : {cold / ft_sel:6.1%}  (target <= 10%)")
    print(f"cold selection / fine-tune of the full backbone     : {cold / ft_full:6.1%}")
    print(f"warm selection / fine-tune of the selected backbone : {warm / ft_sel:6.1%}")


if __name__ == "__main__":
    main()
