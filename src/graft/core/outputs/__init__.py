"""Typed stage outputs: every metrics file a stage writes and another stage (or the report) reads.

Each file is written through its model (`write`) and validated when read (`read`), so a corrupt, truncated or
old-format file stops the reader with one line naming the file and the field, never a `KeyError` three modules
later. docs/contracts.md is generated from these models (`contracts_markdown`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from graft.core.artifacts import read_json, write_json
from graft.core.errors import GraftError
from graft.core.outputs.base import Interval, Output
from graft.core.outputs.release import ExplainOutput, ExportOutput, Faithfulness, GateCheck, GateOutput, Parity

__all__ = ["ExplainOutput", "ExportOutput", "Faithfulness", "GateCheck", "GateOutput", "Interval", "KINDS", "Output",
           "Parity", "contracts_markdown", "read", "validated", "write"]


class Check(Output):
    """One data check's outcome."""

    name: str
    table: str
    passed: bool
    risk: str = Field(description="what the check guards against")
    observed: Any = None
    threshold: Any = None
    rows: list[int] = []
    detail: str = ""
    warning: bool = False


class ValidateOutput(Output):
    """metrics/validate.json: every Great Expectations check and drift measure of one validation run."""

    passed: bool
    checks: list[Check]


class Ranked(Output):
    """One backbone candidate as selection scored it."""

    name: str
    source: str
    num_layers: int | None
    logme: float
    probe_accuracy: float
    params: int
    latency_ms: dict[str, float] = Field(description="ms per example at batch_1 and batch_32, fp32 on this CPU")
    eligible: bool
    reason: str


class FeatureCounts(Output):
    """How many pooled feature vectors selection computed, and how many came from the cache."""

    computed: int
    cached: int


class Skew(Output):
    """A domain classifier on pooled features: training inputs (0) against target inputs (1)."""

    auc: float
    error: float
    proxy_a_distance: float = Field(description="2 (1 - 2 error): 0 indistinguishable, 2 separable")
    per_domain: int
    folds: int
    backbone: str | None = None
    status: str | None = None
    why: str | None = None
    projection: dict[str, Any] | None = Field(None, description="2-D PCA of both feature sets, for the report")


class SelectOutput(Output):
    """metrics/select.json: the ranking (eligible first, best first) and the selected backbone."""

    ranking: list[Ranked]
    selected: str
    rank_by: str
    sample_rows: int
    seconds: float
    features: FeatureCounts
    skew: Skew | None = Field(None, description="with data.target: training vs target inputs on the selected backbone")


class Resumed(Output):
    """Where a resumed run picked up."""

    epoch: int
    batch: int
    step: int


class TrainOutput(Output):
    """metrics/train.json and metrics/baseline.json: one training run (the best epoch is what was saved)."""

    init_from: str
    mode: str
    backbone: str
    train_rows: int
    seconds: float
    examples_per_second: float
    device: str
    precision: str
    threads: int
    optimizer_steps: int
    best_epoch: int
    val_accuracy: float
    val_macro_f1: float
    resumed_from: Resumed | None
    stopped_early: bool
    features_computed: int
    workers: int
    adaptation: dict[str, Any] | None = Field(None, description="train.adapt's report: the method and what it did "
                                              "(none: the source-only model)")
    history: list[dict[str, Any]] = Field(description="one row per epoch: losses, accuracies, seconds")


class AdaptOutput(Output):
    """metrics/adapt.json: the adapted model (train.adapt) trained beside the source-only one, or why there is none."""

    method: str
    note: str
    run: TrainOutput | None = None


class RunnerUp(Output):
    """One fine-tuned runner-up of the selfcheck."""

    name: str
    predicted_rank: int
    seconds: float
    val_accuracy: float
    val_macro_f1: float


class SelfcheckOutput(Output):
    """metrics/selfcheck.json: the runners-up of selection that were fine-tuned to audit the ranking."""

    top_n: int
    trained: list[RunnerUp]


class Scores(Output):
    """One model's scores on the test split."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    rows: int
    ece: float | None = None
    roc: dict[str, Any] | None = None
    method: str | None = Field(None, description="the classical baseline: what it is")


class McNemar(Output):
    """McNemar's exact test on the rows where exactly one model is right."""

    a_right_b_wrong: int
    a_wrong_b_right: int
    p_value: float


