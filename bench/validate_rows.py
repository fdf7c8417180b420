"""Validation time of the whole Great Expectations suite on N rows (default 100k) of tweet-like text.

Prints the time for one file (`graft validate --data`) and for an 80/10/10 split, side by side with the 10 s target.
Run: .venv/bin/python bench/validate_rows.py [--rows 100000]
"""

import argparse
import time

import pandas as pd

from graft.core import config
from graft.data import prepare
from graft.data import tables as data
from graft.data.validate import validate_tables
from graft.modalities.text.data import default_source


def corpus(rows: int, cfg: config.Config) -> pd.DataFrame:
    """`rows` distinct texts built from the real corpus (each tweet suffixed with a running number)."""
    base = prepare.clean(data.read_table(default_source(), cfg.data), "text")[["text", "label"]]
    reps = -(-rows // len(base))
    frames = [base.assign(text=base["text"] + f" #{i}") for i in range(reps)]
    return pd.concat(frames, ignore_index=True).head(rows)


def timed(tables: dict, cfg: config.Config, train: str) -> float:
    """Seconds of one validation run, which must pass."""
    start = time.perf_counter()
    report = validate_tables(tables, cfg, train)
    seconds = time.perf_counter() - start
    assert report.passed, report.failures("bench")
    return seconds


def main() -> None:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    cfg = config.load(args.params)
    df = corpus(args.rows, cfg)
    timed({"warm": df.head(100)}, cfg, "warm")  # GX import and context start-up, not counted
    one = timed({"data": df}, cfg, "data")
    n = len(df)
    split = timed({"train": df.iloc[: n * 8 // 10], "validation": df.iloc[n * 8 // 10: n * 9 // 10],
                   "test": df.iloc[n * 9 // 10:]}, cfg, "train")
    print(f"rows: {n:,}")
    print(f"one file     : {one:6.2f} s  ({one / 10:.2f} of the 10 s target)")
    print(f"three splits : {split:6.2f} s  ({split / 10:.2f} of the 10 s target; leakage check included)")


if __name__ == "__main__":
    main()
