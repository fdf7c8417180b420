"""The base of every config section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base for every section: unknown keys are errors, so a typo in params.yaml never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
