"""Domain adaptation on three documented shifts (graft.experiments.shifts): each method against source-only.

For every shift it trains, each in a fresh process with the same recipe, data, seed and budget: the source-only
model (`train.adapt: none`), every adaptation method that applies to the modality, and a target oracle (the same
fine-tune on as many LABELED target rows: the ceiling adaptation aims at). Each model is scored on the target test
set and the source test set. It writes metrics/adapt.json (per shift: methods' scores, the best method against
source-only with a paired-bootstrap 95% interval, the share of the source-to-oracle gap it closes, the domain
classifier skew before and after adaptation, seconds and the cost ratio against source-only) and prints a table.

    make adapt                          # all three shifts: about 2 h on 2 cores (fashion ~1 h, newsgroups ~42 min)
    .venv/bin/python bench/adapt.py --shifts tweets-months   # about 9 min; the other shifts in the JSON stay
    .venv/bin/python bench/adapt.py --shifts tweets-months --methods none,self_training
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from graft import modalities
from graft.core import config
from graft.core.artifacts import write_json
from graft.core.hardware import resolve
from graft.data.skew import domain_classifier
from graft.experiments.shifts import SHIFTS
from graft.metrics.scores import label_ids, scores
from graft.metrics.stats import compare
from graft.models.classifier import pooled, predict_logits
from graft.train import fit

ORACLE = "target_oracle"


def shift_config(shift, method: str) -> config.Config:
    """The shift's params file with its overrides, train.adapt set, the first candidate as the backbone."""
    p = yaml.safe_load(shift.params.read_text())
    for section, values in shift.overrides.items():
        p[section].update(values)
    p["data"]["labels"] = shift.labels
    p["train"]["adapt"] = "none" if method == ORACLE else method
    return config.from_dict(p, str(shift.params))


def features(folder: Path, items: list) -> np.ndarray:
    """Pooled features of a saved model (eval mode) for `items`."""
    processor, model, meta = modalities.load_model(folder)
    modality, hw = modalities.get(meta["modality"]), resolve(config.TrainConfig(device="cpu"))
    return pooled(model, modality.encode(processor, items), hw.device, hw.autocast).numpy()


def one(shift_name: str, method: str, seed: int, result: Path) -> None:
    """Train one contender and write its predictions on both test sets, its seconds and its skew."""
    shift = SHIFTS[shift_name](seed)
    cfg, t = shift_config(shift, method), shift.tables
    modality = modalities.get(cfg.data.modality)
    train, validation = t["train"], t["validation"]
    if method == ORACLE:  # as many labeled target rows as the source has, none from the target test
        train, validation = t["target"].iloc[:len(train)], t["target"].iloc[len(train):len(train) + 250]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = fit(train, validation, cfg.select.candidates[0], cfg, "pretrained", Path(tmp) / "model",
                  target=t["target"])
        seconds = time.perf_counter() - start
        out = {"seconds": round(seconds, 2), "adaptation": {k: v for k, v in run["adaptation"].items()
                                                            if k != "rounds"}}
        if "rounds" in run["adaptation"]:
            out["adaptation"]["pseudo_labels"] = [r["pseudo_labels"] for r in run["adaptation"]["rounds"]]
        processor, model, meta = modalities.load_model(Path(tmp) / "model")
        for part in ("target_test", "source_test"):
            logits = predict_logits(model, processor, modality.examples(t[part]), 64)
            out[part] = logits.argmax(1).tolist()
        src = features(Path(tmp) / "model", modality.examples(t["train"]))
        tgt = features(Path(tmp) / "model", modality.examples(t["target"]))
        out["skew"] = domain_classifier(src, tgt, seed=seed)
    write_json(result, out)


