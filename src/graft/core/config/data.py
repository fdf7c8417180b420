"""Config sections of the data stages: where the data comes from, how it is split, how it is validated."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from graft.core.config.base import Section


class TargetConfig(Section):
    """The target domain: the inputs the model will serve, unlabeled, and optionally a small labeled test set."""

    raw: str = Field(description="Unlabeled target-domain inputs in a format data.raw accepts (an export of "
                     "production requests, a new month of data); a label column, if present, is ignored.")
    test: str | None = Field(None, description="A small LABELED target-domain test set (same format, labels from "
                             "data.labels): the only way to prove that adaptation helps. Its rows are kept out of "
                             "the unlabeled pool and out of training.")


class DataConfig(Section):
    """Where the labeled data comes from and how its columns are named."""

    modality: str = Field(
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

    target: TargetConfig | None = Field(
        None, description="The target domain (docs/adaptation.md): skew is measured against it, "
        "train.adapt uses its inputs, and evaluate/gate judge on its labeled test set. Unset: no target domain.")

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


class SkewBound(Section):
    """Warn above `warn`; above `fail` (null: never) the run stops."""

    warn: float = Field(ge=0)
    fail: float | None = Field(None, ge=0)


class SkewConfig(Section):
    """Train/serving skew: the training split against data.target's unlabeled inputs (no labels needed)."""

    length_psi: DriftBound = Field(DriftBound(warn=0.1, fail=1.0), description="Population stability index of the "
                                   "modality's shape measure (text lengths, image brightness), train vs target.")
    oov_rate: DriftBound = Field(DriftBound(warn=0.15, fail=0.6), description="Share of target word occurrences "
                                 "the training texts never had.")
    domain_auc: SkewBound = Field(SkewBound(warn=0.8), description="AUC of a domain classifier on the selected "
                                  "backbone's frozen features (select): 0.5 is no skew, 1.0 separable.")


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
    skew: SkewConfig = SkewConfig()
