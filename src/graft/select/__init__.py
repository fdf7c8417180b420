"""The `select` stage: rank candidate backbones (graft.select.ranking); `selfcheck` audits the ranking."""

from __future__ import annotations

from pathlib import Path

from graft.core import outputs
from graft.core.artifacts import write_text
from graft.core.config import Config
from graft.data.tables import read_splits
from graft.select.ranking import markdown, rank

__all__ = ["markdown", "rank", "run"]


def run(split_dir: str | Path, cfg: Config, out: str | Path, table: str | Path | None = None) -> dict:
    """The stage: rank the candidates on the training split, write the ranking JSON (and its Markdown table)."""
    result = outputs.write(out, "select", rank(read_splits(split_dir)["train"], cfg))
    if table:
        write_text(table, markdown(result))
    return result
