"""The `validate` stage: a Great Expectations 1.x suite over the prepared splits (or one user file).

The checks on labels, row counts, class balance and leakage are shared; the example column's checks come from the
modality (graft.modalities). Each expectation names the risk it guards (RISKS, carried in its `meta` into the
report), so a failure says why it matters. Checks run in two phases: structure (columns, row counts) first;
content only when the structure holds, so one broken thing gives one line, not a cascade.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from graft import modalities
from graft.core import outputs
from graft.core.artifacts import atomic_dir
from graft.core.config import Config
from graft.data import docs_offline
from graft.data import drift as drift_store
from graft.data.report import validation_html

# What the checks every modality shares guard against; each modality adds its own (Modality.risks). These strings
# travel into the report and the failure lines.
RISKS = {
    "schema": "a column the trainer reads is missing",
    "row_count": "an empty or truncated export trains a useless model; a runaway one blows the budget",
    "label_not_null": "unlabeled rows silently become a class",
    "label_in_set": "an unknown label adds a class the model and the gate do not know",
    "min_rows_per_class": "too few examples of a class make its score noise",
    "imbalance_ratio": "a dominant class lets a constant predictor look good",
    "no_train_overlap": "an example (a text up to case/spacing/punctuation, an image byte for byte) in both train "
                        "and held-out data inflates scores",
    "drift": "a version unlike the last validated one may need a new model, not a retrained one",
    "skew": "a model meets inputs unlike its training data in production (train/serving skew): adapt, or relabel",
    "label_js": "a shifted label mix changes the prior the model learned",
}
THRESHOLD_KEYS = ("min_value", "max_value", "value_set")


@dataclass(frozen=True)
class Check:
    """One expectation's outcome, in the shape the report and the CLI print."""

    name: str
    table: str
    passed: bool
    risk: str
    observed: Any = None
    threshold: Any = None
    rows: list[int] = field(default_factory=list)
    detail: str = ""
    warning: bool = False

    def line(self, where: str) -> str:
        """One human line for a failed (or warning) check."""
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

    def warnings(self, where: str) -> list[str]:
        """One line per check that passed with a warning (drift between warn and fail)."""
        return [c.line(where) for c in self.checks if c.passed and c.warning]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for metrics/validate.json."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def _structure(df: pd.DataFrame, cfg: Config) -> list[Any]:
    import great_expectations as gx

    ex, v = gx.expectations, cfg.validate_
    column = modalities.get(cfg.data.modality).column
    return [ex.ExpectColumnToExist(column=c, meta={"check": "schema"}) for c in (column, "label")] + [
        ex.ExpectTableRowCountToBeBetween(min_value=v.min_rows, max_value=v.max_rows, meta={"check": "row_count"})]


def _labels_and_leakage(cfg: Config, against_train: bool) -> list[Any]:
    """The checks both modalities share: labels present and known; held-out rows not in train.

    `leaked` holds the example's key (the modality's `key` column) where it also occurs in train (see
    validate_tables): a set lookup in pandas, since an 80k-value `value_set` in GX costs ~15 s per 100k rows.
    """
    import great_expectations as gx

    ex = gx.expectations
    items = [
        ex.ExpectColumnValuesToNotBeNull(column="label", meta={"check": "label_not_null"}),
        ex.ExpectColumnValuesToBeInSet(column="label", value_set=list(cfg.data.labels), meta={"check": "label_in_set"}),
    ]
    if against_train:
        items.append(ex.ExpectColumnValuesToBeNull(column="leaked", meta={"check": "no_train_overlap"}))
    return items


def _classes(df: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, list[Any]]:
    """Per-label row counts (zero when absent) and the expectations on them."""
    import great_expectations as gx

    counts = df["label"].astype(str).value_counts()
    rows = [int(counts.get(lb, 0)) for lb in cfg.data.labels]
    present = [n for n in rows if n] or [1]
    frame = pd.DataFrame({"label": list(cfg.data.labels), "rows": rows,
                          "imbalance_ratio": max(present) / min(present)})
    ex, v = gx.expectations, cfg.validate_
    return frame, [
        ex.ExpectColumnValuesToBeBetween(column="rows", min_value=v.min_rows_per_class,
                                         meta={"check": "min_rows_per_class"}),
        ex.ExpectColumnMaxToBeBetween(column="imbalance_ratio", max_value=v.max_imbalance_ratio,
                                      meta={"check": "imbalance_ratio"}),
    ]


def risk(check: str, cfg: Config) -> str:
    """What a check guards against: the shared ones here, the modality's own from it."""
    return {**RISKS, **modalities.get(cfg.data.modality).risks}[check]


def _rows_cure(table: str, cfg: Config) -> str:
    """What to change when a class has too few rows: the split's size in prepared (or forecast) splits."""
    v = cfg.validate_
    if table == "train":
        return f"raise prepare.train_size ({cfg.prepare.train_size}) or lower validate.min_rows_per_class " \
               f"({v.min_rows_per_class})"
    return f"add rows of these classes, or lower validate.min_rows_per_class ({v.min_rows_per_class})"


