"""Typed configuration loaded from params.yaml: one section per stage, validated on load.

params.yaml is the single source of every knob. DVC stages list the sections they read under `params:`; the KFP
pipeline receives the same mapping as its `config` parameter and validates it with the same models.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graft.errors import GraftError


class Section(BaseModel):
    """Base for every section: unknown keys are errors, so a typo in params.yaml never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Section):
    """Where the labeled data comes from and how its columns are named."""

    modality: Literal["text", "image"] = Field(
        "text", description="What one example is: a text, or an image (PNG/JPEG/BMP/GIF/WebP bytes). Every stage "
        "reads it; the backbones in select.candidates must be of the same modality.")
    raw: str = Field(description="Path of the raw data, tracked by data.dvc: a table (.tab, .csv, .tsv, .jsonl, "
                     ".parquet) or, for images, a folder of class folders (`root/<label>/*.png`) or a Parquet "
                     "table whose image column holds the encoded file bytes.")
    image_column: str = Field("image", description="Column holding the encoded image bytes (image modality).")
    text_column: str = Field("text", description="Column holding the input text in the raw table.")
    label_column: str = Field("label", description="Column holding the class label in the raw table.")
    time_column: str | None = Field(None, description="Optional timestamp column, kept as `time`.")
    split_column: str = Field(
        "split", description="Optional column assigning each row to train/validation/test; when the file has it, "
                             "prepare keeps that assignment instead of splitting at random.")
    labels: list[str] = Field(min_length=2, description="The expected label set; anything else is invalid.")
    cutoff: date | None = Field(
        None, description="Keep rows whose time is on or before this day (YYYY-MM-DD); moving it forward "
                          "simulates new data arriving. Needs time_column.")

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("data.labels has duplicates")
        if self.cutoff and not self.time_column:
            raise ValueError("data.cutoff needs data.time_column")
        return self

    @property
    def input_column(self) -> str:
        """The column graft's tables hold one example in: `text` or `image`."""
        return self.modality


Size = int | float | Literal["all"]


