"""The `prepare` stage: raw table -> clean (example, label, time) table -> deterministic stratified splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from graft import modalities
from graft.core.artifacts import atomic_dir, write_json
from graft.core.config import Config
from graft.core.errors import GraftError
from graft.core.formats import source_md5
from graft.data import tables, target


def clean(df: pd.DataFrame, modality: str) -> pd.DataFrame:
    """Normalize and de-duplicate the examples (the modality's rule), strip labels, normalize time to ISO-8601.

    Duplicates are dropped here because an example that lands in both train and test inflates every score; what
    cannot be repaired mechanically (missing columns, empty texts, unknown labels) is left for `validate` to report.
    """
    df = modalities.get(modality).clean(df.copy())
    if "label" in df.columns:
        df["label"] = df["label"].astype("string").str.strip()
    if "time" in df.columns:
        df["time"] = pd.to_datetime(df["time"], errors="coerce", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return df.reset_index(drop=True)


def _stratify_on(df: pd.DataFrame) -> pd.Series | None:
    """Stratify on the label when every class can be split; otherwise split at random (validate will object)."""
    if "label" not in df.columns or df["label"].isna().any():
        return None
    return df["label"] if df["label"].value_counts().min() >= 2 else None


def _take(df: pd.DataFrame, size: int | float | str, seed: int, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `size` rows (a count, a fraction or `all`) off `df`; return (taken, rest)."""
    if size == "all":
        return df, df.iloc[0:0]
    if isinstance(size, int) and size >= len(df):
        raise GraftError(f"prepare.{what}={size} but only {len(df)} clean rows are left to split")
    try:
        rest, taken = train_test_split(df, test_size=size, random_state=seed, stratify=_stratify_on(df))
    except ValueError:  # e.g. too few rows for the number of classes
        rest, taken = train_test_split(df, test_size=size, random_state=seed, stratify=None)
    return taken, rest


def split(df: pd.DataFrame, cfg: Config) -> dict[str, pd.DataFrame]:
    """Split into test, then validation, then train; the same seed and data always give the same rows.

    A table with a `split` column keeps the user's assignment (a frozen test set stays frozen); sizes then apply
    only to splits it does not provide, carved out of its train rows.
    """
    if "split" in df.columns:
        given = tables.by_split(df, "split column")
        rest = given["train"]
        if "test" not in given:
            given["test"], rest = _take(rest, cfg.prepare.test_size, cfg.seed, "test_size")
        if "validation" not in given:
            given["validation"], rest = _take(rest, cfg.prepare.validation_size, cfg.seed, "validation_size")
        given["train"] = rest
        return {name: given[name].reset_index(drop=True) for name in ("train", "validation", "test")}
    p = cfg.prepare
    test, rest = _take(df, p.test_size, cfg.seed, "test_size")
    validation, rest = _take(rest, p.validation_size, cfg.seed, "validation_size")
    train = _take(rest, p.train_size, cfg.seed, "train_size")[0]
    return {name: part.reset_index(drop=True) for name, part in
            (("train", train), ("validation", validation), ("test", test))}


def up_to(df: pd.DataFrame, cutoff) -> pd.DataFrame:
    """Rows whose `time` falls on or before the cut-off day (rows without a readable time are left out)."""
    if cutoff is None:
        return df
    if "time" not in df.columns:
        raise GraftError("data.cutoff is set but the table has no time column")
    return df[df["time"].notna() & (df["time"] <= f"{cutoff.isoformat()}T23:59:59Z")].reset_index(drop=True)


def table(raw: str | Path, cfg: Config) -> tuple[pd.DataFrame, int, int]:
    """The clean table up to `data.cutoff`; and how many duplicates and rows after the cut-off were left out."""
    source = tables.read_table(raw, cfg.data)
    modality = modalities.get(cfg.data.modality)
    for needed, setting in ((modality.column, modality.column_key), ("label", "label_column")):
        if needed not in source.columns:
            have = source.attrs.get("source_columns")
            listed = f"; the file has: {', '.join(have[:12])}{', ...' if len(have) > 12 else ''}" if have else ""
            raise GraftError(f"{raw}: no {needed} column {getattr(cfg.data, setting, needed)!r} (set "
                             f"data.{setting}){listed}")
    cleaned = clean(source, cfg.data.modality)
    kept = up_to(cleaned, cfg.data.cutoff)
    return kept, len(source) - len(cleaned), len(cleaned) - len(kept)


def run(raw: str | Path, out_dir: str | Path, cfg: Config) -> dict[str, int]:
    """The stage: read the raw table, clean, cut at `data.cutoff`, split into `out_dir` (atomically); split sizes.

    With data.target it also writes the target domain's unlabeled pool (target.parquet) and labeled test
    (target_test.parquet), checked against the splits (graft.data.target).
    """
    raw = Path(raw)
    kept, duplicates, after_cutoff = table(raw, cfg)
    if kept.empty:
        cut = f" on or before data.cutoff {cfg.data.cutoff}" if cfg.data.cutoff else ""
        raise GraftError(f"{raw}: no rows{cut}")
    splits = split(kept, cfg)
    counts = {name: len(part) for name, part in splits.items()}
    domain, target_entry = target.prepare(cfg, splits, clean)
    with atomic_dir(out_dir) as tmp:
        tables.write_splits(tmp, {**splits, **domain})
        write_json(tmp / "manifest.json", {
            "source": str(raw),
            "source_md5": source_md5(raw),
            "rows": counts,
            "dropped_duplicates": duplicates,
            "cutoff": cfg.data.cutoff.isoformat() if cfg.data.cutoff else None,
            "after_cutoff": after_cutoff,
            "newest": str(kept["time"].max()) if "time" in kept else None,
            "labels": {n: part["label"].value_counts().to_dict() if "label" in part else {}
                       for n, part in splits.items()},
            "target": target_entry,
        })
    return counts