def _imbalance_cure(cfg: Config) -> str:
    v = cfg.validate_
    if cfg.train.class_weights == "balanced":
        return f"raise validate.max_imbalance_ratio ({v.max_imbalance_ratio}) if this imbalance is real " \
               "(train.class_weights is already balanced)"
    return f"set train.class_weights: balanced and raise validate.max_imbalance_ratio ({v.max_imbalance_ratio}) " \
           "if this imbalance is real"


def _detail(check: str, column: str, result: dict[str, Any], cfg: Config, table: pd.DataFrame, name: str) -> str:
    """The failure's detail line; where a setting is the cure, it names the setting and its current value."""
    own = modalities.get(cfg.data.modality).message(check, result, cfg.validate_, table)
    if own is not None:
        return own
    counts = result.get("partial_unexpected_counts") or []
    values = [c["value"] for c in counts] or result.get("partial_unexpected_list") or []
    shown = ", ".join(repr(v if not isinstance(v, str) or len(v) < 60 else v[:57] + "...") for v in values[:3])
    n, v = result.get("unexpected_count"), cfg.validate_
    observed = result.get("observed_value")
    knob = {"label": "data.label_column", cfg.data.input_column: f"data.{cfg.data.input_column}_column"}.get(column)
    given = getattr(cfg.data, knob.split(".")[1]) if knob else column
    messages = {
        "schema": lambda: f"required column {given!r} missing (have: {', '.join(map(str, table.columns)) or 'none'})"
                          + (f"; name the file's column in {knob}" if knob else ""),
        "row_count": lambda: f"{observed} rows, expected {v.min_rows} to {v.max_rows} (validate.min_rows, "
                             "validate.max_rows)",
        "label_not_null": lambda: f"{n} row(s) with no label",
        "label_in_set": lambda: f"{n} row(s) with unknown label {shown}; expected one of {cfg.data.labels} "
                                "(add it to data.labels, or drop those rows)",
        "min_rows_per_class": lambda: "class(es) below {} rows: {}; {}".format(v.min_rows_per_class, ", ".join(
            f"{table['label'][i]}={table['rows'][i]}" for i in result.get("partial_unexpected_index_list") or []),
            _rows_cure(name.split(":")[0], cfg)),
        "imbalance_ratio": lambda: f"largest/smallest class is {observed:.1f}, above {v.max_imbalance_ratio}: "
                                   + _imbalance_cure(cfg),
    }
    return messages.get(check, lambda: f"{n} bad row(s), e.g. {shown}")()


def _context(docs: Path | None):
    """An in-memory GX context; with `docs`, it also builds the Data Docs site there."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home from a pipeline step
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # INFO under KFP's executor is noise
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs is not None:
        ctx.add_data_docs_site(site_name="graft", site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(docs).resolve())}})
    return ctx


def _validate(ctx, name: str, items: list[Any], df: pd.DataFrame, docs: bool):
    """Run one suite on one table (through a checkpoint that updates Data Docs when `docs`)."""
    import great_expectations as gx

    batch = ctx.data_sources.add_pandas(name).add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=items))
    definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    if not docs:
        return definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=name, validation_definitions=[definition], result_format="SUMMARY",
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs", site_names=["graft"])]))
    return next(iter(checkpoint.run(batch_parameters={"dataframe": df}).run_results.values()))


def _observed(check: str, kwargs: dict, result: dict, kind: str = "") -> Any:
    """What the report shows as observed: the column for schema, else GX's value or unexpected count.

    A duplicates check measures the share of DISTINCT values (1.0: no duplicates); it is shown under that name, so
    that 1.0 is not read as "all duplicated".
    """
    if check == "schema":
        return kwargs.get("column")
    value = result.get("observed_value", result.get("unexpected_count"))
    if kind == "expect_column_proportion_of_unique_values_to_be_between" and isinstance(value, (int, float)):
        return {"distinct_share": round(float(value), 4)}
    return round(value, 4) if isinstance(value, float) else value


def _run(ctx, phase: str, tables: dict[str, pd.DataFrame], suites: dict[str, list[Any]], cfg: Config,
         docs: bool) -> list[Check]:
    checks: list[Check] = []
    for name, items in suites.items():
        result = _validate(ctx, f"{phase}-{name.replace(':', '-')}", items, tables[name], docs)
        for r in result.results:
            check, res, kwargs = r.expectation_config.meta["check"], r.result or {}, r.expectation_config.kwargs
            checks.append(Check(
                name=check, table=name.split(":")[0], passed=bool(r.success), risk=risk(check, cfg),
                observed=_observed(check, kwargs, res, r.expectation_config.type),
                threshold={k: kwargs[k] for k in THRESHOLD_KEYS if kwargs.get(k) is not None} or None,
                rows=[] if check == "min_rows_per_class" else list(res.get("partial_unexpected_index_list") or []),
                detail="" if r.success else _detail(check, kwargs.get("column", ""), res, cfg, tables[name], name),
            ))
    return checks


def validate_tables(tables: dict[str, pd.DataFrame], cfg: Config, train: str = "train",
                    docs: Path | None = None) -> Report:
    """Validate named tables; `train` names the table class checks apply to and that others must not overlap.

    With `docs`, the Great Expectations Data Docs site of the run is written into that folder.
    """
    ctx = _context(docs)
    checks = _run(ctx, "structure", tables, {name: _structure(df, cfg) for name, df in tables.items()}, cfg, bool(docs))
    if not all(c.passed for c in checks):
        return Report(passed=False, checks=checks)
    modality = modalities.get(cfg.data.modality)
    frames = {name: modality.derived(df) for name, df in tables.items()}
    seen = set(frames[train]["key"].dropna())
    for name, frame in frames.items():
        if name != train:
            frame["leaked"] = frame["key"].where(frame["key"].isin(seen))
    suites = {name: modality.expectations(cfg.validate_) + _labels_and_leakage(cfg, name != train) for name in frames}
    checks += _run(ctx, "content", frames, suites, cfg, bool(docs))
    # Class counts mean something only when every training label is a known one.
    if all(c.passed for c in checks if c.table == train and c.name in ("label_not_null", "label_in_set")):
        name = f"{train}:classes"
        frame, items = _classes(frames[train], cfg)
        checks += _run(ctx, "classes", {name: frame}, {name: items}, cfg, bool(docs))
    return Report(passed=all(c.passed for c in checks), checks=checks)


def _drift_checks(tables: dict[str, pd.DataFrame], cfg: Config) -> tuple[dict, list[Check]]:
    """This version's profile and its drift checks against the previous validated version."""
    prof = drift_store.profile(tables, modalities.get(cfg.data.modality))
    rows = drift_store.compare(prof, drift_store.reference(cfg.validate_.profile_dir, prof["id"]), cfg.validate_.drift)
    return prof, [Check(name=r["name"], table="version", passed=r["status"] != "fail", risk=risk(r["name"], cfg),
                        observed=r["value"], threshold={"warn": r["warn"], "fail": r["fail"]} if r["warn"] else None,
                        detail=r["why"], warning=r["status"] == "warn") for r in rows]


