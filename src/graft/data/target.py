"""The target domain in `prepare`: the unlabeled inputs the model will serve, and an optional labeled target test.

Both are read with the modality's reader (the formats data.raw accepts), cleaned and de-duplicated like the source.
A label column in the pool is dropped: those inputs count as unlabeled. Target-test rows are removed from the pool
(their inputs would otherwise be adapted to while they judge the adaptation). What cannot be right is refused with
one line naming the file: an empty pool, inputs that do not decode or have another size than the training inputs,
target-test labels outside data.labels, and target-test rows that are also training or validation rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from graft import modalities
from graft.core.config import Config
from graft.core.errors import GraftError
from graft.core.formats import source_md5
from graft.data import tables


def _read(path: str, cfg: Config, what: str, source: pd.DataFrame, clean: Callable) -> pd.DataFrame:
    """A target file, read and cleaned like data.raw; refused when it holds no inputs of this modality."""
    modality = modalities.get(cfg.data.modality)
    if not Path(path).exists():
        raise GraftError(f"{path}: {what} not found (params.yaml data.target)")
    df = clean(tables.read_table(path, cfg.data), cfg.data.modality)
    if modality.column not in df.columns:
        raise GraftError(f"{path}: {what} has no {modality.column!r} column (data.{modality.column}_column names "
                         f"it; data.modality is {cfg.data.modality})")
    df = df[df[modality.column].notna()].reset_index(drop=True)
    if df.empty:
        raise GraftError(f"{path}: {what} holds no inputs: give at least one {modality.column} (data.target)")
    problem = modality.target_problem(df, path, source)
    if problem:
        raise GraftError(problem)
    return df


def _keys(df: pd.DataFrame, modality) -> pd.Series:
    """The leakage key of each row (folded text, image content hash)."""
    return modality.derived(df[[modality.column]])["key"]


def _where(df: pd.DataFrame, mask: pd.Series) -> str:
    """The first offending rows, as the file names them (a path column) or by row number."""
    rows = df.index[mask][:5]
    return ", ".join(str(df.loc[i, "path"]) if "path" in df.columns else f"row {i + 1}" for i in rows)


def prepare(cfg: Config, splits: dict[str, pd.DataFrame], clean: Callable) -> tuple[dict[str, pd.DataFrame], dict]:
    """({"target": pool[, "target_test": labeled test]}, the manifest's `target` entry); ({}, None) when unset.

    `clean` is prepare's own cleaning (graft.data.prepare.clean), applied to both files.
    """
    t = cfg.data.target
    if t is None:
        return {}, None
    modality = modalities.get(cfg.data.modality)
    pool = _read(t.raw, cfg, "data.target.raw", splits["train"], clean)
    pool = pool.drop(columns=["label", "split"], errors="ignore")
    out, entry = {"target": pool}, {"raw": t.raw, "raw_md5": source_md5(Path(t.raw)), "test": t.test}
    if t.test:
        test = _read(t.test, cfg, "data.target.test", splits["train"], clean).drop(columns="split", errors="ignore")
        labels = test["label"].astype("string") if "label" in test.columns else None
        if labels is None or labels.isna().any():
            raise GraftError(f"{t.test}: data.target.test needs a label on every row (data.label_column names the "
                             "column)")
        unknown = ~labels.isin(cfg.data.labels)
        if unknown.any():
            raise GraftError(f"{t.test}: label: unknown labels {sorted(set(labels[unknown]))[:5]} at "
                             f"{_where(test, unknown)}; data.labels lists {list(cfg.data.labels)}")
        test_keys = _keys(test, modality)
        seen = pd.concat([_keys(splits[s], modality) for s in ("train", "validation")])
        leaked = test_keys.isin(set(seen.dropna()))
        if leaked.any():
            raise GraftError(f"{t.test}: {int(leaked.sum())} target-test row(s) are also training or validation "
                             f"rows ({_where(test, leaked)}): remove them, or they judge a model that saw them")
        in_pool = _keys(pool, modality).isin(set(test_keys.dropna()))
        out["target"], out["target_test"] = pool[~in_pool].reset_index(drop=True), test
        entry.update(test_md5=source_md5(Path(t.test)), removed_from_pool=int(in_pool.sum()))
        if out["target"].empty:
            raise GraftError(f"{t.raw}: data.target.raw holds only target-test inputs: no unlabeled pool is left")
    entry["rows"] = {name: len(df) for name, df in out.items()}
    return out, entry