def spawn(shift: str, method: str, seed: int) -> dict:
    """Run `one` in a fresh process and read what it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        subprocess.run([sys.executable, __file__, "--one", shift, method, "--seed", str(seed), "--result",
                        str(path)], check=True)
        return json.loads(path.read_text())


def summarise(shift, runs: dict, seed: int) -> dict:
    """The shift's row of metrics/adapt.json."""
    t, labels = shift.tables, shift.labels
    y = {p: label_ids(t[p]["label"], labels) for p in ("target_test", "source_test")}
    sc = {m: {p: scores(y[p], np.array(r[p]), labels) for p in y} for m, r in runs.items()}
    methods = {m: {"accuracy": round(s["target_test"]["accuracy"], 4),
                   "macro_f1": round(s["target_test"]["macro_f1"], 4),
                   "source_accuracy": round(s["source_test"]["accuracy"], 4)} for m, s in sc.items() if m != ORACLE}
    adapted = [m for m in methods if m != "none"]
    best = max(adapted, key=lambda m: methods[m]["accuracy"]) if adapted else "none"
    cmp = compare(y["target_test"], np.array(runs[best]["target_test"]), np.array(runs["none"]["target_test"]),
                  len(labels), 1000, seed)["accuracy"]
    oracle = sc.get(ORACLE, {}).get("target_test")
    gap = None
    if oracle and oracle["accuracy"] > methods["none"]["accuracy"]:
        gap = round((methods[best]["accuracy"] - methods["none"]["accuracy"])
                    / (oracle["accuracy"] - methods["none"]["accuracy"]), 3)
    base = runs["none"]["seconds"]
    return {"name": shift.name, "modality": shift.modality, "methods": methods, "best": best,
            "best_vs_source_only": {k: cmp[k] for k in ("diff", "ci_low", "ci_high")},
            "target_oracle": {"accuracy": round(oracle["accuracy"], 4)} if oracle else None, "gap_closed": gap,
            "skew": {m: r["skew"] for m, r in runs.items()},
            "seconds": {m: r["seconds"] for m, r in runs.items()},
            "cost_vs_source_only": {m: round(r["seconds"] / base, 2) for m, r in runs.items() if m != "none"},
            "adaptation": {m: r["adaptation"] for m, r in runs.items() if m not in ("none", ORACLE)},
            "rows": {k: len(v) for k, v in t.items()}}


def table(rows: list[dict]) -> str:
    """The printed summary: target accuracy per method, best vs source-only, gap closed, cost."""
    lines = [f"{'shift':<22}{'method':<15}{'target acc':>11}{'source acc':>11}{'seconds':>9}{'cost':>6}  skew AUC"]
    for r in rows:
        for m, s in r["methods"].items():
            lines.append(f"{r['name']:<22}{m:<15}{s['accuracy']:>11.4f}{s['source_accuracy']:>11.4f}"
                         f"{r['seconds'][m]:>9.1f}{r['cost_vs_source_only'].get(m, 1.0):>6.2f}  "
                         f"{r['skew'][m]['auc']:.3f}")
        if r["target_oracle"]:
            lines.append(f"{r['name']:<22}{ORACLE:<15}{r['target_oracle']['accuracy']:>11.4f}")
        d = r["best_vs_source_only"]
        lines.append(f"  best {r['best']}: {d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] accuracy vs "
                     f"source-only; gap closed {r['gap_closed']}")
    return "\n".join(lines)


def main() -> None:
    """Run the shifts and methods asked for, write the JSON and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shifts", default=",".join(SHIFTS), help="comma-separated, of: " + ", ".join(SHIFTS))
    ap.add_argument("--methods", default="all", help="comma-separated (none is always run), or all that apply")
    ap.add_argument("--no-oracle", action="store_true", help="skip the target oracle")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="metrics/adapt.json")
    ap.add_argument("--one", nargs=2, metavar=("SHIFT", "METHOD"), help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return one(*a.one, a.seed, Path(a.result))
    rows, out = [], Path(a.out)
    before = json.loads(out.read_text()) if out.exists() else {}
    kept = before.get("shifts", []) if before.get("seed") == a.seed else []  # same-seed shifts not redone stay
    for name in a.shifts.split(","):
        shift = SHIFTS[name](a.seed)
        usable = modalities.get(shift.modality).adaptations
        methods = list(usable) if a.methods == "all" else [m for m in a.methods.split(",") if m in usable]
        runs = {m: spawn(name, m, a.seed) for m in ["none", *methods] + ([] if a.no_oracle else [ORACLE])}
        rows.append(summarise(shift, runs, a.seed))
        done = {r["name"]: r for r in kept} | {r["name"]: r for r in rows}
        write_json(out, {"shifts": [done[n] for n in SHIFTS if n in done], "seed": a.seed})
        print(table(rows[-1:]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
