"""`graft init`: from a user's data file to the data-dependent settings of params.yaml, each with its reason.

The plan is computed, never guessed twice: the columns come from the file (the modality says which columns could
hold its examples; labels and times are found by cardinality and parse rate), the split sizes are checked with
`prepare`'s own split on the file (so every class gets `validate.min_rows_per_class` training rows), and the
imbalance is measured on that forecast training split. Applying it edits params.yaml with a round-trip YAML
library, so comments and every other setting stay as they were.
"""

from __future__ import annotations

import difflib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from graft import modalities
from graft.core import config
from graft.core.errors import GraftError
from graft.data import prepare

LABEL_NAMES = ("label", "labels", "class", "category", "target", "topic", "y", "tag", "sentiment", "intent")
TIME_NAMES = ("time", "timestamp", "date", "datetime", "created", "created_at")
MAX_LABELS = 100  # more distinct values than this is not a label set graft trains on
IMBALANCE_HEADROOM = 1.25  # validate.max_imbalance_ratio is set this far above the measured ratio


@dataclass
class Plan:
    """What `graft init` sets: (setting, value, why) in order, and where the data file goes."""

    source: Path
    dest: Path  # where the data goes: under the workspace's data/raw/ (absolute)
    modality: str
    rows: int
    settings: list[tuple[str, Any, str]] = field(default_factory=list)

    def set(self, key: str, value: Any, why: str) -> None:
        """Record one setting and the reason for it."""
        self.settings.append((key, value, why))


def _choose(kind: str, flag: str, given: str | None, candidates: list[str], columns: list[str],
            described: dict[str, str]) -> str:
    """The flag's column (checked), else the only candidate; otherwise a one-line error listing the candidates."""
    if given is not None:
        if given not in columns:
            raise GraftError(f"{flag} {given!r}: no such column (the file has: {', '.join(columns)})")
        return given
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise GraftError(f"no column looks like the {kind} (columns: {', '.join(columns)}); pass {flag} COLUMN")
    listed = ", ".join(f"{c} ({described[c]})" if c in described else c for c in candidates)
    raise GraftError(f"more than one column could be the {kind}: {listed}; pass {flag} COLUMN")


def _label_candidates(df: pd.DataFrame, skip: set[str]) -> tuple[list[str], dict[str, str]]:
    """Columns with 2..MAX_LABELS repeated values; a column named like a label wins over the others."""
    found, described = [], {}
    for column in df.columns:
        values = df[column].dropna()
        if column in skip or values.empty or df[column].dtype.kind == "f":
            continue
        distinct = values.astype(str).nunique()
        named = str(column).lower() in LABEL_NAMES  # a label column of one class is still the label (refused later)
        if (distinct >= 2 or named) and distinct <= MAX_LABELS and distinct <= len(values) / 2:
            found.append(str(column))
            described[str(column)] = f"{distinct} values"
    named = [c for c in found if c.lower() in LABEL_NAMES]
    return (named if len(named) == 1 else found), described


def _time_candidates(df: pd.DataFrame, skip: set[str]) -> list[str]:
    """Columns of dates: at least 95% of a sample parse as timestamps (numbers do not count)."""
    found = []
    for column in df.columns:
        values = df[column].dropna().head(1000)
        if column in skip or values.empty or df[column].dtype.kind in "biuf":
            continue
        if df[column].dtype.kind == "M":
            found.append(str(column))
            continue
        text = values.astype(str)
        if text.str.fullmatch(r"[\d.]+").mean() > 0.5:
            continue
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        if parsed.notna().mean() >= 0.95:
            found.append(str(column))
    named = [c for c in found if c.lower() in TIME_NAMES]
    return named if len(named) == 1 else found


def _detect(path: Path, flags: dict[str, str | None]) -> tuple[str, pd.DataFrame, list[str]]:
    """(modality, the file as read, its example-column candidates): the one modality that finds examples in it."""
    forced = [name for name, m in modalities.REGISTRY.items() if flags.get(m.column_key)]
    read = {}
    for name, modality in modalities.REGISTRY.items():
        if forced and name not in forced:
            continue
        found = modality.detect(path)
        if found is not None:
            read[name] = found
    if not read:
        raise GraftError(f"{path}: not a data file graft reads (a .csv, .tsv, .tab, .parquet or .jsonl table, or "
                         "a folder of class folders of images)")
    usable = {name: found for name, found in read.items() if found[1] or forced}
    if len(usable) > 1:
        raise GraftError(f"{path}: holds both " + " and ".join(
            f"{m} ({', '.join(f[1])})" for m, f in usable.items()) + "; pass --text-column or --image-column")
    if not usable:
        df = next(iter(read.values()))[0]
        raise GraftError(f"{path}: no text-like column (strings, mostly distinct, of several words) and no image "
                         f"column among {', '.join(map(str, df.columns))}; pass --text-column COLUMN")
    name, (df, candidates) = next(iter(usable.items()))
    return name, df, candidates


