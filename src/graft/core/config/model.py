"""Config sections of the model stages: backbone candidates, selection, its audit and the training recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from graft.core.config.base import Section


class Candidate(Section):
    """A pretrained backbone that selection may pick."""

    name: str = Field(description="Unique name used in reports and the registry.")
    source: str = Field(
        description="`pkg:<module>` (an installed package exposing get_model_path()), a local folder, "
        "or a hub model id (only where a hub is reachable)."
    )
    num_layers: int | None = Field(None, ge=1, description="Keep only the first k transformer layers.")
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


class AdaptConfig(Section):
    """The knobs of the domain-adaptation methods (`train.adapt`); docs/adaptation.md."""

    max_target_ratio: float = Field(2.0, gt=0, description="every method: at most this many target inputs per "
                                    "source training row (a seeded sample of a larger pool); bounds the cost.")
    dann_weight: float = Field(1.0, gt=0, description="dann: the gradient-reversal coefficient it warms up to "
                               "(lambda = weight * (2 / (1 + exp(-10 p)) - 1), p the share of steps done).")
    discriminator_hidden: int = Field(256, ge=8, description="dann: hidden width of the domain discriminator.")
    discriminator_learning_rate: float = Field(1e-3, gt=0, description="dann: the discriminator's learning rate.")
    pseudo_threshold: float = Field(0.9, gt=0, lt=1, description="self_training: a target input gets a pseudo-"
                                    "label only when the model's top class probability is at least this.")
    rounds: int = Field(2, ge=1, le=5, description="self_training: pseudo-label / retrain rounds.")
    max_pseudo_ratio: float = Field(0.5, gt=0, description="self_training: at most this many pseudo-labels per "
                                    "source training row in a round (the most confident, per class).")
    round_epochs: int = Field(1, ge=1, description="self_training: epochs on source + pseudo-labeled target per "
                              "round.")
    round_learning_rate_scale: float = Field(0.5, gt=0, le=1, description="self_training: a round trains at "
                                             "this share of learning_rate, decaying linearly to 0.")
    tapt_epochs: int = Field(1, ge=1, description="tapt: epochs of masked-LM training on target + training texts.")
    mask_probability: float = Field(0.15, gt=0, lt=1, description="tapt: share of tokens masked (80% [MASK], "
                                    "10% a random token, 10% unchanged).")


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
        "auto", description="auto: bf16 where the hardware has native bf16 (AVX512-BF16/AMX, or a bf16-capable "
        "GPU), fp32 otherwise. In bf16 one training process steps a bf16 copy of the model under autocast while "
        "the optimizer, checkpoints and the saved model keep fp32 master weights.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    threads: int | None = Field(None, ge=1, description="CPU threads (null: the cores this process may use).")
    adapt: Literal["none", "adabn", "dann", "self_training", "tapt"] = Field(
        "none", description="Domain adaptation to data.target's unlabeled inputs: adabn (batch-norm statistics "
        "re-estimated on the target), dann (domain-adversarial training), self_training (confident, class-balanced "
        "pseudo-labels), tapt (texts: masked-LM on the target texts first). The source-only model is trained "
        "beside it with the same budget.")
    adaptation: AdaptConfig = AdaptConfig()
