"""Outputs of the release stages: explain, export and gate."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from graft.core.outputs.base import Interval, Output


class Faithfulness(Output):
    """One model's attributions, tested: the deletion test, IG's completeness, how concentrated they are."""

    items: int
    fraction: float = Field(description="share of each input's units deleted")
    top_drop: float = Field(description="mean drop of the explained class probability, top-attributed units deleted")
    random_drop: float = Field(description="the same with as many random units deleted")
    ratio: float | None = Field(description="top_drop / random_drop (None: the random drop is not positive)")
    ratio_ci: list[float | None] = Field(description="its 95% bootstrap interval over items")
    difference: Interval = Field(description="top_drop - random_drop, with its 95% bootstrap interval")
    completeness: dict[str, float | None] = Field(description="bound, share of items within it, median and max "
                                                  "|convergence delta|")
    concentration: float | None = Field(description="mean share of |attribution| held by the top units")


class Shortcut(Output):
    """A kind of artefact that carries a large share of one class's positive attribution: a possible shortcut."""

    label: str = Field(description="the predicted class whose evidence it carries")
    kind: str = Field(description="url, handle, markup (texts); border (images)")
    share: float = Field(description="its share of the class's positive attribution over the explained inputs")
    inputs: int = Field(description="explained inputs of that class where it occurs")
    units: list[str] = Field(description="the units that carry it, most attribution first")
    hint: str = Field(description="what to do about it")


class ExplainOutput(Output):
    """metrics/explain.json: attributions of a test sample by the model that goes on, and their faithfulness."""

    model: str = Field(description="source_only or adapted: the model evaluate chose")
    folder: str
    why: str
    method: str
    modality: str
    steps: int
    seed: int
    labels: list[str]
    rows: dict[str, int] = Field(description="test rows, explained, misclassified among them")
    faithfulness: dict[str, Faithfulness] = Field(description="model, and scratch (the anchor)")
    evidence: dict[str, Any] = Field(description="per predicted class: top words (texts) or the mean heat-map")
    shortcuts: list[Shortcut] = Field(default_factory=list, description="artefacts (URL pieces, @handles, markup; "
                                      "image borders) holding explain.shortcut_share or more of a class's evidence")
    examples: list[dict[str, Any]] = Field(description="records shown in the reports, misclassified first")
    seconds: float


class Parity(Output):
    """An ONNX model against PyTorch on the whole test split."""

    max_abs_diff: float
    agreement: float
    accuracy: float
    macro_f1: float


class ExportOutput(Output):
    """metrics/export.json: the ONNX package's parity, size and latency, measured on the test split."""

    torch: dict[str, float]
    rows: int
    fp32: Parity
    int8: Parity
    size_mb: dict[str, float]
    latency_ms: dict[str, dict[str, float]] | None = None
    opset: int


class GateCheck(Output):
    """One check of the promotion policy."""

    name: str
    value: float
    threshold: Any
    ci_low: float | None
    ci_high: float | None
    passed: bool
    why: str
    baseline: str | None = Field(None, description="transfer_benefit: the no-transfer model compared with (the best "
                                 "of scratch and classical)")
    blocking: bool = Field(True, description="false: the check decides something (adaptation_benefit: which model "
                           "goes on) without refusing the promotion")


class InfraValidation(Output):
    """What infra-validation measured: the candidate started as `graft serve` and sent test rows over V2."""

    passed: bool
    why: str
    precision: str = Field(description="the ONNX model served: fp32 or int8 (gate.serve)")
    rows: int = Field(description="test rows sent, one request each")
    answered: int
    agree: int = Field(description="answers whose label is the one `graft predict` gives")
    max_abs_diff: float | None = Field(None, description="largest |logit| difference from `graft predict`")
    latency_ms: dict[str, float] | None = Field(None, description="p50, p95 and max of the request latencies")
    ready_s: float | None = Field(None, description="seconds from starting the server to its readiness")
    seconds: float | None = Field(None, description="the whole validation, start to stop")


class GateOutput(Output):
    """metrics/gate.json: the verdict, one sentence per failed check, and what the registry did."""

    passed: bool
    reasons: list[str]
    checks: list[GateCheck]
    chosen: str | None = Field(None, description="with a target domain: source_only or adapted, and why")
    notes: list[str] = Field(default_factory=list, description="plain-words decisions that are not refusals")
    registered: dict[str, Any] | None = None
    recorded_run: str | None = None
    promotion_error: str | None = Field(None, description="the checks passed but the registry step failed: what "
                                        "happened (the alias did not move)")
    infra_validation: InfraValidation | None = None
