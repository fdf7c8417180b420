"""The base of every stage output, and the interval several of them report."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Output(BaseModel):
    """Base of every stage output: unknown fields are errors (an old or foreign file is refused, not misread)."""

    model_config = ConfigDict(extra="forbid")


class Interval(Output):
    """A metric difference A - B with its paired-bootstrap confidence interval."""

    diff: float
    ci_low: float
    ci_high: float
    level: float
    resamples: int