class Comparison(Output):
    """Two models on the same test rows."""

    accuracy: Interval
    macro_f1: Interval
    mcnemar: McNemar


class Champion(Output):
    """The registry's champion, re-scored on this test split (or the first-run note)."""

    version: int | None
    first_run: bool
    note: str
    comparable: bool | None = None
    scores: Scores | None = None


class AuditRow(Output):
    """A fine-tuned candidate's predicted rank beside its real test score."""

    model_config = ConfigDict(extra="allow")  # carries the ranking score under its own name (logme, probe_accuracy)

    name: str
    predicted_rank: int
    test_accuracy: float
    test_macro_f1: float
    test_rank: int


class Audit(Output):
    """The selfcheck's verdict on selection: Kendall's tau of predicted rank vs real test score."""

    metric: str
    candidates: list[AuditRow]
    kendall_tau: float | None
    p_value: float | None
    note: str


class Domains(Output):
    """evaluate.json `domains`: the models on the source test split and the labeled target test, compared."""

    method: str = Field(description="train.adapt (none: no adapted model, only the target test)")
    source: dict[str, Scores] = Field(description="source_only, adapted, scratch, classical on the source test")
    target: dict[str, Scores] | None = Field(None, description="the same on the labeled target test (data.target.test)")
    comparisons: dict[str, dict[str, Comparison]] = Field(
        description="per domain: adapted_vs_source_only, {source_only,adapted}_vs_{scratch,classical}")
    rows: dict[str, int]
    chosen: str = Field(description="source_only or adapted: the model export packages and the gate judges")
    why: str
    proven: bool = Field(description="adaptation was proven on a labeled target test (false without one)")
    skew: dict[str, Skew] | None = Field(None, description="source_only and adapted: the domain classifier on each "
                                         "model's features, training vs target inputs (before / after adaptation)")


class EvaluateOutput(Output):
    """metrics/evaluate.json: fine-tuned, scratch, classical and champion on one test split, compared."""

    finetune: Scores
    scratch: Scores
    classical: Scores
    champion: Champion
    comparisons: dict[str, Comparison] = Field(description="finetune_vs_scratch, _vs_classical, _vs_champion")
    labels: list[str]
    selfcheck: Audit | None = None
    domains: Domains | None = None
    training: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="each model's per-epoch history (finetune, scratch, adapted), as its folder "
        "recorded it; the gate logs it to the MLflow run with the epoch as the step")


KINDS: dict[str, type[Output]] = {"validate": ValidateOutput, "select": SelectOutput, "train": TrainOutput,
                                  "baseline": TrainOutput, "adapt": AdaptOutput, "selfcheck": SelfcheckOutput,
                                  "evaluate": EvaluateOutput, "explain": ExplainOutput, "export": ExportOutput,
                                  "gate": GateOutput}


def _where(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"]) or "<root>"


def validated(kind: str, payload: Any, source: str) -> dict:
    """`payload` checked against the model of `kind`; a mismatch is a GraftError naming `source` and the field."""
    try:
        return KINDS[kind].model_validate(payload).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise GraftError(f"{source}: not a valid {kind} output: {_where(err)}: {err['msg']} (rerun the `{kind}` "
                         "stage)") from None


def write(path: str | Path, kind: str, payload: Any) -> dict:
    """Validate a stage's result against its model, then write it atomically; return what was written."""
    checked = validated(kind, payload, f"{kind} stage result")
    write_json(path, checked)
    return checked


def read(path: str | Path, kind: str) -> dict:
    """Read a stage's output file and validate it (a one-line GraftError naming the file and field if it is off)."""
    return validated(kind, read_json(path), str(path))


def contracts_markdown() -> str:
    """The contracts page (docs/contracts.md): each output file, its fields and their types."""
    lines = []
    for kind, model in KINDS.items():
        if kind == "baseline":
            continue
        lines += [f"- **{model.__doc__.splitlines()[0]}**", ""]
        for name, field in model.model_fields.items():
            kind_of = re.sub(r"graft\.core\.outputs\.(\w+\.)?", "", str(field.annotation).replace("typing.", ""))
            note = f" — {field.description}" if field.description else ""
            lines.append(f"  - `{name}`: `{kind_of}`{note}")
        lines.append("")
    return "\n".join(lines)
