"""What a person reads after a run: the HTML report and runs index (`graft report`), the text summary (`summary`)."""

from __future__ import annotations

from pathlib import Path

from graft.core.config import Config
from graft.core.errors import GraftError
from graft.report.html import collect, report
from graft.report.runs import runs_index
from graft.report.summary import render, summary

__all__ = ["collect", "render", "report", "run", "runs_index", "summary"]


def run(cfg: Config, metrics_dir: str | Path, out: str | Path, split_dir: str | Path | None = None,
        since: float | None = None, index: str | Path | None = None) -> tuple[Path, Path]:
    """The `report` stage: the run report from the metrics folder, and the runs index of the MLflow store."""
    if not Path(metrics_dir).is_dir():
        raise GraftError(f"{metrics_dir}: no such metrics folder (give the folder the pipeline wrote, e.g. metrics)")
    page = report(cfg, collect(metrics_dir, split_dir, since), out)
    return page, runs_index(cfg.registry, index or Path(out).with_name("runs.html"))