def _skew_checks(train: pd.DataFrame, target: pd.DataFrame, cfg: Config) -> list[Check]:
    """The label-free skew measures of the training split against the target domain's inputs."""
    modality = modalities.get(cfg.data.modality)
    rows = drift_store.skew(modality.examples(train), modality.examples(target), modality, cfg.validate_.skew)
    return [Check(name=r["name"], table="target", passed=r["status"] != "fail", risk=risk("skew", cfg),
                  observed=r["value"], threshold={"warn": r["warn"], "fail": r["fail"]}, detail=r["why"],
                  warning=r["status"] == "warn") for r in rows]


def run(tables: dict[str, pd.DataFrame], cfg: Config, where: str, train: str = "train",
        report: str | Path | None = None, docs: str | Path | None = None, drift: bool = True,
        target: pd.DataFrame | None = None) -> Report:
    """The stage as the orchestrators call it: the suite, then drift; write the JSON report and the docs folder.

    A version that passes is added to the profile store, so the next version is compared with it. `drift=False`
    checks a file on its own (`graft validate --data`), without comparing it or storing it. `target` (the target
    domain's unlabeled inputs) adds the train/serving skew measures.
    """
    from contextlib import nullcontext

    with atomic_dir(docs) if docs else nullcontext() as site:
        result = validate_tables(tables, cfg, train, site)
        if drift and result.passed:
            prof, extra = _drift_checks(tables, cfg)
            if target is not None:
                extra += _skew_checks(tables[train], target, cfg)
            result = Report(passed=all(c.passed for c in extra), checks=result.checks + extra)
        if report:
            outputs.write(report, "validate", result.to_dict())
        if site:
            docs_offline.localize(site)  # GX's pages load their CSS and scripts from CDNs: serve them from the site
            (site / "summary.html").write_text(validation_html(result.to_dict(), where, site))
    if drift and result.passed:
        drift_store.save(prof, cfg.validate_.profile_dir)
    return result


def forecast(table: pd.DataFrame, cfg: Config) -> tuple[Report, dict[str, pd.DataFrame]]:
    """What `prepare` would make of a raw table with the configured sizes, validated as the `validate` stage would.

    The table goes through the stage's own clean, cut-off and split (the same seed gives the same rows), so a class
    too small for the training sample fails here, before anything trains. A class with no test row is a warning:
    the stage accepts it, but its score cannot be measured.
    """
    from graft.data import prepare

    splits = prepare.split(prepare.up_to(prepare.clean(table, cfg.data.modality), cfg.data.cutoff), cfg)
    report = validate_tables(splits, cfg)
    if report.passed:
        missing = [lb for lb in cfg.data.labels if not (splits["test"]["label"].astype(str) == lb).any()]
        if missing:
            report.checks.append(Check(
                name="test_rows_per_class", table="test", passed=True, warning=True, observed=0,
                risk="a class with no test row has no measured score",
                detail=f"no test row of {', '.join(missing)}; raise prepare.test_size ({cfg.prepare.test_size})"))
    return report, splits

