"""Tables inside graft: a raw table read through its modality, and the prepared train/validation/test splits.

Every table inside graft has the modality's example column (`text` or `image`), `label` and, when the source has
them, `time`, `split` and `path`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graft import modalities
from graft.core.config import DataConfig
from graft.core.errors import GraftError

SPLITS = ("train", "validation", "test")
TARGET = ("target", "target_test")  # the target domain's unlabeled pool and labeled test (data.target)


def read_table(path: str | Path, cfg: DataConfig) -> pd.DataFrame:
    """Read a raw or user table with the modality's reader (columns renamed to graft's)."""
    return modalities.get(cfg.modality).read_table(Path(path), cfg)


def materialize(dest: str | Path) -> Path:
    """Write the packaged default data set that `dest` names (by file name), unless a file is already there."""
    written = modalities.default_data(dest)
    if written is None:
        names = ", ".join(m.default_data for m in modalities.REGISTRY.values() if m.default_data)
        raise GraftError(f"{dest}: data file not found; put your file there, or `dvc pull` it (packaged data "
                         f"sets: {names})")
    return written


def by_split(df: pd.DataFrame, where: str | Path) -> dict[str, pd.DataFrame]:
    """The tables of a file that assigns rows to splits in its `split` column (train is required)."""
    values = df["split"].astype(str).str.strip().str.lower()
    unknown = sorted(set(values) - set(SPLITS))
    if unknown:
        rows = ", ".join(str(i + 1) for i in values.index[values.isin(unknown)][:5])
        raise GraftError(f"{where}: split: unknown split value(s) {unknown} (rows {rows}); use {list(SPLITS)}")
    if "train" not in set(values):
        raise GraftError(f"{where}: split: no row is assigned to train")
    # the original index is kept, so failure lines name the rows of the file
    return {s: df[values == s].drop(columns="split") for s in SPLITS if (values == s).any()}


def write_splits(out_dir: Path, splits: dict[str, pd.DataFrame]) -> None:
    """Write each split as Parquet (row order kept)."""
    for name, frame in splits.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)


def read_splits(split_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read the prepared train/validation/test splits."""
    split_dir = Path(split_dir)
    missing = [s for s in SPLITS if not (split_dir / f"{s}.parquet").is_file()]
    if missing:
        raise GraftError(f"{split_dir}: missing split(s) {', '.join(missing)}: run `graft prepare` first")
    return {s: pd.read_parquet(split_dir / f"{s}.parquet") for s in SPLITS}


def read_target(split_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The target domain's tables that prepare wrote (none without data.target)."""
    split_dir = Path(split_dir)
    return {s: pd.read_parquet(split_dir / f"{s}.parquet") for s in TARGET if (split_dir / f"{s}.parquet").is_file()}


def manifest_md5(split_dir: str | Path) -> str | None:
    """The raw data's md5 recorded by `prepare` in the splits' manifest (None without one)."""
    from graft.core.artifacts import read_json

    manifest = Path(split_dir) / "manifest.json"
    return read_json(manifest)["source_md5"] if manifest.is_file() else None
