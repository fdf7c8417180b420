"""Typed configuration loaded from params.yaml: one section per stage, validated on load.

params.yaml is the single source of every knob. DVC stages list the sections they read under `params:`; the KFP
pipeline receives the same mapping as its `config` parameter and validates it with the same models. The sections
live by concern in `data`, `model` and `release`; everything is re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError

from graft.core.config.base import Section
from graft.core.config.data import (
    DataConfig,
    DriftBound,
    DriftConfig,
    PrepareConfig,
    Size,
    SkewBound,
    SkewConfig,
    TargetConfig,
    ValidateConfig,
)
from graft.core.config.model import AdaptConfig, Candidate, SelectConfig, SelfcheckConfig, TrainConfig
from graft.core.config.release import (
    CurveConfig,
    DomainFloor,
    EvaluateConfig,
    ExplainConfig,
    ExportConfig,
    GateConfig,
    KubeflowConfig,
    MultitaskConfig,
    RegistryConfig,
    ServeConfig,
    TaskResources,
    Toleration,
)
from graft.core.errors import GraftError

__all__ = ["AdaptConfig", "Candidate", "Config", "CurveConfig", "DataConfig", "DomainFloor", "DriftBound",
           "DriftConfig", "EvaluateConfig", "ExplainConfig", "ExportConfig", "GateConfig", "KubeflowConfig",
           "MultitaskConfig", "PrepareConfig", "RegistryConfig", "Section", "SelectConfig", "SelfcheckConfig",
           "ServeConfig", "Size", "SkewBound",
           "SkewConfig", "TargetConfig", "TaskResources", "Toleration", "TrainConfig", "ValidateConfig",
           "from_dict", "load"]


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
    explain: ExplainConfig = ExplainConfig()
    curve: CurveConfig = CurveConfig()
    multitask: MultitaskConfig = MultitaskConfig()
    export: ExportConfig = ExportConfig()
    gate: GateConfig = GateConfig()
    registry: RegistryConfig = RegistryConfig()
    serve: ServeConfig = ServeConfig()
    kubeflow: KubeflowConfig = KubeflowConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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