class PrepareConfig(Section):
    """How the clean table is split: a size >= 1 is a row count, one in (0, 1) a fraction of the rows left."""

    test_size: Size = Field(1000, description="Held-out test rows (or fraction), frozen by the seed.")
    validation_size: Size = Field(250, description="Validation rows (or fraction of the rest).")
    train_size: Size = Field(500, description="Training rows (or fraction of the rest); `all` keeps the rest.")

    @field_validator("test_size", "validation_size", "train_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        # KFP passes parameters through a protobuf Struct, which turns 500 into 500.0: whole numbers are counts.
        if isinstance(v, float) and v >= 1:
            if not v.is_integer():
                raise ValueError(f"{v} is neither a row count (whole number) nor a fraction below 1")
            return int(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
            raise ValueError("must be positive")
        return v


class DriftBound(Section):
    """Warn above `warn`, fail validation above `fail`."""

    warn: float = Field(ge=0)
    fail: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DriftBound:
        if self.warn > self.fail:
            raise ValueError("warn must not exceed fail")
        return self


class DriftConfig(Section):
    """Drift of a data version against the previous validated one."""

    label_js: DriftBound = Field(DriftBound(warn=0.02, fail=0.1),
                                 description="Jensen-Shannon divergence (base 2) of the label mix.")
    length_psi: DriftBound = Field(DriftBound(warn=0.1, fail=0.25),
                                   description="Population stability index of text lengths (characters).")
    oov_rate: DriftBound = Field(DriftBound(warn=0.15, fail=0.3),
                                 description="Share of word occurrences absent from the previous version.")


class ValidateConfig(Section):
    """Thresholds of the data checks (each check's risk is documented in graft/validate.py)."""

    min_rows: int = Field(20, ge=1, description="Fewest rows a table (each split) may have.")
    max_rows: int = Field(10_000_000, ge=1, description="Most rows a table may have (a runaway export).")
    min_rows_per_class: int = Field(10, ge=1, description="Each expected label needs at least this many rows.")
    max_imbalance_ratio: float = Field(
        10.0, ge=1, description="Largest class / smallest present class, in the training table.")
    max_duplicate_fraction: float = Field(
        0.05, ge=0, le=1, description="Share of rows that may repeat an earlier text (exact, then normalized).")
    min_text_chars: int = Field(1, ge=1, description="Shortest non-blank text accepted, in characters.")
    max_text_chars: int = Field(20_000, ge=1, description="Longest text accepted, in characters.")
    min_image_side: int = Field(8, ge=1, description="Smallest image height or width accepted, in pixels.")
    max_image_side: int = Field(4096, ge=1, description="Largest image height or width accepted, in pixels.")
    profile_dir: str = Field("data/profiles", description="Where each validated version's profile is kept.")
    drift: DriftConfig = DriftConfig()


class Candidate(Section):
    """A pretrained backbone that selection may pick."""

    name: str = Field(description="Unique name used in reports and the registry.")
    source: str = Field(
        description="`pkg:<module>` (an installed package exposing get_model_path()), a local folder, "
        "or a hub model id (only where a hub is reachable)."
    )
    num_layers: int | None = Field(None, ge=1, description="Keep only the first k transformer layers.")
    modality: Literal["text", "image"] = Field("text", description="What the backbone reads.")
    arch: str | None = Field(None, description="Image backbones: the architecture the weights file belongs to "
                             "(efficientnet-lite0 .. lite4); default: read from the package name.")

    @field_validator("source")
    @classmethod
    def _path_exists(cls, v: str) -> str:
        # A source written as a path must exist now: a typo is a config error, not a failed hub download later.
        if v.startswith(("/", "./", "../", "~")) and not Path(v).expanduser().exists():
            raise ValueError(f"backbone path {v!r} does not exist")
        return v


class SelectConfig(Section):
    """Backbone candidates, how their transferability is scored, and the budgets they must fit."""

    candidates: list[Candidate] = Field(min_length=1)
    sample_size: int = Field(500, ge=10, description="Stratified training rows used for the scores.")
    cv_folds: int = Field(5, ge=2, description="Cross-validation folds of the linear probe.")
    rank_by: Literal["logme", "probe_accuracy"] = Field("logme", description="The score that orders candidates.")
    max_params: int | None = Field(None, ge=1, description="Exclude backbones with more parameters.")
    max_latency_ms_batch1: float | None = Field(
        None, gt=0, description="Exclude backbones slower than this per example at batch 1 (measured here).")
    max_latency_ms_batch32: float | None = Field(
        None, gt=0, description="Exclude backbones slower than this per example at batch 32 (measured here).")
    feature_cache: str | None = Field(
        ".cache/features", description="Folder of pooled features cached by content hash (reused by selection "
        "reruns and feature-extraction training); null disables it.")

    @model_validator(mode="after")
    def _unique_names(self) -> SelectConfig:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError("select.candidates names must be unique")
        return self


class SelfcheckConfig(Section):
    """The audit of selection: fine-tune the top-N eligible candidates and compare test scores with the ranking."""

    top_n: int = Field(1, ge=1, description="Fine-tune this many of the best-ranked eligible candidates (1: only "
                       "the selected one, no audit; >= 2: Kendall's tau of predicted vs real rank in evaluate).")
    metric: Literal["accuracy", "macro_f1"] = Field("macro_f1", description="Test score that ranks them.")


class TrainConfig(Section):
    """The training budget and recipe, shared by the fine-tuned run and the scratch baseline (fair by construction)."""

    mode: Literal["finetune", "feature_extraction", "partial"] = Field(
        "finetune", description="finetune: everything trains; feature_extraction: the backbone is frozen, its "
        "features computed once (cached by content) and only the head trains; partial: the top `unfreeze_top` "
        "blocks and the head train.")
    unfreeze_top: int = Field(2, ge=0, description="partial mode: how many of the top transformer blocks train.")
    max_length: int = Field(64, ge=8, description="Tokens per text (truncated beyond).")
    image_size: int = Field(128, ge=16, description="Images are resized to this square size (pixels) before the "
                            "backbone; grey images are repeated to 3 channels and scaled as (x - 127) / 128.")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1)
    grad_accum_steps: int = Field(1, ge=1, description="Batches per optimizer step (effective batch = product).")
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="sgd uses `momentum`.")
    momentum: float = Field(0.9, ge=0, lt=1)
    learning_rate: float = Field(5e-5, gt=0)
    head_learning_rate: float | None = Field(
        None, gt=0, description="The new head's learning rate (default: learning_rate); a frozen backbone wants "
        "a larger one, e.g. 1e-3.")
    layer_lr_decay: float = Field(
        1.0, gt=0, le=1, description="Layer-wise learning-rate decay: the head trains at lr, block i of L "
        "(1 = bottom) at lr * decay^(L-i+1), the embeddings at lr * decay^(L+1) (1.0: off).")
    weight_decay: float = Field(0.01, ge=0)
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after the warmup.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Fraction of steps with linear warmup.")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="balanced: weight each class's loss by n / (k * count), from the training split.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the linear head.")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many epochs without a better validation macro-F1 (null: never). "
        "The best epoch's weights are what is saved, either way.")
    checkpoint_every_steps: int | None = Field(
        None, ge=1, description="Write a resumable checkpoint every N optimizer steps (null: every epoch).")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast where the hardware has native bf16 (AVX512-BF16/AMX, or a "
        "bf16-capable GPU), fp32 otherwise.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    threads: int | None = Field(None, ge=1, description="CPU threads (null: the cores this process may use).")


class CurveConfig(Section):
    """The data-efficiency experiment: pretrained and scratch trained at several training-set sizes."""

    sizes: list[int] = Field([50, 100, 200, 500, 1000, 2000], min_length=1,
                             description="Labeled training examples per point (nested: each set holds the smaller).")

    @field_validator("sizes")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(n < 2 for n in v):
            raise ValueError("every size needs at least 2 examples")
        return v


class MultitaskConfig(Section):
    """The multi-task demo (`graft multitask`): 20 Newsgroups, newsgroup and top-level hierarchy as two tasks."""

    backbone: str = Field("minilm-l6-first3", description="A select.candidates name.")
    train_size: int = Field(1000, ge=20)
    validation_size: int = Field(250, ge=20)
    test_size: int = Field(1000, ge=20)
    max_length: int = Field(128, ge=8, description="Tokens per post (they are long).")
    epochs: int = Field(4, ge=1)
    weights: dict[str, float] = Field({"newsgroup": 1.0, "topic": 0.5},
                                      description="Loss weight per task in the multi-task run.")


class EvaluateConfig(Section):
    """Evaluation settings."""

    batch_size: int = Field(64, ge=1)
    bootstrap_resamples: int = Field(
        1000, ge=100, description="Paired-bootstrap resamples behind each confidence interval (seeded).")


class ExportConfig(Section):
    """ONNX export settings."""

    opset: int = Field(17, ge=13)
    batch_size: int = Field(64, ge=1, description="Batch size of the parity run on the test split.")


class GateConfig(Section):
    """The promotion policy."""

    min_macro_f1: float = Field(0.8, ge=0, le=1, description="Floor on the fine-tuned test macro-F1.")
    min_margin_over_scratch: float = Field(
        0.02, description="The lower 95% bound of fine-tuned minus scratch macro-F1 must reach this (transfer "
        "benefit); an upper bound below zero is a NEGATIVE TRANSFER verdict.")
    max_regression: float = Field(
        0.01, ge=0, description="The lower 95% bound of candidate minus champion macro-F1 may go down to minus this "
        "(non-regression), both re-scored on the current test split.")
    first_run: Literal["promote", "refuse"] = Field(
        "promote", description="With no champion yet: promote when every other check passes, or refuse (a person "
        "promotes the first model).")
    min_onnx_agreement: float = Field(0.999, ge=0, le=1, description="fp32 ONNX vs PyTorch label agreement.")
    max_onnx_logit_diff: float = Field(1e-4, gt=0, description="Largest |logit| difference, fp32 ONNX vs PyTorch.")
    max_onnx_accuracy_delta_pt: float = Field(
        0.1, ge=0, description="fp32 ONNX test accuracy within this many points of PyTorch's.")
    max_int8_accuracy_drop_pt: float = Field(
        0.5, ge=0, description="int8 ONNX test accuracy at most this many points below the fp32 ONNX model's.")
    serve: Literal["fp32", "int8"] = Field("fp32", description="The ONNX model you deploy: the budgets apply to it.")
    max_model_mb: float | None = Field(None, gt=0, description="Size budget of the served ONNX model file (MB).")
    max_latency_ms_p95: float | None = Field(
        None, gt=0, description="Latency budget: p95 of one ONNX Runtime call at batch 1 on real test rows (ms), "
        "measured by `export` on the machine that ran it (null: no latency check).")


class TaskResources(Section):
    """Kubernetes requests and limits of one pipeline task (quantities as in a pod spec)."""

    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "2G"
    memory_limit: str = "6G"


class Toleration(Section):
    """A pod toleration (as in a pod spec)."""

    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class KubeflowConfig(Section):
    """How the compiled pipeline runs on a cluster; read when compiling (`make kfp-compile`), not by kfp.local."""

    resources: dict[str, TaskResources] = Field(
        {"default": TaskResources(), "train": TaskResources(cpu_request="2", cpu_limit="8", memory_request="6G",
                                                            memory_limit="12G")},
        description="Per task name; `default` for the others.")
    gpu_for_training: bool = Field(False, description="Give train, baseline and selfcheck one accelerator each.")
    accelerator_type: str = Field("nvidia.com/gpu", description="The accelerator resource of gpu_for_training.")
    cache_pvc: str | None = Field("graft-cache", description="PVC mounted on every task (infra/k8s/pvc.yaml): "
                                  "point data.raw, validate.profile_dir and select.feature_cache into it.")
    cache_mount: str = Field("/mnt/graft", description="Where cache_pvc is mounted.")
    mlflow_secret: str | None = Field("graft-mlflow", description="Secret whose keys (MLFLOW_TRACKING_URI, "
                                      "credentials) become environment variables of the tasks that use MLflow.")
    node_selector: dict[str, str] = Field({}, description="Node labels every task must match.")
    tolerations: list[Toleration] = Field([], description="Taints every task tolerates.")


class RegistryConfig(Section):
    """Where promoted models go (MLflow model registry)."""

    tracking_uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI; the MLFLOW_TRACKING_URI env variable wins."
    )
    artifact_location: str = Field("mlartifacts", description="Artifact root for a new experiment.")
    experiment: str = Field("graft")
    model_name: str = Field("graft-text")
    alias: str = Field("champion")


class Config(Section):
    """The whole params.yaml."""

    seed: int = 42
    data: DataConfig
    prepare: PrepareConfig = PrepareConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    select: SelectConfig
    selfcheck: SelfcheckConfig = SelfcheckConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    curve: CurveConfig = CurveConfig()
    multitask: MultitaskConfig = MultitaskConfig()
    export: ExportConfig = ExportConfig()
    gate: GateConfig = GateConfig()
    registry: RegistryConfig = RegistryConfig()
    kubeflow: KubeflowConfig = KubeflowConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_modality(self) -> Config:
        other = [c.name for c in self.select.candidates if c.modality != self.data.modality]
        if other:
            raise ValueError(f"data.modality is {self.data.modality}, but candidate(s) {', '.join(other)} are not")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the mapping as written in params.yaml (unset optional fields left out, as KFP needs)."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Validate a params mapping; raise GraftError naming the first bad field."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise GraftError(f"{source}: {where}: {err['msg']}") from None


def load(path: str | Path) -> Config:
    """Load and validate params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise GraftError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GraftError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise GraftError(f"{path}: expected a mapping of sections")
    return from_dict(raw, str(path))
