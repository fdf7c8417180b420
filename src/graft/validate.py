"""The `validate` stage: a Great Expectations 1.x suite over the prepared splits (or one user file).

Each expectation names the risk it guards (stored in its `meta`), so a failure says why it matters.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from graft.config import Config

# What each check guards against; these strings travel into the report and the failure lines.
RISKS = {
    "schema": "a column the trainer reads is missing",
    "text_not_null": "null inputs crash tokenisation or train on the string 'nan'",
    "text_not_blank": "empty texts teach the model nothing and skew the class prior",
    "label_not_null": "unlabeled rows silently become a class",
    "label_in_set": "an unknown label adds a class the model and the gate do not know",
    "min_rows_per_class": "too few examples of a class make its score noise",
    "no_train_overlap": "a text in both train and held-out data inflates every score (leakage)",
}


@dataclass(frozen=True)
class Check:
    """One expectation's outcome, in the shape the report and the CLI print."""

    name: str
    table: str
    passed: bool
    risk: str
    observed: Any = None
    rows: list[int] = field(default_factory=list)
    detail: str = ""

    def line(self, where: str) -> str:
        """One human line for a failed check."""
        rows = f" (rows {', '.join(str(r + 1) for r in self.rows[:5])})" if self.rows else ""
        return f"{where}: {self.table}: {self.name}: {self.detail}{rows} — guards: {self.risk}"


@dataclass(frozen=True)
class Report:
    """All checks of one validation run."""

    passed: bool
    checks: list[Check]

    def failures(self, where: str) -> list[str]:
        """One line per failed check."""
        return [c.line(where) for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for metrics/validate.json."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def _suite_for(name: str, df: pd.DataFrame, cfg: Config, train_texts: list[str] | None) -> list[Any]:
    """The expectations for one table; column checks only for columns that exist (schema reports the rest)."""
    import great_expectations as gx

    ex = gx.expectations
    items = [ex.ExpectColumnToExist(column=c, meta={"check": "schema"}) for c in ("text", "label")]
    if "text" in df.columns:
        items += [
            ex.ExpectColumnValuesToNotBeNull(column="text", meta={"check": "text_not_null"}),
            ex.ExpectColumnValuesToNotMatchRegex(column="text", regex=r"^\s*$", meta={"check": "text_not_blank"}),
        ]
        if train_texts is not None:
            items.append(ex.ExpectColumnValuesToNotBeInSet(
                column="text", value_set=train_texts, meta={"check": "no_train_overlap"}))
    if "label" in df.columns:
        items += [
            ex.ExpectColumnValuesToNotBeNull(column="label", meta={"check": "label_not_null"}),
            ex.ExpectColumnValuesToBeInSet(
                column="label", value_set=list(cfg.data.labels), meta={"check": "label_in_set"}),
        ]
    return items


def _class_counts(df: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """One row per expected label with its row count (zero when absent), for the min-rows expectation."""
    counts = df["label"].value_counts() if "label" in df.columns else pd.Series(dtype=int)
    return pd.DataFrame({"label": labels, "rows": [int(counts.get(lb, 0)) for lb in labels]})


def _detail(check: str, column: str, result: dict[str, Any], cfg: Config, table: pd.DataFrame) -> str:
    counts = result.get("partial_unexpected_counts") or []
    values = [c["value"] for c in counts] or result.get("partial_unexpected_list") or []
    shown = ", ".join(repr(v) for v in values[:3])
    n = result.get("unexpected_count")
    if check == "schema":
        return f"required column {column!r} missing (have: {', '.join(map(str, table.columns)) or 'none'})"
    if check == "label_in_set":
        return f"{n} row(s) with unknown label {shown}; expected one of {cfg.data.labels}"
    if check == "min_rows_per_class":
        idx = result.get("partial_unexpected_index_list") or []
        short = ", ".join(f"{table['label'][i]}={table['rows'][i]}" for i in idx)
        return f"class(es) below {cfg.validate_.min_rows_per_class} rows: {short}"
    if check == "no_train_overlap":
        return f"{n} text(s) also in train, e.g. {shown}"
    return f"{n} bad row(s), e.g. {shown}"


def _run(tables: dict[str, pd.DataFrame], suites: dict[str, list[Any]], cfg: Config) -> list[Check]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home from a pipeline step
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # INFO under KFP's executor is noise
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("graft")
    checks: list[Check] = []
    for name, items in suites.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"graft-{name}", expectations=items))
        run = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"validate-{name}", data=batch, suite=suite))
        result = run.run(batch_parameters={"dataframe": tables[name]}, result_format="SUMMARY")
        for r in result.results:
            check = r.expectation_config.meta["check"]
            table = name.removesuffix(":classes")
            res = r.result or {}
            checks.append(Check(
                name=check, table=table, passed=bool(r.success), risk=RISKS[check],
                observed=res.get("observed_value", res.get("unexpected_count")),
                rows=[] if check == "min_rows_per_class" else list(res.get("partial_unexpected_index_list") or []),
                detail="" if r.success else _detail(check, r.expectation_config.kwargs.get("column", ""), res, cfg,
                                                    tables[name]),
            ))
    return checks


def validate_tables(tables: dict[str, pd.DataFrame], cfg: Config, train: str | None = "train") -> Report:
    """Validate named tables; `train` names the table that min-rows applies to and that others must not overlap."""
    suites: dict[str, list[Any]] = {}
    frames = dict(tables)
    train_df = tables.get(train) if train else None
    train_texts = None
    if train_df is not None and "text" in train_df.columns:
        train_texts = sorted(set(train_df["text"].dropna().astype(str)))
    for name, df in tables.items():
        suites[name] = _suite_for(name, df, cfg, train_texts if name != train else None)
    if train_df is not None and "label" in train_df.columns:  # a missing column is already a schema failure
        import great_expectations as gx

        frames[f"{train}:classes"] = _class_counts(train_df, list(cfg.data.labels))
        suites[f"{train}:classes"] = [gx.expectations.ExpectColumnValuesToBeBetween(
            column="rows", min_value=cfg.validate_.min_rows_per_class, meta={"check": "min_rows_per_class"})]
    checks = _run(frames, suites, cfg)
    return Report(passed=all(c.passed for c in checks), checks=checks)