def _labels(df: pd.DataFrame) -> list[str]:
    """The label set, most frequent first (ties by name): the order graft reports classes in."""
    counts = df["label"].astype(str).str.strip().value_counts()
    return sorted(counts.index, key=lambda lb: (-counts[lb], lb))


def slug(name: str) -> str:
    """A registry model name from a file name: lower case, runs of other characters as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _trial(params: dict, data: dict, sizes: dict | None = None, extra: dict | None = None) -> config.Config:
    """The config the plan would give: params with the data settings (and sizes) replaced."""
    trial = {**params, "data": {**params["data"], **data}}
    if sizes:
        trial["prepare"] = {**params["prepare"], **sizes}
    for section, values in (extra or {}).items():
        trial[section] = {**params[section], **values}
    return config.from_dict(trial, "the planned params")


def _per_class(frame: pd.DataFrame, labels: list[str]) -> dict[str, int]:
    counts = frame["label"].astype(str).value_counts()
    return {lb: int(counts.get(lb, 0)) for lb in labels}


def _sizes(table: pd.DataFrame, params: dict, data: dict, labels: list[str]) -> tuple[dict, dict, str]:
    """Split sizes that give every class validate.min_rows_per_class training rows, checked with prepare's split.

    Test and validation keep their configured counts when the file is large enough (at most a fifth and a tenth
    of it otherwise, and enough test rows for three of the smallest class); the training sample grows from its
    configured size until the forecast split holds enough of every class, up to `all`.
    """
    totals, v = _per_class(table, labels), params["validate"]
    m, floor, n = int(v["min_rows_per_class"]), int(v["min_rows"]), len(table)
    worst = min(totals, key=totals.get)
    if totals[worst] < m + 2:
        raise GraftError(f"class {worst!r} has {totals[worst]} row(s) in total; it needs validate.min_rows_per_class "
                         f"({m}) training rows plus held-out ones: add rows of it, drop it from the file, or lower "
                         "validate.min_rows_per_class")
    sizes = {k: params["prepare"][k] for k in ("test_size", "validation_size", "train_size")}
    if isinstance(sizes["test_size"], int):
        sizes["test_size"] = min(sizes["test_size"], max(floor, n // 5,
                                                          min(math.ceil(3 * n / totals[worst]), 3 * n // 10)))
    if isinstance(sizes["validation_size"], int):
        sizes["validation_size"] = min(sizes["validation_size"], max(floor, n // 10))
    for _ in range(30):
        try:
            splits = prepare.split(table, _trial(params, data, sizes))
        except GraftError:  # more training rows asked for than are left: take them all
            sizes["train_size"] = "all"
            continue
        train = _per_class(splits["train"], labels)
        short = min(train, key=train.get)
        if train[short] >= m:
            why = (f"every class gets >= validate.min_rows_per_class ({m}) training rows: the smallest, {short}, "
                   f"gets {train[short]} of its {totals[short]}")
            return sizes, splits, why
        if sizes["train_size"] == "all":
            raise GraftError(f"class {short!r} gets {train[short]} training rows even with every row left after the "
                             f"test and validation splits (prepare.train_size: all); validate.min_rows_per_class "
                             f"is {m}: add rows of it or lower prepare.test_size ({sizes['test_size']})")
        have = len(splits["train"])
        rest = n - len(splits["test"]) - len(splits["validation"])
        need = max(math.ceil(have * (m + 1) / max(train[short], 0.5)), have + 1)
        sizes["train_size"] = "all" if need >= rest else need
    raise GraftError("could not size the splits")  # unreachable: the size grows to `all` within the loop


def plan(path: str | Path, params: dict, workspace: Path, flags: dict[str, str | None]) -> tuple[Plan, pd.DataFrame]:
    """The settings for the data at `path` and the forecast splits they give.

    Columns, labels, split sizes, class weights and the model name; a file that cannot work is a GraftError.
    """
    path = Path(path)
    name, df, candidates = _detect(path, flags)
    modality = modalities.get(name)
    if name != params["data"]["modality"]:
        raise GraftError(f"{path} holds {modality.noun}, but these params are for data.modality "
                         f"{params['data']['modality']!r}: pass the {name} workspace's params (--params; images: "
                         "image/params.yaml)")
    columns = list(map(str, df.columns))
    column = _choose(f"{name} column", f"--{name}-column", flags.get(modality.column_key), candidates, columns, {})
    skip = {column, params["data"].get("split_column", "split")}
    found, described = _label_candidates(df, skip)
    label = _choose("label", "--label-column", flags.get("label_column"), found, columns, described)
    times = [flags["time_column"]] if flags.get("time_column") else _time_candidates(df, skip | {label})
    if flags.get("time_column") and flags["time_column"] not in columns:
        raise GraftError(f"--time-column {flags['time_column']!r}: no such column (the file has: {', '.join(columns)})")
    time = times[0] if len(times) == 1 else None
    raw_dir = (workspace / "data" / "raw").resolve()
    dest = path.resolve() if path.resolve().is_relative_to(raw_dir) else raw_dir / path.name
    result = Plan(path, dest, name, len(df))
    data = {modality.column_key: column, "label_column": label, "time_column": time, "cutoff": None}
    if params["data"].get("target") is not None:
        data["target"] = None
    probe = _trial(params, {**data, "labels": ["?", "??"]}).data
    table = prepare.clean(modality.read_table(path, probe), name)
    if table["label"].isna().all():
        raise GraftError(f"{path}: column {label!r} holds no labels")
    labels = _labels(table.dropna(subset=["label"]))
    if len(labels) < 2:
        raise GraftError(f"{path}: column {label!r} holds one class only ({labels[0]!r}): a classifier needs two "
                         "or more")
    data["labels"] = labels
    result.set(f"data.{modality.column_key}", column, "the only column that can hold the examples"
               if not flags.get(modality.column_key) else "--" + modality.column_key.replace("_", "-"))
    result.set("data.label_column", label, f"{len(labels)} classes" + (" (--label-column)"
                                                                       if flags.get("label_column") else ""))
    if time is not None or "time_column" in params["data"]:  # image params have no time column by default
        result.set("data.time_column", time, "parses as dates" if time else (
            f"several date columns ({', '.join(times)}): none used; pass --time-column" if times else "no date column"))
        result.set("data.cutoff", None, "every row of your file is used")
    result.set("data.labels", labels, "from the file, most frequent first")
    if params["data"].get("target") is not None:
        result.set("data.target", None, "the target domain set was for the previous data")
    result.set("data.raw", dest.relative_to(workspace.resolve()).as_posix(),
               f"the {'file' if path.is_file() else 'folder'} is copied there and pinned by data.dvc")
    sizes, splits, why = _sizes(table, params, data, labels)
    for key, value in sizes.items():
        held = "as configured" if value == params["prepare"][key] else (
            f"{params['prepare'][key]} configured is too many of {len(table)} rows; this leaves enough to train on")
        result.set(f"prepare.{key}", value, why if key == "train_size" else held)
    _imbalance(result, splits["train"], labels, params)
    result.set("registry.model_name", slug(path.stem if path.is_file() else path.name), "from the file's name")
    return result, splits


def _imbalance(result: Plan, train: pd.DataFrame, labels: list[str], params: dict) -> None:
    """Class weights and a ratio bound that fit when the forecast training split is imbalanced."""
    counts = _per_class(train, labels)
    ratio = max(counts.values()) / max(min(counts.values()), 1)
    bound = params["validate"]["max_imbalance_ratio"]
    if ratio <= bound:
        return
    result.set("train.class_weights", "balanced", f"largest/smallest training class is {ratio:.1f}, above "
               f"validate.max_imbalance_ratio ({bound}): each class weighs the same in the loss")
    result.set("validate.max_imbalance_ratio", float(math.ceil(ratio * IMBALANCE_HEADROOM)),
               f"the measured {ratio:.1f} with {IMBALANCE_HEADROOM - 1:.0%} headroom for the next data version")


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def edited(text: str, settings: list[tuple[str, Any, str]]) -> str:
    """params.yaml's text with the settings applied; comments, order and every other line as they were."""
    from ruamel.yaml.comments import CommentedSeq

    yaml = _yaml()
    doc = yaml.load(text)
    for key, value, _ in settings:
        *parents, leaf = key.split(".")
        node = doc
        for part in parents:
            node = node[part]
        if isinstance(value, list):
            value = CommentedSeq(value)
            value.fa.set_flow_style()  # labels stay on one line, as people write them
        _put(node, leaf, value)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _put(node, leaf: str, value: Any) -> None:
    """Set one key; a new one goes last in its section, above the blank line and comments that closed it."""
    import copy

    if leaf in node:
        if node[leaf] != value:
            node[leaf] = value
        return
    if value is None:  # an absent optional setting already means null
        return
    last = list(node)[-1] if len(node) else None
    node[leaf] = value
    trailing = node.ca.items.get(last, [None] * 4)[2] if last is not None else None
    if trailing is not None and trailing.value.count("\n") > 1:  # the old last line's end, then what followed
        head, _, rest = trailing.value.partition("\n")
        moved = copy.copy(trailing)
        trailing.value, moved.value = head + "\n", "\n" + rest
        node.ca.items[leaf] = [None, None, moved, None]


def diff(old: str, new: str, name: str) -> str:
    """A unified diff of params.yaml (empty when nothing changes)."""
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{name}", f"b/{name}"))


def same_content(a: Path, b: Path) -> bool:
    """Whether two files (or two folder trees) hold the same bytes under the same names."""
    import filecmp

    if a.is_file() and b.is_file():
        return filecmp.cmp(a, b, shallow=False)
    if not (a.is_dir() and b.is_dir()):
        return False
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if files != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def place(source: Path, dest: Path) -> bool:
    """Copy the data under data/raw/ (a folder whole); False when it is already there, byte for byte."""
    import shutil

    if source.resolve() == dest.resolve():
        return False
    if dest.exists():
        if same_content(source, dest):
            return False
        raise GraftError(f"{dest} exists and differs from {source}: move it away, or rename your file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    (shutil.copytree if source.is_dir() else shutil.copy2)(source, tmp)
    tmp.replace(dest)
    return True
