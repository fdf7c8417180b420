"""Side-by-side: one graft stage run by two source trees (e.g. this checkout and an older commit), same data.

A code change that should not change speed — a refactor, a dependency bump — is checked here rather than by eye:
each contender runs the stage as `graft <stage> ...` in its own fresh process, its `graft` package imported from
its own `src/` (PYTHONPATH), with its own params file, on the same prepared data; repeats are interleaved
(A B A B ...) so machine load drifts over both alike. Prints, per contender, the median and spread (min..max) of
the wall time of the whole process and of the stage's own `seconds` (train/baseline/select report it).

Run after `make run` (it reads data/prepared and metrics/select.json), e.g. against the commit before a refactor:
    git worktree add /tmp/before <commit>
    .venv/bin/python bench/stage_speed.py --stage train --contender before=/tmp/before/src:/tmp/before/params.yaml
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = {  # the stage's command line as dvc.yaml runs it, its outputs in a scratch folder
    "train": lambda out: ["train", "--splits", "data/prepared", "--selection", "metrics/select.json",
                          "--out", f"{out}/model", "--metrics", f"{out}/metrics.json"],
    "baseline": lambda out: ["baseline", "--splits", "data/prepared", "--selection", "metrics/select.json",
                             "--out", f"{out}/model", "--metrics", f"{out}/metrics.json"],
    "select": lambda out: ["select", "--splits", "data/prepared", "--out", f"{out}/metrics.json"],
}


def run_once(src: str, params: str, stage: str) -> tuple[float, float | None]:
    """Wall seconds of one fresh `graft <stage>` process using the graft under `src`, and the stage's own seconds."""
    with tempfile.TemporaryDirectory() as out:
        code = "import sys; from graft.cli import main; sys.exit(main(sys.argv[1:]))"
        env = dict(os.environ, PYTHONPATH=src)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, *ARGS[stage](out), "--params", params], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        metrics = Path(out) / "metrics.json"
        return wall, (json.loads(metrics.read_text()).get("seconds") if metrics.is_file() else None)


def spread(values: list[float]) -> str:
    """Median and range of `values`, in seconds."""
    return f"{statistics.median(values):7.2f} s  ({min(values):.2f}..{max(values):.2f})"


def main() -> None:
    """Run the contenders interleaved and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=sorted(ARGS), default="train")
    ap.add_argument("--contender", action="append", default=[], metavar="NAME=SRC[:PARAMS]",
                    help="a source tree to compare (repeatable); `current=src:params.yaml` is always included")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    contenders = {"current": ("src", "params.yaml")}
    for spec in args.contender:
        name, _, where = spec.partition("=")
        src, _, params = where.partition(":")
        contenders[name] = (str(Path(src).resolve()), params or "params.yaml")
    results = {name: {"wall": [], "stage": []} for name in contenders}
    for r in range(args.repeats):
        for name, (src, params) in contenders.items():
            wall, own = run_once(src, params, args.stage)
            results[name]["wall"].append(wall)
            if own is not None:
                results[name]["stage"].append(own)
            print(f"repeat {r + 1}/{args.repeats} {name:>10}: {wall:.2f} s" + (f" (stage {own:.2f} s)" if own else ""),
                  flush=True)
    print(f"\n`graft {args.stage}`, {args.repeats} interleaved repeats, fresh processes (median, min..max)")
    print(f"{'contender':>10}  {'process wall':<26}  stage's own seconds")
    for name, res in results.items():
        print(f"{name:>10}  {spread(res['wall']):<26}  {spread(res['stage']) if res['stage'] else '-'}")
    base = statistics.median(results["current"]["wall"])
    for name, res in results.items():
        if name != "current":
            print(f"current / {name}: {base / statistics.median(res['wall']):.3f}x the wall time")


if __name__ == "__main__":
    main()
